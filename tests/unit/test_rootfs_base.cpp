// import_rootfs_base: a user's root filesystem (a directory or a tar) becomes one canonical tar
// that GNU tar extracts to the same tree; hostile entries are refused, naming the entry, and
// leave nothing in the store.
#include "core/rootfs_base.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/sha256.hpp"
#include "core/unique_fd.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using kcr::core::import_rootfs_base;
using kcr::core::is_rootfs_digest;
using kcr::core::read_file;
using kcr::core::RootfsLimits;
using kcr::core::RootfsProgress;
using kcr::core::sha256_file_hex;
using kcr::test::TempDir;

namespace {

constexpr std::int64_t k_mtime = 1700000000;

// One entry of an archive a test builds with libarchive.
struct Item {
  std::string name;
  unsigned type = AE_IFREG;
  std::string content = {};
  std::string link = {};      // a symlink's target
  std::string hardlink = {};  // set: a hard link to this name
  unsigned perm = 0644;
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::int64_t mtime = k_mtime;
  long nsec = 0;
  bool extras = false;  // with atime, ctime, user and group names and an xattr
};

Item file(std::string name, std::string content = "x\n", unsigned perm = 0644) {
  return {std::move(name), AE_IFREG, std::move(content), {}, {}, perm};
}
Item dir(std::string name, unsigned perm = 0755) {
  return {std::move(name), AE_IFDIR, {}, {}, {}, perm};
}
Item symlink_to(std::string name, std::string target) {
  return {std::move(name), AE_IFLNK, {}, std::move(target), {}, 0777};
}
Item hardlink_to(std::string name, std::string target) {
  return {std::move(name), AE_IFREG, {}, {}, std::move(target)};
}
Item node(std::string name, unsigned type) {
  return {std::move(name), type, {}, {}, {}, 0666};
}

using Setter = int (*)(struct archive*);

// Writes ITEMS, exactly as given, as an archive of FORMAT through FILTER.
void write_archive(const std::string& path, const std::vector<Item>& items,
                   Setter filter = archive_write_add_filter_none,
                   Setter format = archive_write_set_format_pax_restricted) {
  struct archive* a = archive_write_new();
  if (format(a) != ARCHIVE_OK || filter(a) != ARCHIVE_OK ||
      archive_write_open_filename(a, path.c_str()) != ARCHIVE_OK) {
    throw std::runtime_error(std::string("archive setup: ") + archive_error_string(a));
  }
  for (const auto& it : items) {
    struct archive_entry* ae = archive_entry_new();
    archive_entry_copy_pathname(ae, it.name.c_str());
    archive_entry_set_filetype(ae, it.type);
    archive_entry_set_perm(ae, it.perm);
    archive_entry_set_uid(ae, it.uid);
    archive_entry_set_gid(ae, it.gid);
    archive_entry_set_mtime(ae, it.mtime, it.nsec);
    if (it.extras) {
      archive_entry_set_atime(ae, 1, 2);
      archive_entry_set_ctime(ae, 3, 4);
      archive_entry_set_uname(ae, "someone");
      archive_entry_set_gname(ae, "somegroup");
      archive_entry_xattr_add_entry(ae, "security.capability", "\x01\x00\x00\x02", 4);
    }
    if (it.type == AE_IFLNK) archive_entry_copy_symlink(ae, it.link.c_str());
    if (!it.hardlink.empty()) archive_entry_copy_hardlink(ae, it.hardlink.c_str());
    if (it.type == AE_IFCHR || it.type == AE_IFBLK) archive_entry_set_rdev(ae, makedev(1, 3));
    bool data = it.type == AE_IFREG && it.hardlink.empty();
    archive_entry_set_size(ae, data ? static_cast<la_int64_t>(it.content.size()) : 0);
    if (archive_write_header(a, ae) < ARCHIVE_WARN) {
      throw std::runtime_error("write " + it.name + ": " + archive_error_string(a));
    }
    if (data && !it.content.empty()) archive_write_data(a, it.content.data(), it.content.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
}

// One entry of the canonical tar as libarchive reads it back.
struct Listed {
  std::string path;
  unsigned type = 0;
  unsigned perm = 0;
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::int64_t mtime = 0;
  long nsec = 0;
  std::int64_t size = 0;
  std::string symlink;
  std::string hardlink;
  std::string content;
  bool has_names = false;  // uname or gname
  bool has_times = false;  // atime, ctime or birth time
  bool has_xattrs = false;
};

std::vector<Listed> list_tar(const std::string& path) {
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  if (archive_read_open_filename(a, path.c_str(), 10240) != ARCHIVE_OK) {
    throw std::runtime_error("open " + path);
  }
  std::vector<Listed> out;
  struct archive_entry* ae = nullptr;
  int r = 0;
  while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    Listed l;
    l.path = archive_entry_pathname(ae);
    l.type = archive_entry_filetype(ae);
    l.perm = archive_entry_perm(ae);
    l.uid = archive_entry_uid(ae);
    l.gid = archive_entry_gid(ae);
    l.mtime = archive_entry_mtime(ae);
    l.nsec = archive_entry_mtime_nsec(ae);
    l.size = archive_entry_size(ae);
    if (archive_entry_symlink(ae)) l.symlink = archive_entry_symlink(ae);
    if (archive_entry_hardlink(ae)) l.hardlink = archive_entry_hardlink(ae);
    auto named = [](const char* s) { return s && *s; };
    l.has_names = named(archive_entry_uname(ae)) || named(archive_entry_gname(ae));
    l.has_times = archive_entry_atime_is_set(ae) || archive_entry_ctime_is_set(ae) ||
                  archive_entry_birthtime_is_set(ae);
    l.has_xattrs = archive_entry_xattr_count(ae) > 0;
    char buf[4096];
    la_ssize_t n = 0;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0) l.content.append(buf, n);
    out.push_back(l);
  }
  if (r != ARCHIVE_EOF) throw std::runtime_error("read " + path);
  archive_read_free(a);
  return out;
}

const Listed* find_listed(const std::vector<Listed>& list, const std::string& path) {
  for (const auto& l : list) {
    if (l.path == path) return &l;
  }
  return nullptr;
}

// Runs /bin/tar -x on TAR into DIR, as the guest does; returns its exit status.
int gnu_tar_extract(const std::string& tar, const std::string& dir) {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/tar", "tar", "-x", "-p", "--numeric-owner", "--warning=no-unknown-keyword", "-f",
            tar.c_str(), "-C", dir.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// What a tree holds, by relative path: type, mode, owner, mtime seconds, content or target, inode.
struct Node {
  unsigned type = 0;
  unsigned perm = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::int64_t mtime = 0;  // not for symlinks
  std::string data;        // a file's content, a symlink's target
  ino_t ino = 0;

  bool operator==(const Node& o) const {
    return type == o.type && perm == o.perm && uid == o.uid && gid == o.gid && mtime == o.mtime &&
           data == o.data;
  }
};

std::ostream& operator<<(std::ostream& os, const Node& n) {
  return os << "type " << std::oct << n.type << " perm " << n.perm << std::dec << " owner " << n.uid
            << ":" << n.gid << " mtime " << n.mtime << " data '" << n.data << "'";
}

std::map<std::string, Node> tree_of(const std::string& root) {
  std::map<std::string, Node> out;
  for (const auto& de : fs::recursive_directory_iterator(root)) {
    struct stat st {};
    if (::lstat(de.path().c_str(), &st) != 0) throw std::runtime_error("lstat");
    if (S_ISSOCK(st.st_mode)) continue;
    Node n;
    n.type = st.st_mode & S_IFMT;
    n.perm = st.st_mode & 07777;
    n.uid = st.st_uid;
    n.gid = st.st_gid;
    n.ino = st.st_ino;
    if (S_ISLNK(st.st_mode)) {
      n.data = fs::read_symlink(de.path()).string();
      n.perm = 0;
    } else {
      n.mtime = st.st_mtim.tv_sec;
    }
    if (S_ISREG(st.st_mode)) n.data = read_file(de.path().string());
    out[de.path().lexically_relative(root).string()] = n;
  }
  return out;
}

void put(const std::string& path, const std::string& content, mode_t mode = 0644) {
  std::ofstream(path, std::ios::binary) << content;
  ::chmod(path.c_str(), mode);
}

// Everything in DIR (not below it).
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  return out;
}

class RootfsBase : public ::testing::Test {
 protected:
  std::string src() const { return m_tmp.path() + "/src"; }
  std::string archive() const { return m_tmp.path() + "/in.tar"; }
  std::string store() const { return m_tmp.path() + "/store"; }

