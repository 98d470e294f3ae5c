// kcr checkpoints inspect/diff read CRIU's images themselves: the model they
// build from images made here, and every malformed image refused by name.
#include <gtest/gtest.h>

#include "core/checkpoint_inspect.hpp"
#include "core/criu_image.hpp"
#include "core/error.hpp"
#include "criu_images.hpp"

using namespace kcr::core;
using namespace kcr::test;
namespace criu = kcr::criu;

namespace {

std::string ser(const google::protobuf::MessageLite& m) { return m.SerializeAsString(); }

struct Dump {
  ImageFiles files;

  void add(const std::string& name, std::string bytes) {
    files.sizes[name] = bytes.size();
    files.bytes[name] = std::move(bytes);
  }

  void process(uint32_t pid, uint32_t ppid, const std::string& comm, uint32_t state = 1,
               uint32_t files_id = 0) {
    criu::PstreeEntry p;
    p.set_pid(pid);
    p.set_ppid(ppid);
    p.set_pgid(1);
    p.set_sid(1);
    p.add_threads(pid);
    m_tree.push_back(ser(p));
    add("pstree.img", criu_image(k_pstree_magic, m_tree));
    criu::CoreEntry c;
    c.set_mtype(1);
    c.mutable_tc()->set_comm(comm);
    c.mutable_tc()->set_task_state(state);
    add("core-" + std::to_string(pid) + ".img", criu_image(k_core_magic, {ser(c)}));
    if (state == 3) return;  // a zombie has only its core
    criu::TaskKobjIdsEntry ids;
    ids.set_files_id(files_id ? files_id : pid + 100);
    add("ids-" + std::to_string(pid) + ".img", criu_image(k_ids_magic, {ser(ids)}));
    add("fdinfo-" + std::to_string(ids.files_id()) + ".img", criu_image(k_fdinfo_magic, {}));
    memory(pid, {{0x400000, 0x402000}}, 1, 0);
  }

  void memory(uint32_t pid, const std::vector<std::pair<uint64_t, uint64_t>>& vmas,
              uint32_t present, uint32_t parent) {
    criu::MmEntry mm;
    for (auto [start, end] : vmas) {
      auto* v = mm.add_vmas();
      v->set_start(start);
      v->set_end(end);
    }
    add("mm-" + std::to_string(pid) + ".img", criu_image(k_mm_magic, {ser(mm)}));
    criu::PagemapHead head;
    head.set_pages_id(pid);
    std::vector<std::string> entries{ser(head)};
    criu::PagemapEntry e;
    e.set_vaddr(0x400000);
    e.set_nr_pages(present);
    e.set_flags(4);  // PE_PRESENT
    entries.push_back(ser(e));
    if (parent) {
      e.set_vaddr(0x500000);
      e.set_nr_pages(parent);
      e.set_flags(1);  // PE_PARENT
      entries.push_back(ser(e));
    }
    add("pagemap-" + std::to_string(pid) + ".img", criu_image(k_pagemap_magic, entries));
    add("pages-" + std::to_string(pid) + ".img", "");
    files.sizes["pages-" + std::to_string(pid) + ".img"] = uint64_t{present} * 4096;
  }

  void fds(uint32_t files_id, const std::vector<std::pair<uint32_t, uint32_t>>& fd_type_id) {
    std::vector<std::string> entries;
    for (auto [fd, id] : fd_type_id) {
      criu::FdinfoEntry e;
      e.set_fd(fd);
      e.set_id(id);
      e.set_type(m_types.at(id));
      entries.push_back(ser(e));
    }
    add("fdinfo-" + std::to_string(files_id) + ".img", criu_image(k_fdinfo_magic, entries));
  }

  void file(criu::FileEntry f) {
    m_types[f.id()] = f.type();
    m_files.push_back(ser(f));
    add("files.img", criu_image(k_files_magic, m_files));
  }

  void reg(uint32_t id, const std::string& path) {
    criu::FileEntry f;
    f.set_type(1);
    f.set_id(id);
    f.mutable_reg()->set_id(id);
    f.mutable_reg()->set_name(path);
    file(f);
  }

