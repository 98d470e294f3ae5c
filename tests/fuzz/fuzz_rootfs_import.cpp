// A rootfs archive is hostile input (kcr run --rootfs FILE): import_rootfs_base either accepts
// it or throws kcr::Error. After a refusal nothing may be left in the store. After a success the
// store holds just <hex>.tar, whose SHA-256 is the digest, and whose entries, read back on their
// own, obey the rules GNU tar in the guest relies on: clean relative paths, no device node,
// nothing below an earlier symlink or other non-directory, a path once (directories aside), hard
// links only to an earlier regular file.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/sysmacros.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/files.hpp"
#include "core/rootfs_base.hpp"
#include "core/sha256.hpp"
#include "core/unique_fd.hpp"
#include "fuzz_util.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace kcr::core;

namespace {

// Bounds what one input may unpack to (a compressed input claims what it likes).
constexpr std::uint64_t k_max_bytes = std::uint64_t{64} << 20;
constexpr std::uint64_t k_max_entries = 100000;

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  return out;
}

// Whether PATH is relative and clean: no empty, "." or ".." component.
bool clean(const std::string& path) {
  if (path.empty() || path[0] == '/') return false;
  std::size_t start = 0;
  for (;;) {
    auto end = path.find('/', start);
    auto part = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (end == std::string::npos) return true;
    start = end + 1;
  }
}

// Reads the canonical tar back and fails on the first entry that breaks a rule.
void check_canonical(const std::string& tar) {
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, tar.c_str(), 64 << 10) != ARCHIVE_OK) {
    kcr::fuzz::fail("the canonical tar cannot be opened: " + tar);
  }
  std::map<std::string, unsigned> seen;  // path -> AE_IF* (0: a parent no entry named)
  struct archive_entry* ae = nullptr;
  int r = 0;
  while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    std::string path = archive_entry_pathname(ae) ? archive_entry_pathname(ae) : "";
    const char* hardlink = archive_entry_hardlink(ae);
    // A hard link's header says only that (libarchive may leave its type unset): a file.
    unsigned type = hardlink ? AE_IFREG : archive_entry_filetype(ae);
    if (type == AE_IFDIR && !path.empty() && path.back() == '/') path.pop_back();
    if (!clean(path)) kcr::fuzz::fail("canonical entry with an unclean path: " + path);
    if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFIFO) {
      kcr::fuzz::fail("canonical entry of a type a rootfs may not hold: " + path);
    }
    const char* target = archive_entry_symlink(ae);
    if (type == AE_IFLNK && (!target || !*target)) {
      kcr::fuzz::fail("canonical symlink with no target: " + path);
    }
    for (auto end = path.find('/'); end != std::string::npos; end = path.find('/', end + 1)) {
      auto it = seen.emplace(path.substr(0, end), 0).first;
      if (it->second != 0 && it->second != AE_IFDIR) {
        kcr::fuzz::fail("canonical entry below a non-directory: " + path);
      }
    }
    if (hardlink) {
      auto target = seen.find(hardlink);
      if (target == seen.end() || target->second != AE_IFREG) {
        kcr::fuzz::fail("canonical hard link to no earlier file: " + path + " -> " + hardlink);
      }
    }
    auto [it, fresh] = seen.emplace(path, type);
    if (!fresh && !(type == AE_IFDIR && (it->second == 0 || it->second == AE_IFDIR))) {
      kcr::fuzz::fail("canonical entry twice: " + path);
    }
    it->second = type;
  }
  if (r != ARCHIVE_EOF) kcr::fuzz::fail("the canonical tar does not read back whole: " + tar);
  archive_read_free(a);
}

struct Seed {
  std::string name;
  unsigned type;
  std::string data;  // content, or link target
  bool hardlink = false;
};

void write_seed(const std::string& file, const std::vector<Seed>& seeds, bool gzip) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_open_filename(a, file.c_str());
  for (const auto& s : seeds) {
    struct archive_entry* ae = archive_entry_new();
    archive_entry_copy_pathname(ae, s.name.c_str());
    archive_entry_set_filetype(ae, s.type);
    archive_entry_set_perm(ae, s.type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_mtime(ae, 1700000000, 0);
    if (s.hardlink) archive_entry_copy_hardlink(ae, s.data.c_str());
    if (s.type == AE_IFLNK) archive_entry_copy_symlink(ae, s.data.c_str());
    if (s.type == AE_IFCHR) archive_entry_set_rdev(ae, makedev(1, 3));
    bool data = s.type == AE_IFREG && !s.hardlink;
    archive_entry_set_size(ae, data ? static_cast<la_int64_t>(s.data.size()) : 0);
    archive_write_header(a, ae);
    if (data) archive_write_data(a, s.data.data(), s.data.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
}

}  // namespace

// With KCR_FUZZ_SEEDS=DIR, writes seeds there and exits: a small rootfs with one entry of each
// kind, plain and gzip'd.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("KCR_FUZZ_SEEDS");
  if (!dir) return 0;
  fs::create_directories(dir);
  const std::vector<Seed> rootfs{{"./", AE_IFDIR, ""},
                                 {"./etc/", AE_IFDIR, ""},
                                 {"./etc/passwd", AE_IFREG, "root:x:0:0::/root:/bin/sh\n"},
                                 {"./bin/busybox", AE_IFREG, std::string(700, 'b')},
                                 {"./bin/sh", AE_IFREG, "./bin/busybox", true},
                                 {"./bin/ls", AE_IFLNK, "busybox"},
                                 {"./etc/localtime", AE_IFLNK, "/usr/share/zoneinfo/UTC"},
                                 {"./dev/null", AE_IFCHR, ""},
                                 {"./run/fifo", AE_IFIFO, ""},
                                 {"./usr/" + std::string(120, 'n') + "/long", AE_IFREG, "x"}};
  write_seed(std::string(dir) + "/rootfs.tar", rootfs, false);
  write_seed(std::string(dir) + "/rootfs.tar.gz", rootfs, true);
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kcr::test::TempDir tmp;
  std::string file = tmp.path() + "/rootfs.tar";
  if (!write_all(kcr::UniqueFd(::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600)).get(),
                 std::string_view(reinterpret_cast<const char*>(data), size))) {
    kcr::fuzz::fail("cannot write " + file);
  }
  std::string store = tmp.path() + "/store";
  RootfsLimits limits{k_max_bytes, k_max_entries};
  RootfsBase base;
  bool ok = kcr::fuzz::refused_or_ok("import_rootfs_base",
                                     [&] { base = import_rootfs_base(file, store, limits); });
  auto left = files_in(store);
  if (!ok) {
    if (!left.empty()) kcr::fuzz::fail("a refused import left " + left.front() + " in the store");
    return 0;
  }
  if (!is_rootfs_digest(base.digest)) kcr::fuzz::fail("a digest of another form: " + base.digest);
  std::string hex = base.digest.substr(7);
  if (left != std::vector<std::string>{hex + ".tar"} ||
      base.tar_path != store + "/" + hex + ".tar") {
    kcr::fuzz::fail("the store holds more or other than " + hex + ".tar");
  }
  if (sha256_file_hex(base.tar_path) != hex) kcr::fuzz::fail("the tar does not match its digest");
  check_canonical(base.tar_path);
  return 0;
}