  // Imports PATH expecting a refusal; checks the store holds nothing afterwards and returns
  // the message and hint.
  std::string refusal(const std::string& path, const RootfsLimits& limits = {}) {
    std::string message;
    try {
      auto base = import_rootfs_base(path, store(), limits);
      ADD_FAILURE() << "accepted: " << base.digest;
    } catch (const kcr::Error& e) {
      message = std::string(e.what()) + "\nhint: " + e.hint();
    }
    EXPECT_EQ(files_in(store()), std::vector<std::string>{}) << message;
    return message;
  }

  std::string tar_refusal(const std::vector<Item>& items, const RootfsLimits& limits = {}) {
    write_archive(archive(), items);
    return refusal(archive(), limits);
  }

  std::string digest_of(const std::vector<Item>& items, Setter filter) {
    std::string path = m_tmp.path() + "/digest-input";
    write_archive(path, items, filter);
    return import_rootfs_base(path, store()).digest;
  }

  TempDir m_tmp;
};

// A small root filesystem with one of each kind of entry a rootfs has.
std::vector<Item> sample_items() {
  Item passwd = file("./etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  passwd.mtime = 1600000000;
  passwd.nsec = 123456789;
  Item owned = file("./home/user/notes", "mine\n", 0600);
  owned.uid = 1000;
  owned.gid = 1001;
  return {dir("./"),
          dir("./etc/"),
          passwd,
          dir("./bin/"),
          file("./bin/busybox", std::string(300000, 'b'), 04755),
          hardlink_to("./bin/sh", "./bin/busybox"),
          symlink_to("./bin/ls", "busybox"),
          symlink_to("./etc/localtime", "/usr/share/zoneinfo/UTC"),
          dir("./tmp/", 01777),
          dir("./home/"),
          dir("./home/user/", 0700),
          owned,
          node("./run/fifo", AE_IFIFO),
          file("./usr/share/" + std::string(150, 'n') + "/long", "long name\n"),
          file("./usr/share/caf\xc3\xa9", "utf-8 name\n"),
          file("./usr/share/bad\xff", "non-utf-8 name\n")};
}

}  // namespace

TEST_F(RootfsBase, TarImportExtractsWithGnuTarToTheSameTree) {
  auto items = sample_items();
  write_archive(archive(), items);
  auto base = import_rootfs_base(archive(), store());
  std::uint64_t bytes = 0;
  for (const auto& it : items) bytes += it.content.size();
  EXPECT_TRUE(is_rootfs_digest(base.digest)) << base.digest;
  EXPECT_EQ(base.tar_path, store() + "/" + base.digest.substr(7) + ".tar");
  EXPECT_EQ(sha256_file_hex(base.tar_path), base.digest.substr(7));
  EXPECT_EQ(base.tar_bytes, fs::file_size(base.tar_path));
  EXPECT_EQ(base.entries, 15u);  // all but the root
  EXPECT_EQ(base.file_bytes, bytes);
  EXPECT_EQ(base.skipped_devices, 0u);
  EXPECT_EQ(files_in(store()), std::vector<std::string>{base.digest.substr(7) + ".tar"});

  std::string out = m_tmp.path() + "/out";
  fs::create_directories(out);
  ASSERT_EQ(gnu_tar_extract(base.tar_path, out), 0);
  auto tree = tree_of(out);
  EXPECT_EQ(tree.size(), 19u);  // and run, usr, usr/share and its long child, made by tar
  EXPECT_EQ(tree["etc/passwd"].data, "root:x:0:0::/root:/bin/sh\n");
  EXPECT_EQ(tree["etc/passwd"].mtime, 1600000000);
  EXPECT_EQ(tree["bin/busybox"].perm, 04755u);
  EXPECT_EQ(tree["bin/sh"].ino, tree["bin/busybox"].ino);
  EXPECT_EQ(tree["bin/ls"].type, unsigned{S_IFLNK});
  EXPECT_EQ(tree["bin/ls"].data, "busybox");
  EXPECT_EQ(tree["etc/localtime"].data, "/usr/share/zoneinfo/UTC");
  EXPECT_EQ(tree["tmp"].perm, 01777u);
  EXPECT_EQ(tree["tmp"].type, unsigned{S_IFDIR});
  EXPECT_EQ(tree["home/user"].perm, 0700u);
  EXPECT_EQ(tree["run/fifo"].type, unsigned{S_IFIFO});
  EXPECT_EQ(tree["usr/share/caf\xc3\xa9"].data, "utf-8 name\n");
  EXPECT_EQ(tree["usr/share/bad\xff"].data, "non-utf-8 name\n");
  EXPECT_EQ(tree["usr/share/" + std::string(150, 'n') + "/long"].data, "long name\n");
  if (::geteuid() == 0) {  // only root's tar restores owners
    EXPECT_EQ(tree["home/user/notes"].uid, 1000u);
    EXPECT_EQ(tree["home/user/notes"].gid, 1001u);
  }
}

TEST_F(RootfsBase, CanonicalEntriesCarryOnlyPathTypeModeOwnerMtimeAndLinks) {
  Item rich = file("./srv/data", "data\n", 06750);
  rich.uid = 4242;
  rich.gid = 4343;
  rich.mtime = 1234567890;
  rich.nsec = 987654321;
  std::vector<Item> items{dir("./"), dir("./srv/"), rich};
  for (auto& it : items) it.extras = true;  // what the canonical tar must not carry
  write_archive(archive(), items, archive_write_add_filter_none, archive_write_set_format_pax);
  const Listed in = list_tar(archive()).back();
  ASSERT_TRUE(in.has_names && in.has_times && in.has_xattrs);

  auto base = import_rootfs_base(archive(), store());
  auto list = list_tar(base.tar_path);
  ASSERT_EQ(list.size(), 2u);  // no root entry
  EXPECT_EQ(list[0].path, "srv/");
  EXPECT_EQ(list[0].type, unsigned{AE_IFDIR});
  const Listed& l = list[1];
  EXPECT_EQ(l.path, "srv/data");
  EXPECT_EQ(l.type, unsigned{AE_IFREG});
  EXPECT_EQ(l.perm, 06750u);
  EXPECT_EQ(l.uid, 4242);
  EXPECT_EQ(l.gid, 4343);
  EXPECT_EQ(l.mtime, 1234567890);
  EXPECT_EQ(l.content, "data\n");
  for (const auto& e : list) {
    EXPECT_FALSE(e.has_names) << e.path;
    EXPECT_FALSE(e.has_times) << e.path;
    EXPECT_FALSE(e.has_xattrs) << e.path;
  }
}

TEST_F(RootfsBase, TarEntriesKeepTheArchiveOrderWithoutDotSlash) {
  write_archive(archive(), {dir("."), file("./z"), file("a"), dir("./m/"), file("m/b")});
  auto list = list_tar(import_rootfs_base(archive(), store()).tar_path);
  std::vector<std::string> paths;
  for (const auto& l : list) paths.push_back(l.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"z", "a", "m/", "m/b"}));
}