  std::vector<std::string> m_tree, m_files;
  std::map<uint32_t, uint32_t> m_types;
};

Dump sample() {
  Dump d;
  d.add("inventory.img", inventory_image());
  d.process(1, 0, "sh");
  d.process(2, 1, "sleep");
  d.process(3, 1, "defunct", 3);
  d.reg(1, "/etc/passwd");
  d.reg(2, "/");
  criu::FileEntry pipe;
  pipe.set_type(2);
  pipe.set_id(3);
  pipe.mutable_pipe()->set_pipe_id(4242);
  d.file(pipe);
  criu::FileEntry tcp;
  tcp.set_type(4);
  tcp.set_id(4);
  auto* isk = tcp.mutable_isk();
  isk->set_ino(777);
  isk->set_family(2);
  isk->set_type(1);
  isk->set_proto(6);
  isk->set_state(10);
  isk->set_src_port(8080);
  isk->add_src_addr(0x0100007f);  // 127.0.0.1 in network order
  isk->add_dst_addr(0);
  d.file(tcp);
  criu::FileEntry unix;
  unix.set_type(5);
  unix.set_id(5);
  unix.mutable_usk()->set_ino(900);
  unix.mutable_usk()->set_peer(901);
  unix.mutable_usk()->set_type(1);
  unix.mutable_usk()->set_state(1);
  unix.mutable_usk()->set_name(std::string("\0kcr", 4));
  d.file(unix);
  d.fds(101, {{0, 1}, {3, 3}, {4, 4}, {5, 5}});
  criu::FsEntry fs;
  fs.set_cwd_id(2);
  fs.set_root_id(2);
  d.add("fs-1.img", criu_image(k_fs_magic, {ser(fs)}));
  criu::MntEntry m;
  m.set_mnt_id(32);
  m.set_parent_mnt_id(31);
  m.set_fstype(5);
  m.set_mountpoint("/");
  m.set_root("/");
  m.set_source("tmpfs");
  criu::MntEntry sys = m;
  sys.set_mnt_id(34);
  sys.set_parent_mnt_id(32);
  sys.set_fstype(2);
  sys.set_mountpoint("/sys");
  sys.set_ext_key("kcr-sys");
  d.add("mountpoints-12.img", criu_image(k_mnts_magic, {ser(sys), ser(m)}));
  d.memory(1, {{0x400000, 0x404000}, {0x500000, 0x510000}}, 3, 2);
  return d;
}

std::string refusal(const ImageFiles& f) {
  try {
    inspect_images(f);
  } catch (const kcr::Error& e) {
    return e.what();
  }
  return "inspected";
}

}  // namespace

TEST(CriuImage, KindsByName) {
  EXPECT_EQ(criu_image_kind("core-12.img")->kind, "core");
  EXPECT_EQ(criu_image_kind("pagemap-shmem-7.img")->kind, "pagemap-shmem");
  EXPECT_EQ(criu_image_kind("pages-1.img")->magic, 0u);
  EXPECT_EQ(criu_image_kind("tmpfs-dev-29.tar.gz.img")->magic, 0u);
  EXPECT_TRUE(criu_image_kind("inventory.img")->inventory);
  EXPECT_TRUE(criu_image_kind("stats-dump")->service);
  EXPECT_FALSE(criu_image_kind("core-x.img"));
  EXPECT_FALSE(criu_image_kind("something-new.img"));
}

TEST(CriuImage, EntriesAreBoundedBeforeUse) {
  std::string img = criu_image(k_core_magic, {"abc", "de"});
  EXPECT_EQ(criu_image_entries("core-1.img", img).size(), 2u);
  EXPECT_NO_THROW(check_criu_image("core-1.img", img));
  std::string huge = criu_image(k_core_magic, {}) + u32_bytes(0xfffffff0u);
  EXPECT_THROW(check_criu_image("core-1.img", huge), kcr::Error);
  std::string past = criu_image(k_core_magic, {}) + u32_bytes(100) + "short";
  try {
    check_criu_image("core-1.img", past);
    ADD_FAILURE() << "an entry running past the end was accepted";
  } catch (const kcr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("core-1.img is truncated"), std::string::npos);
  }
  EXPECT_THROW(check_criu_image("core-1.img", criu_image(k_core_magic, {}) + "ab"), kcr::Error);
  EXPECT_THROW(check_criu_image("core-1.img", "ab"), kcr::Error);
  // Raw and unknown images are not judged; a known kind with raw payload
  // after its entries has only its magics checked.
  EXPECT_NO_THROW(check_criu_image("pages-1.img", "anything"));
  EXPECT_NO_THROW(check_criu_image("new-kind.img", "anything"));
  EXPECT_NO_THROW(check_criu_image("pipes-data.img", criu_image(0x56453709, {}) + "raw data"));
}

