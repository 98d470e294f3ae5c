// A checkpoint archive is hostile input (kcr checkpoint import, kcr restore --from-archive):
// import_checkpoint into a fresh store and verify_archive either accept it or throw
// kcr::Error. After a refusal nothing may be left: no .partial-* directory in the store, no
// file anywhere else. What import accepts, verify accepts, and the store verifies it or refuses
// with kcr::Error.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/checkpoint_archive.hpp"
#include "core/checkpoint_store.hpp"
#include "core/files.hpp"
#include "core/sha256.hpp"
#include "criu_images.hpp"
#include "fuzz_util.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace kcr::core;

namespace {

// Bounds what one input may unpack to (a compressed input claims what it likes).
constexpr uint64_t k_max_bytes = uint64_t{256} << 20;

// Everything under DIR but the paths KEEP and what lies under KEEP_TREE.
std::vector<std::string> strays(const std::string& dir, const std::vector<std::string>& keep,
                                const std::string& keep_tree) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    std::string p = e.path().string();
    if (std::find(keep.begin(), keep.end(), p) != keep.end()) continue;
    if (!keep_tree.empty() && (p == keep_tree || p.rfind(keep_tree + "/", 0) == 0)) continue;
    out.push_back(p);
  }
  return out;
}

std::string joined(const std::vector<std::string>& paths) {
  std::string out;
  for (const auto& p : paths) out += "\n  " + p;
  return out;
}

}  // namespace

// With KCR_FUZZ_SEEDS=DIR (scripts/fuzz), writes seeds there and exits: a small checkpoint
// with a pre-dump round exported uncompressed (one-checkpoint.tar) and its manifest.yaml.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* seeds = std::getenv("KCR_FUZZ_SEEDS");
  if (!seeds) return 0;
  kcr::test::TempDir tmp;
  CheckpointStore store(tmp.path() + "/data");
  const std::map<std::string, std::string> files{
      {"images/inventory.img", kcr::test::inventory_image()},
      {"images/pages-1.img", std::string(600, 'p')},
      {"images/pstree.img", kcr::test::pstree_image()},
      {"dump.log", "(00.001) dump done\n"},
      {"stats-dump", "stats"},
      {"parents/1/images/pages-1.img", "pp"},
      {"parents/1/dump.log", "pre-dump\n"}};
  CheckpointManifest m;
  m.name = "c1";
  m.workload = "counter";
  m.argv = {"sh", "-c", "x"};
  m.vm = "demo";
  m.pre_dumps.push_back({1, 10, 20, 2, 2});
  {
    CheckpointWriter w(store, m.name);
    for (const auto& [path, bytes] : files) {
      w.write_chunk(path, 0, bytes);
      w.file_done(path, bytes.size(), sha256_hex(bytes));
      m.files.push_back({path, bytes.size(), sha256_hex(bytes)});
    }
    w.commit(m);
  }
  fs::create_directories(seeds);
  export_checkpoint(store, m.name, std::string(seeds) + "/one-checkpoint.tar", Compression::none);
  write_file_atomic(std::string(seeds) + "/manifest.yaml", manifest_to_yaml(store.load(m.name)));
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kcr::test::TempDir tmp;
  std::string file = tmp.path() + "/in.tar";
  {
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!out) kcr::fuzz::fail("cannot write " + file);
  }
  std::string data_dir = tmp.path() + "/data";
  CheckpointStore store(data_dir);
  ImportOptions options;
  options.max_bytes = k_max_bytes;

  CheckpointManifest imported;
  bool ok = kcr::fuzz::refused_or_ok("import_checkpoint",
                                     [&] { imported = import_checkpoint(store, file, options); });
  std::vector<std::string> keep{file, data_dir, store.root()};
  auto left = strays(tmp.path(), keep, ok ? store.dir(imported.name) : std::string());
  if (!left.empty()) {
    kcr::fuzz::fail(
        std::string(ok ? "import left more than its checkpoint:" : "a refused import left:") +
        joined(left));
  }
  // The store's verify also checks the CRIU images' magics, which import does not: it may
  // refuse, but only with kcr::Error.
  if (ok) {
    kcr::fuzz::refused_or_ok("CheckpointStore::verify",
                             [&] { store.verify(store.load(imported.name)); });
  }

  bool verified =
      kcr::fuzz::refused_or_ok("verify_archive", [&] { verify_archive(file, {}, k_max_bytes); });
  if (ok && !verified) kcr::fuzz::fail("verify_archive refuses an archive import accepted");
  return 0;
}
