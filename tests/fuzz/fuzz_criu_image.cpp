// kcr's CRIU image reader (checkpoints inspect, verify) on hostile images: the
// input is split into named image files; each is checked and the set is
// inspected; kcr::Error is the only way to refuse.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/checkpoint_inspect.hpp"
#include "core/criu_image.hpp"
#include "core/files.hpp"
#include "criu_images.hpp"
#include "fuzz_util.hpp"

using namespace kcr::core;

namespace {

const char* const k_names[] = {"inventory.img", "pstree.img", "core-1.img",    "core-2.img",
                               "ids-1.img",     "mm-1.img",   "pagemap-1.img", "pages-1.img",
                               "fdinfo-2.img",  "files.img",  "fs-1.img",      "mountpoints-5.img",
                               "stats-dump",    "ids-2.img",  "mm-2.img",      "pagemap-2.img"};

}  // namespace

// With KCR_FUZZ_SEEDS=DIR (scripts/fuzz), writes a seed there and exits: the images
// of a one-process dump, as records of the input format below.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* seeds = std::getenv("KCR_FUZZ_SEEDS");
  if (!seeds) return 0;
  namespace criu = kcr::criu;
  using kcr::test::criu_image;
  std::vector<std::pair<int, std::string>> images;
  images.push_back({0, kcr::test::inventory_image()});
  images.push_back({1, kcr::test::pstree_image(1)});
  criu::CoreEntry core;
  core.mutable_tc()->set_comm("sh");
  core.mutable_tc()->set_task_state(1);
  images.push_back({2, criu_image(kcr::test::k_core_magic, {core.SerializeAsString()})});
  criu::TaskKobjIdsEntry ids;
  ids.set_files_id(2);
  images.push_back({4, criu_image(kcr::test::k_ids_magic, {ids.SerializeAsString()})});
  criu::MmEntry mm;
  auto* v = mm.add_vmas();
  v->set_start(0x400000);
  v->set_end(0x401000);
  images.push_back({5, criu_image(kcr::test::k_mm_magic, {mm.SerializeAsString()})});
  criu::PagemapHead head;
  head.set_pages_id(1);
  criu::PagemapEntry pe;
  pe.set_vaddr(0x400000);
  pe.set_nr_pages(1);
  pe.set_flags(4);
  images.push_back({6, criu_image(kcr::test::k_pagemap_magic,
                                  {head.SerializeAsString(), pe.SerializeAsString()})});
  images.push_back({7, std::string(4096, 'p')});
  criu::FdinfoEntry fd;
  fd.set_fd(0);
  fd.set_id(1);
  fd.set_type(1);
  images.push_back({8, criu_image(kcr::test::k_fdinfo_magic, {fd.SerializeAsString()})});
  criu::FileEntry f;
  f.set_type(1);
  f.set_id(1);
  f.mutable_reg()->set_name("/dev/null");
  images.push_back({9, criu_image(kcr::test::k_files_magic, {f.SerializeAsString()})});
  criu::MntEntry m;
  m.set_mnt_id(1);
  m.set_mountpoint("/");
  m.set_fstype(5);
  images.push_back({11, criu_image(kcr::test::k_mnts_magic, {m.SerializeAsString()})});
  std::string out;
  for (const auto& [index, bytes] : images) {
    out += static_cast<char>(index);
    out += static_cast<char>(bytes.size() & 0xff);
    out += static_cast<char>(bytes.size() >> 8);
    out += bytes;
  }
  kcr::core::write_file_atomic(std::string(seeds) + "/one-process", out);
  std::exit(0);
}

// Input: records of [name index byte][u16 length][bytes].
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ImageFiles files;
  size_t at = 0;
  while (at + 3 <= size) {
    const char* name = k_names[data[at] % (sizeof k_names / sizeof k_names[0])];
    size_t len = data[at + 1] | (size_t{data[at + 2]} << 8);
    at += 3;
    if (len > size - at) len = size - at;
    std::string bytes(reinterpret_cast<const char*>(data + at), len);
    at += len;
    kcr::fuzz::refused_or_ok("check_criu_image", [&] { check_criu_image(name, bytes); });
    files.sizes[name] = bytes.size();
    files.bytes[name] = std::move(bytes);
  }
  Inspection in;
  if (kcr::fuzz::refused_or_ok("inspect_images", [&] { in = inspect_images(files); })) {
    inspection_json(in).dump();
    diff_json(diff_inspections(in, in)).dump();
  }
  return 0;
}