TEST_F(RootfsBase, DirectoryImportExtractsWithGnuTarToTheSameTree) {
  std::string s = src();
  for (const char* d : {"bin", "etc", "tmp", "home/user", "usr/share/long"}) {
    fs::create_directories(s + "/" + d);
  }
  put(s + "/bin/busybox", std::string(600000, 'b'), 04755);
  ASSERT_EQ(::link((s + "/bin/busybox").c_str(), (s + "/bin/sh").c_str()), 0);
  fs::create_symlink("busybox", s + "/bin/ls");
  fs::create_symlink("/usr/share/zoneinfo/UTC", s + "/etc/localtime");
  fs::create_symlink("../../etc", s + "/home/user/up");
  const std::string passwd = "root:x:0:0::/root:/bin/sh\n";
  put(s + "/etc/passwd", passwd);
  put(s + "/etc/empty", "");
  put(s + "/home/user/notes", "mine\n", 0600);
  put(s + "/usr/share/caf\xc3\xa9", "utf-8 name\n");
  put(s + "/usr/share/bad\xff", "non-utf-8 name\n");
  put(s + "/usr/share/long/" + std::string(200, 'n'), "long name\n");
  ASSERT_EQ(::mkfifo((s + "/tmp/fifo").c_str(), 0620), 0);
  ::chmod((s + "/tmp").c_str(), 01777);
  ::chmod((s + "/home/user").c_str(), 0700);
  struct timespec times[2] = {{0, UTIME_OMIT}, {1500000000, 5}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (s + "/etc/passwd").c_str(), times, 0), 0);
  if (::geteuid() == 0) {
    ASSERT_EQ(::chown((s + "/home/user/notes").c_str(), 1000, 1001), 0);
  }
  // Directory mtimes last, after the entries inside them changed them.
  times[1] = {1400000000, 0};
  for (const char* d : {"bin", "etc", "tmp", "home/user", "home", "usr/share/long", "usr/share"}) {
    ASSERT_EQ(::utimensat(AT_FDCWD, (s + "/" + d).c_str(), times, 0), 0);
  }

  auto base = import_rootfs_base(s, store());
  EXPECT_EQ(base.file_bytes, 600000 + passwd.size() + 5 + 11 + 15 + 10);
  auto list = list_tar(base.tar_path);
  EXPECT_EQ(base.entries, list.size());
  // Sorted by name bytes, parents first; the second name of the inode is a hard link.
  EXPECT_EQ(list[0].path, "bin/");
  EXPECT_EQ(list[1].path, "bin/busybox");
  EXPECT_EQ(list[2].path, "bin/ls");
  EXPECT_EQ(list[3].path, "bin/sh");
  EXPECT_EQ(list[3].hardlink, "bin/busybox");
  EXPECT_EQ(list[3].size, 0);
  for (const auto& l : list) {
    EXPECT_NE(l.path.rfind("./", 0), 0u) << l.path;
    EXPECT_NE(l.path, ".");
  }

  std::string out = m_tmp.path() + "/out";
  fs::create_directories(out);
  ASSERT_EQ(gnu_tar_extract(base.tar_path, out), 0);
  auto want = tree_of(s);
  auto got = tree_of(out);
  EXPECT_EQ(got.size(), want.size());
  for (const auto& [path, n] : want) {
    ASSERT_TRUE(got.count(path)) << path;
    EXPECT_EQ(got[path], n) << path;
  }
  EXPECT_EQ(got["bin/sh"].ino, got["bin/busybox"].ino);
  EXPECT_EQ(got["bin/busybox"].perm, 04755u);
  EXPECT_EQ(got["etc/passwd"].mtime, 1500000000);
  if (::geteuid() == 0) {
    EXPECT_EQ(got["home/user/notes"].uid, 1000u);
  }
}