TEST(CheckpointInspect, ProcessTreeFdsSocketsMountsAndMemory) {
  auto in = inspect_images(sample().files);
  EXPECT_EQ(in.img_version, 2u);
  ASSERT_EQ(in.processes.size(), 3u);
  const auto& sh = in.processes[0];
  EXPECT_EQ(sh.pid, 1u);
  EXPECT_EQ(sh.comm, "sh");
  EXPECT_EQ(sh.state, "alive");
  EXPECT_EQ(sh.cwd, "/");
  ASSERT_EQ(sh.fds.size(), 4u);
  EXPECT_EQ(sh.fds[0].what, "/etc/passwd");
  EXPECT_EQ(sh.fds[1].what, "pipe[4242]");
  EXPECT_EQ(sh.fds[2].type, "INETSK");
  EXPECT_EQ(sh.fds[2].what, "tcp 127.0.0.1:8080 listen");
  EXPECT_EQ(sh.fds[3].what, "unix[900 (901) @kcr]");
  ASSERT_TRUE(sh.memory);
  EXPECT_EQ(sh.memory->vmas, 2u);
  EXPECT_EQ(sh.memory->mapped_bytes, 0x4000u + 0x10000u);
  EXPECT_EQ(sh.memory->dumped_pages, 3u);
  EXPECT_EQ(sh.memory->parent_pages, 2u);
  EXPECT_EQ(in.processes[1].ppid, 1u);
  EXPECT_EQ(in.processes[2].state, "zombie");
  EXPECT_FALSE(in.processes[2].memory);
  ASSERT_EQ(in.sockets.size(), 2u);
  EXPECT_EQ(in.sockets[0].ino, 777u);
  EXPECT_EQ(in.sockets[0].state, "listen");
  EXPECT_EQ(in.sockets[1].family, "unix");
  EXPECT_EQ(in.sockets[1].peer_ino, 901u);
  ASSERT_EQ(in.mounts.size(), 2u);
  EXPECT_EQ(in.mounts[0].mountpoint, "/");
  EXPECT_EQ(in.mounts[1].fstype, "sysfs");
  EXPECT_TRUE(in.mounts[1].external);
  EXPECT_EQ(in.pages_bytes, (3u + 1u + 0u) * 4096u);
  std::string json = inspection_json(in).dump();
  EXPECT_NE(json.find("\"dumped_pages\":3,"), std::string::npos) << json;
  EXPECT_NE(json.find("\"memory\":null"), std::string::npos) << json;
}

TEST(CheckpointInspect, StringsFromTheGuestAreShownEscaped) {
  auto d = sample();
  d.process(4, 1, std::string("evil\x1b[2J\n", 9));
  auto in = inspect_images(d.files);
  EXPECT_EQ(in.processes.back().comm, "evil\\x1b[2J\\x0a");
}

TEST(CheckpointInspect, MissingOrMalformedImagesAreNamed) {
  auto d = sample();
  d.files.bytes.erase("core-2.img");
  EXPECT_NE(refusal(d.files).find("CRIU image core-2.img is missing"), std::string::npos);
  d = sample();
  d.files.bytes["mm-1.img"] = criu_image(k_mm_magic, {"\xff\xff\xff"});
  EXPECT_NE(refusal(d.files).find("mm-1.img has an entry that does not decode"),
            std::string::npos);
  d = sample();
  d.files.bytes["fdinfo-101.img"] = criu_image(k_pstree_magic, {});
  EXPECT_NE(refusal(d.files).find("fdinfo-101.img has magic"), std::string::npos);
  d = sample();
  d.process(2, 1, "again");
  EXPECT_NE(refusal(d.files).find("lists pid 2 twice"), std::string::npos);
  d = sample();
  d.files.bytes["pagemap-2.img"] = criu_image(k_pagemap_magic, {});
  EXPECT_NE(refusal(d.files).find("pagemap-2.img has no head entry"), std::string::npos);
  d = sample();
  d.files.sizes["pages-2.img"] = 5 * 4096;
  EXPECT_NE(refusal(d.files).find("pagemap-2.img lists 1 pages, pages-2.img holds 20480 bytes"),
            std::string::npos);
}

TEST(CheckpointInspect, DiffNamesWhatChanged) {
  auto a = inspect_images(sample().files);
  EXPECT_TRUE(diff_inspections(a, a).empty());
  auto d = sample();
  d.process(5, 1, "nc");
  d.reg(6, "/tmp/new");
  d.fds(101, {{0, 6}, {3, 3}, {5, 5}, {7, 1}});  // 0 now /tmp/new, 4 closed, 7 opened
  d.memory(1, {{0x400000, 0x404000}, {0x500000, 0x520000}}, 5, 0);
  auto b = inspect_images(d.files);
  auto diff = diff_inspections(a, b);
  ASSERT_EQ(diff.added.size(), 1u);
  EXPECT_EQ(diff.added[0].comm, "nc");
  EXPECT_TRUE(diff.removed.empty());
  ASSERT_EQ(diff.fds.size(), 3u);
  EXPECT_EQ(diff.fds[0].sign, '~');
  EXPECT_EQ(diff.fds[0].fd.what, "/tmp/new");
  EXPECT_EQ(diff.fds[0].before, "REG /etc/passwd");
  EXPECT_EQ(diff.fds[1].sign, '-');
  EXPECT_EQ(diff.fds[1].fd.fd, 4);
  EXPECT_EQ(diff.fds[2].sign, '+');
  EXPECT_EQ(diff.fds[2].fd.fd, 7);
  ASSERT_EQ(diff.memory.size(), 1u);
  EXPECT_EQ(diff.memory[0].before.dumped_pages, 3u);
  EXPECT_EQ(diff.memory[0].after.dumped_pages, 5u);
  std::string json = diff_json(diff).dump();
  EXPECT_NE(json.find("\"unchanged\":false"), std::string::npos);
  auto back = diff_inspections(b, a);
  ASSERT_EQ(back.removed.size(), 1u);
  EXPECT_EQ(back.removed[0].pid, 5u);
}