TEST_F(RootfsBase, SameDirectoryGivesTheSameDigestAndOneByteAnother) {
  fs::create_directories(src() + "/etc");
  put(src() + "/etc/hostname", "box\n");
  put(src() + "/etc/os-release", "ID=test\n");
  auto first = import_rootfs_base(src(), store());
  auto again = import_rootfs_base(src(), store());
  EXPECT_EQ(again.digest, first.digest);
  EXPECT_EQ(again.tar_path, first.tar_path);
  auto elsewhere = import_rootfs_base(src(), m_tmp.path() + "/other-store");
  EXPECT_EQ(read_file(elsewhere.tar_path), read_file(first.tar_path));

  // Same size and mtime, one byte else.
  struct stat st {};
  ASSERT_EQ(::stat((src() + "/etc/hostname").c_str(), &st), 0);
  put(src() + "/etc/hostname", "bux\n");
  struct timespec times[2] = {{0, UTIME_OMIT}, st.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (src() + "/etc/hostname").c_str(), times, 0), 0);
  auto changed = import_rootfs_base(src(), store());
  EXPECT_NE(changed.digest, first.digest);
  EXPECT_EQ(files_in(store()).size(), 2u);
}

TEST_F(RootfsBase, AnExistingTarOfTheDigestIsKept) {
  write_archive(archive(), {file("a")});
  auto first = import_rootfs_base(archive(), store());
  struct stat before {};
  ASSERT_EQ(::stat(first.tar_path.c_str(), &before), 0);
  auto again = import_rootfs_base(archive(), store());
  struct stat after {};
  ASSERT_EQ(::stat(again.tar_path.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(files_in(store()), std::vector<std::string>{first.digest.substr(7) + ".tar"});
}

TEST_F(RootfsBase, TheStoreIsCreatedPrivate) {
  write_archive(archive(), {file("a")});
  std::string deep = m_tmp.path() + "/x/y/store";
  import_rootfs_base(archive(), deep + "/");
  struct stat st {};
  ASSERT_EQ(::stat(deep.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(RootfsBase, CompressedTarsGiveThePlainTarsDigest) {
  auto items = sample_items();
  std::string plain = digest_of(items, archive_write_add_filter_none);
  EXPECT_EQ(digest_of(items, archive_write_add_filter_gzip), plain);
  EXPECT_EQ(digest_of(items, archive_write_add_filter_zstd), plain);
  EXPECT_EQ(digest_of(items, archive_write_add_filter_xz), plain);
  EXPECT_EQ(digest_of(items, archive_write_add_filter_bzip2), plain);
  EXPECT_EQ(files_in(store()).size(), 1u);
}

TEST_F(RootfsBase, GnuAndPaxTarsOfTheSameEntriesGiveTheSameDigest) {
  auto items = sample_items();
  write_archive(archive(), items, archive_write_add_filter_none, archive_write_set_format_gnutar);
  auto gnu = import_rootfs_base(archive(), store());
  write_archive(archive(), items, archive_write_add_filter_none, archive_write_set_format_pax);
  EXPECT_EQ(import_rootfs_base(archive(), store()).digest, gnu.digest);
  EXPECT_EQ(digest_of(items, archive_write_add_filter_none), gnu.digest);
}

// pax restricted writes a ustar header (whole seconds) unless an entry needs an extended one
// anyway, as a long or non-ASCII name does: only then does mtime keep its nanoseconds.
TEST_F(RootfsBase, MtimeNanosecondsRideOnlyInPaxExtendedHeaders) {
  Item plain = file("short");
  plain.nsec = 123456789;
  Item extended = file(std::string(120, 'l'));
  extended.nsec = 123456789;
  write_archive(archive(), {plain, extended});
  auto list = list_tar(import_rootfs_base(archive(), store()).tar_path);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].mtime, k_mtime);
  EXPECT_EQ(list[0].nsec, 0);
  EXPECT_EQ(list[1].mtime, k_mtime);
  EXPECT_EQ(list[1].nsec, 123456789);
}

TEST_F(RootfsBase, OtherArchiveFormatsAreRefused) {
  write_archive(archive(), {file("a")}, archive_write_add_filter_none,
                archive_write_set_format_zip);
  auto zip = refusal(archive());
  EXPECT_NE(zip.find("not a tar archive"), std::string::npos) << zip;
  EXPECT_NE(zip.find("zip"), std::string::npos) << zip;  // the hint
  write_archive(archive(), {file("a")}, archive_write_add_filter_gzip,
                archive_write_set_format_cpio_newc);
  EXPECT_NE(refusal(archive()).find("not a tar archive"), std::string::npos);
  put(archive(), std::string(5000, 'r'));
  EXPECT_NE(refusal(archive()).find("not a tar archive"), std::string::npos);
}

TEST_F(RootfsBase, TarDevicesUnderDevAreSkippedAndCounted) {
  write_archive(archive(), {dir("dev/"), node("dev/null", AE_IFCHR), node("dev/sda", AE_IFBLK),
                            file("etc/hostname")});
  auto base = import_rootfs_base(archive(), store());
  EXPECT_EQ(base.skipped_devices, 2u);
  EXPECT_EQ(base.entries, 2u);
  for (const auto& l : list_tar(base.tar_path)) {
    EXPECT_NE(l.type, unsigned{AE_IFCHR}) << l.path;
    EXPECT_NE(l.type, unsigned{AE_IFBLK}) << l.path;
  }
}

TEST_F(RootfsBase, DirectoryDevicesUnderDevAreSkippedAndCounted) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod of a device node needs root";
  fs::create_directories(src() + "/dev");
  fs::create_directories(src() + "/etc");
  ASSERT_EQ(::mknod((src() + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::mknod((src() + "/dev/loop0").c_str(), S_IFBLK | 0660, makedev(7, 0)), 0);
  put(src() + "/etc/hostname", "box\n");
  auto base = import_rootfs_base(src(), store());
  EXPECT_EQ(base.skipped_devices, 2u);
  EXPECT_EQ(base.entries, 3u);  // dev, etc, etc/hostname

  ASSERT_EQ(::mknod((src() + "/etc/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  fs::remove(store() + "/" + base.digest.substr(7) + ".tar");
  auto message = refusal(src());
  EXPECT_NE(message.find("entry 'etc/null' is a device node outside dev/"), std::string::npos)
      << message;
  EXPECT_NE(message.find("minimal /dev of its own"), std::string::npos) << message;
}

TEST_F(RootfsBase, DirectorySocketsAreSkipped) {
  fs::create_directories(src() + "/run");
  put(src() + "/run/keep", "k");
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  std::string sock = src() + "/run/s.sock";
  ASSERT_LT(sock.size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sock.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  auto base = import_rootfs_base(src(), store());
  EXPECT_EQ(base.entries, 2u);
  EXPECT_EQ(base.skipped_devices, 0u);
  EXPECT_EQ(find_listed(list_tar(base.tar_path), "run/s.sock"), nullptr);
}

TEST_F(RootfsBase, TheWalkNeverFollowsASymlink) {
  std::string outside = m_tmp.path() + "/outside";
  fs::create_directories(outside);
  put(outside + "/secret", "secret\n");
  std::string real = m_tmp.path() + "/real-root";
  fs::create_directories(real);
  fs::create_symlink(outside, real + "/escape");
  fs::create_symlink(outside + "/secret", real + "/secret-link");
  fs::create_symlink(real, src());  // PATH itself may be a symlink: resolved once
  auto base = import_rootfs_base(src(), store());
  auto list = list_tar(base.tar_path);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].path, "escape");
  EXPECT_EQ(list[0].type, unsigned{AE_IFLNK});
  EXPECT_EQ(list[0].symlink, outside);
  EXPECT_EQ(list[1].path, "secret-link");
  EXPECT_EQ(base.file_bytes, 0u);
}

TEST_F(RootfsBase, AFileThatChangesWhileReadIsRefused) {
  fs::create_directories(src());
  std::string big = src() + "/big";
  put(big, std::string(9 << 20, 'g'));
  bool grown = false;
  RootfsProgress grow = [&](std::uint64_t) {
    if (grown) return;
    grown = true;
    std::ofstream(big, std::ios::app) << "more";
  };
  try {
    import_rootfs_base(src(), store(), {}, grow);
    ADD_FAILURE() << "accepted";
  } catch (const kcr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("entry 'big' changed while kcr read it"),
              std::string::npos)
        << e.what();
  }
  EXPECT_TRUE(grown);
  EXPECT_EQ(files_in(store()), std::vector<std::string>{});
}

TEST_F(RootfsBase, ProgressIsReportedEveryFewMiB) {
  fs::create_directories(src());
  for (const char* name : {"a", "b", "c"}) put(src() + "/" + name, std::string(5 << 20, 'p'));
  std::vector<std::uint64_t> calls;
  auto base =
      import_rootfs_base(src(), store(), {}, [&](std::uint64_t done) { calls.push_back(done); });
  ASSERT_FALSE(calls.empty());
  EXPECT_LE(calls.size(), 4u);
  EXPECT_EQ(calls.back(), base.file_bytes);
  for (std::size_t i = 1; i + 1 < calls.size(); ++i) EXPECT_GE(calls[i] - calls[i - 1], 4u << 20);
}

TEST_F(RootfsBase, HostileTarEntriesAreRefusedNamingThem) {
  struct Case {
    std::vector<Item> items;
    std::string entry;  // as the message names it
    std::string why;
  };
  Item huge_owner = file("owned");
  huge_owner.uid = std::int64_t{1} << 33;
  std::string deep;
  while (deep.size() <= 4096) deep += std::string(100, 'd') + "/";
  deep += "f";
  const std::vector<Case> cases{
      {{file("/etc/passwd")}, "/etc/passwd", "has an absolute path"},
      {{file("a/../../etc/x")}, "a/../../etc/x", "climbs out with '..'"},
      {{file("../x")}, "../x", "climbs out with '..'"},
      {{file("a//b")}, "a//b", "empty component"},
      {{file("a/./b")}, "a/./b", "'.' component"},
      {{file(deep)}, deep.substr(0, 200), "longer than 4096 bytes"},
      {{file(std::string(256, 'c'))}, std::string(200, 'c'), "component longer than 255"},
      {{node("etc/tty", AE_IFCHR)}, "etc/tty", "is a device node outside dev/"},
      {{node("sda", AE_IFBLK)}, "sda", "is a device node outside dev/"},
      {{symlink_to("lib", "/usr/lib"), file("lib/evil")}, "lib/evil", "a symbolic link earlier"},
      {{symlink_to("l", "/tmp"), file("l/a/b")}, "l/a/b", "a symbolic link earlier"},
      {{symlink_to("l", "."), dir("l/")}, "l", "appears twice"},
      {{symlink_to("l", "/"), dir("l/"), file("l/etc/shadow")}, "l", "appears twice"},
      {{file("f"), dir("f/")}, "f", "appears twice"},
      {{file("f"), file("f/x")}, "f/x", "not a directory"},
      {{file("a"), file("a")}, "a", "appears twice"},
      {{dir("d/"), file("d")}, "d", "appears twice"},
      {{file("d/x"), file("d")}, "d", "comes after entries inside it"},
      {{symlink_to("s", "x"), symlink_to("s", "y")}, "s", "appears twice"},
      {{hardlink_to("h", "missing")}, "h", "which is no earlier entry"},
      {{hardlink_to("h", "f"), file("f")}, "h", "which is no earlier entry"},
      {{dir("d/"), hardlink_to("h", "d")}, "h", "which is not a regular file"},
      {{file("d/x"), hardlink_to("h", "d")}, "h", "which is not a regular file"},
      {{symlink_to("s", "t"), hardlink_to("h", "s")}, "h", "which is not a regular file"},
      {{node("p", AE_IFIFO), hardlink_to("h", "p")}, "h", "which is not a regular file"},
      {{hardlink_to("h", "h")}, "h", "is a hard link to itself"},
      {{file("a"), hardlink_to("h", "../a")}, "h", "which climbs out with '..'"},
      {{file("a"), hardlink_to("h", "/a")}, "h", "which has an absolute path"},
      {{symlink_to("s", "")}, "s", "no target"},
      {{symlink_to("s", std::string(4096, 't'))}, "s", "longer than 4095"},
      {{huge_owner}, "owned", "no valid id"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.entry);
    auto message = tar_refusal(c.items);
    EXPECT_NE(message.find("entry '" + c.entry), std::string::npos) << message;
    EXPECT_NE(message.find(c.why), std::string::npos) << message;
    EXPECT_NE(message.find("\nhint: "), std::string::npos);
    EXPECT_NE(message.find("rootfs " + archive()), std::string::npos) << message;
  }
}

TEST_F(RootfsBase, MessagesShowControlBytesEscaped) {
  auto message = tar_refusal({symlink_to("x\x01y", "/"), file("x\x01y/z")});
  EXPECT_NE(message.find("entry 'x\\x01y/z' lies under 'x\\x01y'"), std::string::npos) << message;
}

TEST_F(RootfsBase, WhatTarMayHoldIsAccepted) {
  write_archive(archive(),
                {file("d/x"), dir("d/"), dir("d/", 0700), file("a"), hardlink_to("b", "a"),
                 hardlink_to("c", "./b"), symlink_to("abs", "/etc/../../x"), node("fifo", AE_IFIFO),
                 file("dev/null"), dir("dev/shm/", 01777)});
  auto base = import_rootfs_base(archive(), store());
  EXPECT_EQ(base.entries, 10u);
  auto list = list_tar(base.tar_path);
  EXPECT_EQ(list[5].hardlink, "b");
  EXPECT_EQ(list[6].symlink, "/etc/../../x");
}

TEST_F(RootfsBase, LimitsAreEnforced) {
  RootfsLimits bytes;
  bytes.max_bytes = 10;
  auto message = tar_refusal({file("a", "12345"), file("b", "123456")}, bytes);
  EXPECT_NE(message.find("entry 'b' brings the files past 10 bytes"), std::string::npos) << message;
  RootfsLimits entries;
  entries.max_entries = 2;
  message = tar_refusal({file("a"), file("b"), file("c")}, entries);
  EXPECT_NE(message.find("more than 2 entries"), std::string::npos) << message;
  RootfsLimits paths;
  paths.max_path_bytes = 1000;
  std::vector<Item> many;
  for (int i = 0; i < 20; ++i) many.push_back(file("p" + std::to_string(i)));
  message = tar_refusal(many, paths);
  EXPECT_NE(message.find("more than 1000 bytes of path names"), std::string::npos) << message;

  fs::create_directories(src() + "/d");
  put(src() + "/d/a", "12345678901");
  message = refusal(src(), bytes);
  EXPECT_NE(message.find("entry 'd/a' brings the files past 10 bytes"), std::string::npos)
      << message;
}

TEST_F(RootfsBase, EmptyInputsAreRefused) {
  fs::create_directories(src());
  auto message = refusal(src());
  EXPECT_NE(message.find("rootfs " + src() + ": is an empty directory"), std::string::npos)
      << message;
  message = tar_refusal({});
  EXPECT_NE(message.find("holds no entries"), std::string::npos) << message;
  message = tar_refusal({dir("./")});
  EXPECT_NE(message.find("holds no entries"), std::string::npos) << message;
  message = tar_refusal({node("dev/null", AE_IFCHR)});
  EXPECT_NE(message.find("only device nodes under dev/"), std::string::npos) << message;
  put(archive(), "");
  message = refusal(archive());
  EXPECT_NE(message.find("rootfs " + archive()), std::string::npos) << message;
}

TEST_F(RootfsBase, AMissingOrSpecialPathIsRefused) {
  auto message = refusal(m_tmp.path() + "/nope");
  EXPECT_NE(message.find("rootfs " + m_tmp.path() + "/nope: No such file"), std::string::npos)
      << message;
  message = refusal("/dev/null");
  EXPECT_NE(message.find("neither a directory nor a regular file"), std::string::npos) << message;
}

TEST_F(RootfsBase, DirectoryPathsOverTheLimitAreRefused) {
  fs::create_directories(src());
  // 17 levels of 255-byte names: past 4096 bytes, built relative to each parent.
  kcr::UniqueFd fd(::open(src().c_str(), O_RDONLY | O_DIRECTORY));
  std::string name(255, 'l');
  for (int i = 0; i < 17; ++i) {
    ASSERT_EQ(::mkdirat(fd.get(), name.c_str(), 0755), 0);
    fd.reset(::openat(fd.get(), name.c_str(), O_RDONLY | O_DIRECTORY));
    ASSERT_TRUE(fd);
  }
  auto message = refusal(src());
  EXPECT_NE(message.find("has a path longer than 4096 bytes"), std::string::npos) << message;
  // TempDir's remove_all cannot reach that deep: removed bottom up, relative to each parent.
  std::vector<kcr::UniqueFd> chain;
  chain.emplace_back(::open(src().c_str(), O_RDONLY | O_DIRECTORY));
  for (int i = 0; i < 16; ++i) {
    chain.emplace_back(::openat(chain.back().get(), name.c_str(), O_RDONLY | O_DIRECTORY));
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    EXPECT_EQ(::unlinkat(it->get(), name.c_str(), AT_REMOVEDIR), 0);
  }
}

TEST_F(RootfsBase, TheStoreInsideTheRootfsIsRefused) {
  fs::create_directories(src() + "/etc");
  put(src() + "/etc/hostname", "box\n");
  std::string inner = src() + "/var/kcr";
  try {
    import_rootfs_base(src(), inner);
    ADD_FAILURE() << "accepted";
  } catch (const kcr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("entry 'var/kcr' is kcr's store"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(files_in(inner), std::vector<std::string>{});
}

TEST_F(RootfsBase, IsRootfsDigest) {
  std::string hex(64, 'a');
  EXPECT_TRUE(is_rootfs_digest("sha256:" + hex));
  EXPECT_TRUE(
      is_rootfs_digest("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(is_rootfs_digest(hex));
  EXPECT_FALSE(is_rootfs_digest("sha256:" + hex.substr(1)));
  EXPECT_FALSE(is_rootfs_digest("sha256:" + hex + "a"));
  EXPECT_FALSE(is_rootfs_digest("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(is_rootfs_digest("sha256:" + std::string(63, 'a') + "g"));
  EXPECT_FALSE(is_rootfs_digest("sha512:" + hex));
  EXPECT_FALSE(is_rootfs_digest(""));
}
