#include "core/rootfs_base.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <locale.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/sha256.hpp"
#include "core/unique_fd.hpp"

namespace kcr::core {

namespace {

constexpr std::size_t k_max_path = 4096;
constexpr std::size_t k_max_component = 255;
constexpr std::size_t k_max_link_target = 4095;  // the most symlink(2) takes
constexpr std::size_t k_buffer_bytes = 256 << 10;
constexpr std::uint64_t k_progress_step = 4 << 20;
// What one path kept by the checks costs beside its bytes (hash node, string header).
constexpr std::uint64_t k_index_node_bytes = 64;
constexpr std::int64_t k_max_id = 0xfffffffe;  // (uid_t)-1 means "no owner" to chown(2)

// kcr mounts a minimal /dev of its own over every workload's root, so a rootfs's device nodes
// under dev/ would be hidden anyway: they are left out. Anywhere else one is refused: the guest
// must not make device nodes a workload could open.
constexpr const char* k_device_hint =
    "kcr gives every workload a minimal /dev of its own and leaves out the device nodes under "
    "dev/; remove this one from the root filesystem";
constexpr const char* k_directory_hint =
    "fix or remove that entry in the directory, or give kcr a tar of the container instead "
    "(podman export CONTAINER -o FILE.tar)";
constexpr const char* k_tar_hint =
    "the archive is not a plain container root filesystem; make one with `podman export "
    "CONTAINER -o FILE.tar` or `tar -C DIR -cf FILE.tar .`";
constexpr const char* k_format_hint =
    "give a directory or a tar archive, plain or compressed with gzip, zstd, xz or bzip2 "
    "(podman export writes one); zip, cpio and other formats are not read";

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// A path as it may be shown: control bytes from a hostile input become \xNN, and a long one is
// cut.
std::string shown_path(std::string_view path) {
  std::string out;
  for (unsigned char c : path.substr(0, 200)) {
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (path.size() > 200) out += "...";
  return out;
}

using ArchivePtr = std::unique_ptr<struct archive, int (*)(struct archive*)>;
using EntryPtr = std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)>;
using DirPtr = std::unique_ptr<DIR, int (*)(DIR*)>;

std::string archive_message(struct archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

// libarchive converts names by the locale's character set. In "C" it takes the bytes as they
// are and writes every non-ASCII name raw in a pax header with hdrcharset=BINARY (GNU tar
// extracts those bytes; 1.34 warns that it does not know the keyword). Whatever locale kcr runs
// in, the import runs in "C", so the same input gives the same bytes.
class CLocale {
 public:
  CLocale() : m_c(::newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(nullptr))) {
    if (m_c) m_old = ::uselocale(m_c);
  }
  ~CLocale() {
    if (!m_c) return;
    ::uselocale(m_old);
    ::freelocale(m_c);
  }
  CLocale(const CLocale&) = delete;
  CLocale& operator=(const CLocale&) = delete;

 private:
  locale_t m_c;
  locale_t m_old = LC_GLOBAL_LOCALE;
};

enum class Kind { file, hardlink, directory, symlink, fifo, device };

// One entry as read from the input, its path relative to the root.
struct Entry {
  std::string path;
  Kind kind = Kind::file;
  unsigned perm = 0;  // 07777
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::int64_t mtime = 0;
  long mtime_nsec = 0;
  std::uint64_t size = 0;  // a regular file's
  std::string link;        // a symlink's target, or the earlier path a hard link links to
};

// The input, for messages: "rootfs PATH: ..." with the hint that fits its kind.
class Source {
 public:
  Source(std::string path, bool directory)
      : m_path(std::move(path)), m_hint(directory ? k_directory_hint : k_tar_hint) {}

  const std::string& path() const { return m_path; }

  [[noreturn]] void fail(const std::string& why, const std::string& hint = {}) const {
    throw Error("rootfs " + m_path + ": " + why, hint.empty() ? m_hint : hint);
  }
  [[noreturn]] void fail_entry(const std::string& name, const std::string& why,
                               const std::string& hint = {}) const {
    fail("entry '" + shown_path(name) + "' " + why, hint);
  }

 private:
  std::string m_path;
  std::string m_hint;
};

// What is wrong with PATH as a relative, clean path, or nullptr when nothing is. Names are
// bytes: they need not be UTF-8.
const char* path_problem(std::string_view path) {
  if (path.empty()) return "has an empty path";
  if (path.size() > k_max_path) return "has a path longer than 4096 bytes";
  if (path.find('\0') != std::string_view::npos) return "has a NUL byte in its path";
  if (path[0] == '/') return "has an absolute path";
  for (std::size_t start = 0; start <= path.size();) {
    auto end = std::min(path.find('/', start), path.size());
    auto part = path.substr(start, end - start);
    if (part.empty()) return "has an empty component in its path ('//' or a trailing '/')";
    if (part == "..") return "climbs out with '..'";
    if (part == ".") return "has a '.' component in its path";
    if (part.size() > k_max_component) return "has a path component longer than 255 bytes";
    start = end + 1;
  }
  return nullptr;
}

// Calls PROGRESS each time another k_progress_step bytes are done.
class ProgressSteps {
 public:
  explicit ProgressSteps(const RootfsProgress& progress) : m_progress(progress) {}
  void add(std::uint64_t bytes) {
    m_done += bytes;
    if (m_progress && m_done >= m_next) {
      m_next = m_done + k_progress_step;
      m_reported = m_done;
      m_progress(m_done);
    }
  }
  // Reports the total, unless that was the last report.
  void finish() {
    if (m_progress && m_done != m_reported) m_progress(m_done);
  }

 private:
  const RootfsProgress& m_progress;
  std::uint64_t m_done = 0;
  std::uint64_t m_reported = 0;
  std::uint64_t m_next = k_progress_step;
};

// The rules every entry obeys, whatever the input, so that GNU tar extracting the canonical tar
// writes only below its target directory: a clean relative path; nothing below an earlier
// symlink or other non-directory (tar would write through it); a path once, but for
// directories; hard links only to an earlier regular file; no device node; the limits.
class Rules {
 public:
  Rules(const Source& source, const RootfsLimits& limits) : m_source(source), m_limits(limits) {}

  // Counts one entry read, kept or not, against the limit.
  void count() {
    if (++m_read > m_limits.max_entries) {
      m_source.fail("holds more than " + std::to_string(m_limits.max_entries) +
                        " entries (the most kcr imports)",
                    "a container root filesystem has far fewer; check that this is the one "
                    "meant");
    }
  }

  // Checks E; false when it is left out (a device node under dev/).
  bool admit(const Entry& e) {
    if (const char* problem = path_problem(e.path)) m_source.fail_entry(e.path, problem);
    if (e.kind == Kind::device) {
      if (starts_with(e.path, "dev/")) {
        ++m_skipped_devices;
        return false;
      }
      m_source.fail_entry(e.path, "is a device node outside dev/", k_device_hint);
    }
    auto missing = check_parents(e.path);
    auto it = m_index.find(e.path);
    if (it != m_index.end()) {
      if (e.kind == Kind::directory &&
          (it->second == Seen::directory || it->second == Seen::parent)) {
        it->second = Seen::directory;
        return true;  // a directory again (or after entries inside it): tar sets its metadata
      }
      if (it->second == Seen::parent) {
        m_source.fail_entry(e.path, "comes after entries inside it but is not a directory");
      }
      m_source.fail_entry(e.path, "appears twice");
    }
    switch (e.kind) {
      case Kind::hardlink:
        check_hardlink(e);
        break;
      case Kind::file:
        if (e.size > m_limits.max_bytes - m_file_bytes) {
          m_source.fail_entry(e.path,
                              "brings the files past " + std::to_string(m_limits.max_bytes) +
                                  " bytes in all (the most kcr imports)",
                              "check that this is the root filesystem meant: a container's "
                              "is far smaller");
        }
        m_file_bytes += e.size;
        break;
      case Kind::symlink:
        if (e.link.empty()) m_source.fail_entry(e.path, "is a symbolic link with no target");
        if (e.link.size() > k_max_link_target || e.link.find('\0') != std::string::npos) {
          m_source.fail_entry(e.path,
                              "is a symbolic link whose target is longer than 4095 "
                              "bytes or holds a NUL byte");
        }
        break;
      default:
        break;
    }
    remember(e.path, seen_of(e.kind));
    for (auto end : missing) remember(e.path.substr(0, end), Seen::parent);
    return true;
  }

  std::uint64_t file_bytes() const { return m_file_bytes; }
  std::uint64_t skipped_devices() const { return m_skipped_devices; }

 private:
  // What a path kept in the index was: parent is a directory no entry named yet, implied by an
  // entry inside it.
  enum class Seen : unsigned char { parent, directory, file, symlink, other };

  static Seen seen_of(Kind kind) {
    switch (kind) {
      case Kind::directory:
        return Seen::directory;
      case Kind::file:
      case Kind::hardlink:
        return Seen::file;
      case Kind::symlink:
        return Seen::symlink;
      default:
        return Seen::other;
    }
  }

  // Refuses PATH when one of its parents is an earlier non-directory entry. Returns where the
  // parents the index does not hold yet end (every parent of a path in it is in it too).
  std::vector<std::size_t> check_parents(const std::string& path) const {
    std::vector<std::size_t> missing;
    for (auto end = path.rfind('/'); end != std::string::npos && end > 0;
         end = path.rfind('/', end - 1)) {
      auto it = m_index.find(path.substr(0, end));
      if (it == m_index.end()) {
        missing.push_back(end);
        continue;
      }
      if (it->second == Seen::symlink) {
        m_source.fail_entry(path, "lies under '" + shown_path(it->first) +
                                      "', a symbolic link earlier in the input (extracting it "
                                      "would write through the link)");
      }
      if (it->second == Seen::file || it->second == Seen::other) {
        m_source.fail_entry(path, "lies under '" + shown_path(it->first) +
                                      "', an earlier entry that is not a directory");
      }
      break;
    }
    return missing;
  }

  void check_hardlink(const Entry& e) const {
    std::string what = "is a hard link to '" + shown_path(e.link) + "'";
    if (const char* problem = path_problem(e.link)) {
      m_source.fail_entry(e.path, what + ", which " + problem);
    }
    if (e.link == e.path) m_source.fail_entry(e.path, "is a hard link to itself");
    auto it = m_index.find(e.link);
    if (it == m_index.end()) m_source.fail_entry(e.path, what + ", which is no earlier entry");
    if (it->second != Seen::file) {
      m_source.fail_entry(e.path, what + ", which is not a regular file");
    }
  }

  void remember(std::string path, Seen seen) {
    m_index_bytes += path.size() + k_index_node_bytes;
    if (m_index_bytes > m_limits.max_path_bytes) {
      m_source.fail("holds more than " + std::to_string(m_limits.max_path_bytes) +
                        " bytes of path names (the most kcr checks)",
                    "a container root filesystem has far fewer; check that this is the one "
                    "meant");
    }
    m_index.emplace(std::move(path), seen);
  }

  const Source& m_source;
  const RootfsLimits& m_limits;
  std::unordered_map<std::string, Seen> m_index;
  std::uint64_t m_index_bytes = 0;
  std::uint64_t m_read = 0;
  std::uint64_t m_file_bytes = 0;
  std::uint64_t m_skipped_devices = 0;
};

// The canonical tar, written as STORE_DIR/.partial-<random> through a callback that hashes every
// byte; removed unless finish() renames it into place.
class CanonicalTar {
 public:
  CanonicalTar(const Source& source, std::string store_dir)
      : m_source(source),
        m_store(std::move(store_dir)),
        m_a(archive_write_new(), archive_write_free) {
    m_partial = m_store + "/.partial-" + random_suffix();
    m_fd.reset(::open(m_partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!m_fd) {
      m_partial.clear();
      throw_errno("rootfs " + source.path() + ": create a file in the store " + m_store);
    }
    if (!m_a) throw Error("out of memory creating an archive");
    check(archive_write_set_format_pax_restricted(m_a.get()), "set the tar format of");
    check(archive_write_open(m_a.get(), this, nullptr, &CanonicalTar::write_out, nullptr), "open");
  }
  ~CanonicalTar() {
    // Freeing an archive not closed yet flushes it: the callback must drop that, while this
    // object is still whole.
    m_discard = true;
    m_a.reset();
    if (!m_partial.empty()) ::unlink(m_partial.c_str());
  }
  CanonicalTar(const CanonicalTar&) = delete;
  CanonicalTar& operator=(const CanonicalTar&) = delete;

  // Writes E's header: only the fields below. No atime, ctime or birth time, no user or group
  // names, no xattrs or ACLs: security.capability (file capabilities) is not carried yet.
  // Nanoseconds of mtime are kept where pax restricted writes an extended header anyway (a long
  // or non-ASCII name); elsewhere its ustar header holds seconds.
  void header(const Entry& e) {
    EntryPtr ae(archive_entry_new(), archive_entry_free);
    if (!ae) throw Error("out of memory writing an archive");
    archive_entry_copy_pathname(ae.get(), e.path.c_str());
    archive_entry_set_perm(ae.get(), e.perm & 07777);
    archive_entry_set_uid(ae.get(), e.uid);
    archive_entry_set_gid(ae.get(), e.gid);
    archive_entry_set_mtime(ae.get(), static_cast<time_t>(e.mtime), e.mtime_nsec);
    switch (e.kind) {
      case Kind::file:
        archive_entry_set_filetype(ae.get(), AE_IFREG);
        archive_entry_set_size(ae.get(), static_cast<la_int64_t>(e.size));
        break;
      case Kind::hardlink:
        archive_entry_set_filetype(ae.get(), AE_IFREG);
        archive_entry_copy_hardlink(ae.get(), e.link.c_str());
        archive_entry_set_size(ae.get(), 0);
        break;
      case Kind::directory:
        archive_entry_set_filetype(ae.get(), AE_IFDIR);
        break;
      case Kind::symlink:
        archive_entry_set_filetype(ae.get(), AE_IFLNK);
        archive_entry_copy_symlink(ae.get(), e.link.c_str());
        break;
      case Kind::fifo:
        archive_entry_set_filetype(ae.get(), AE_IFIFO);
        break;
      case Kind::device:
        throw Error("internal error: a device node reached the canonical tar");
    }
    // ARCHIVE_WARN: a name not in the locale's character set, written as bytes (see CLocale).
    check(archive_write_header(m_a.get(), ae.get()), "write '" + shown_path(e.path) + "' to");
    ++m_entries;
  }

  void data(const char* p, std::size_t n) {
    if (archive_write_data(m_a.get(), p, n) != static_cast<la_ssize_t>(n)) {
      check(ARCHIVE_FATAL, "write file data to");
    }
  }

  std::uint64_t entries() const { return m_entries; }

  // Closes the tar, fsyncs it and renames it to <hex>.tar, or keeps one already there.
  RootfsBase finish() {
    check(archive_write_close(m_a.get()), "finish");
    if (::fsync(m_fd.get()) != 0) throw_errno("fsync " + m_partial);
    if (::close(m_fd.release()) != 0) throw_errno("close " + m_partial);
    RootfsBase out;
    std::string hex = m_hash.hex_digest();
    out.digest = "sha256:" + hex;
    out.tar_path = m_store + "/" + hex + ".tar";
    out.tar_bytes = m_bytes;
    out.entries = m_entries;
    struct stat st {};
    bool kept = ::stat(out.tar_path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
                static_cast<std::uint64_t>(st.st_size) == m_bytes;
    if (!kept) {  // none there yet, or a damaged one: replaced
      if (::rename(m_partial.c_str(), out.tar_path.c_str()) != 0) {
        throw_errno("rename the canonical tar into place (" + out.tar_path + ")");
      }
      m_partial.clear();
    }
    UniqueFd dir(::open(m_store.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir || ::fsync(dir.get()) != 0) throw_errno("fsync the store " + m_store);
    return out;
  }

 private:
  // libarchive's write callback: C calls it, so nothing may be thrown through it.
  static la_ssize_t write_out(struct archive* a, void* self_ptr, const void* buf, std::size_t n) {
    auto* self = static_cast<CanonicalTar*>(self_ptr);
    if (self->m_discard) return static_cast<la_ssize_t>(n);
    try {
      self->m_hash.update(buf, n);
    } catch (const std::exception& e) {
      archive_set_error(a, EIO, "%s", e.what());
      return -1;
    }
    if (!write_all(self->m_fd.get(), std::string_view(static_cast<const char*>(buf), n))) {
      int err = errno;
      archive_set_error(a, err, "write %s: %s", self->m_partial.c_str(), std::strerror(err));
      return -1;
    }
    self->m_bytes += n;
    return static_cast<la_ssize_t>(n);
  }

  void check(int r, const std::string& what) const {
    if (r < ARCHIVE_WARN) {
      throw Error("rootfs " + m_source.path() + ": cannot " + what +
                  " the canonical tar: " + archive_message(m_a.get()));
    }
  }

  const Source& m_source;
  std::string m_store;
  std::string m_partial;
  UniqueFd m_fd;
  ArchivePtr m_a;
  Sha256 m_hash;
  std::uint64_t m_bytes = 0;
  std::uint64_t m_entries = 0;
  bool m_discard = false;
};

// A directory, walked without following a symbolic link: every directory and file is opened
// relative to its parent's descriptor with O_NOFOLLOW, and checked to be what fstatat saw.
class DirectoryIn {
 public:
  DirectoryIn(const Source& source, Rules& rules, CanonicalTar& tar, ProgressSteps& progress,
              const struct stat& store)
      : m_source(source), m_rules(rules), m_tar(tar), m_progress(progress), m_store(store) {}

  void read(UniqueFd root) { walk(std::move(root), ""); }

 private:
  void walk(UniqueFd fd, const std::string& prefix) {
    DirPtr dir(::fdopendir(fd.get()), ::closedir);
    if (!dir) fail_errno(prefix, "cannot be listed");
    fd.release();
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* d = ::readdir(dir.get())) {
      std::string_view name = d->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
      errno = 0;
    }
    if (errno != 0) fail_errno(prefix, "cannot be listed");
    std::sort(names.begin(), names.end());  // by bytes: char_traits<char> compares unsigned
    int dfd = ::dirfd(dir.get());
    for (const auto& name : names) {
      std::string path = prefix.empty() ? name : prefix + "/" + name;
      struct stat st {};
      if (::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        fail_errno(path, "cannot be read");
      }
      m_rules.count();
      switch (st.st_mode & S_IFMT) {
        case S_IFREG:
          file(dfd, name, path, st);
          break;
        case S_IFDIR:
          directory(dfd, name, path, st);
          break;
        case S_IFLNK:
          symlink(dfd, name, path, st);
          break;
        case S_IFCHR:
        case S_IFBLK:
          add(entry_of(path, Kind::device, st));
          break;
        case S_IFIFO:
          add(entry_of(path, Kind::fifo, st));
          break;
        default:
          // Sockets (and whatever else) are left out and not counted: tar cannot carry a
          // socket, and one is only the trace of a process that ran there.
          break;
      }
    }
  }

  static Entry entry_of(const std::string& path, Kind kind, const struct stat& st) {
    Entry e;
    e.path = path;
    e.kind = kind;
    e.perm = st.st_mode & 07777;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.mtime = st.st_mtim.tv_sec;
    e.mtime_nsec = st.st_mtim.tv_nsec;
    return e;
  }

  bool add(const Entry& e) {
    if (!m_rules.admit(e)) return false;
    m_tar.header(e);
    return true;
  }

  void file(int dfd, const std::string& name, const std::string& path, const struct stat& seen) {
    std::pair<dev_t, ino_t> id{seen.st_dev, seen.st_ino};
    if (seen.st_nlink > 1) {
      auto it = m_links.find(id);
      if (it != m_links.end()) {
        Entry e = entry_of(path, Kind::hardlink, seen);
        e.link = it->second;
        add(e);
        return;
      }
    }
    // O_NONBLOCK: should a FIFO have taken the file's place, opening it does not wait.
    UniqueFd fd(
        ::openat(dfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) fail_errno(path, "cannot be read");
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail_errno(path, "cannot be read");
    if (!S_ISREG(st.st_mode) || st.st_dev != seen.st_dev || st.st_ino != seen.st_ino) {
      changed(path);
    }
    Entry e = entry_of(path, Kind::file, st);
    e.size = static_cast<std::uint64_t>(st.st_size);
    add(e);
    std::uint64_t done = 0;
    m_buf.resize(k_buffer_bytes);
    while (done < e.size) {
      ssize_t n =
          ::read(fd.get(), m_buf.data(), std::min<std::uint64_t>(m_buf.size(), e.size - done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_errno(path, "cannot be read");
      if (n == 0) changed(path);
      m_tar.data(m_buf.data(), static_cast<std::size_t>(n));
      done += static_cast<std::uint64_t>(n);
      m_progress.add(static_cast<std::uint64_t>(n));
    }
    char extra = 0;
    ssize_t n = 0;
    do {
      n = ::read(fd.get(), &extra, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 0 || ::fstat(fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != e.size) {
      changed(path);
    }
    if (seen.st_nlink > 1) m_links.emplace(id, path);
  }

  void directory(int dfd, const std::string& name, const std::string& path,
                 const struct stat& seen) {
    if (seen.st_dev == m_store.st_dev && seen.st_ino == m_store.st_ino) {
      m_source.fail_entry(path, "is kcr's store of root filesystems",
                          "give kcr a root filesystem that does not hold its store");
    }
    add(entry_of(path, Kind::directory, seen));
    UniqueFd fd(::openat(dfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) fail_errno(path, "cannot be opened");
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || st.st_dev != seen.st_dev || st.st_ino != seen.st_ino) {
      changed(path);
    }
    walk(std::move(fd), path);
  }

  void symlink(int dfd, const std::string& name, const std::string& path, const struct stat& seen) {
    // One byte more than a target may have, so that a longer one is seen (and refused).
    std::string target(k_max_link_target + 1, '\0');
    ssize_t n = ::readlinkat(dfd, name.c_str(), target.data(), target.size());
    if (n < 0) fail_errno(path, "cannot be read");
    target.resize(static_cast<std::size_t>(n));
    Entry e = entry_of(path, Kind::symlink, seen);
    e.link = std::move(target);
    add(e);
  }

  [[noreturn]] void changed(const std::string& path) const {
    m_source.fail_entry(path, "changed while kcr read it",
                        "stop whatever writes to the directory (stop the container), then run "
                        "again");
  }

  [[noreturn]] void fail_errno(const std::string& path, const std::string& what) const {
    int err = errno;
    std::string hint = err == EACCES || err == EPERM
                           ? "run kcr as a user who may read the whole tree (for a rootless "
                             "container's files, under `podman unshare`), or give kcr a tar of "
                             "the container (podman export CONTAINER -o FILE.tar)"
                           : std::string();
    if (path.empty()) m_source.fail(what + ": " + std::strerror(err), hint);
    m_source.fail_entry(path, what + ": " + std::strerror(err), hint);
  }

  const Source& m_source;
  Rules& m_rules;
  CanonicalTar& m_tar;
  ProgressSteps& m_progress;
  const struct stat& m_store;
  std::map<std::pair<dev_t, ino_t>, std::string> m_links;  // files with nlink > 1, first path
  std::string m_buf;
};

// A tar archive (ustar, pax, GNU), maybe compressed, read in its own order.
class TarIn {
 public:
  TarIn(const Source& source, Rules& rules, CanonicalTar& tar, ProgressSteps& progress)
      : m_source(source),
        m_rules(rules),
        m_tar(tar),
        m_progress(progress),
        m_a(archive_read_new(), archive_read_free) {
    if (!m_a) throw Error("out of memory opening an archive");
    archive_read_support_filter_all(m_a.get());
    archive_read_support_format_tar(m_a.get());
    archive_read_support_format_gnutar(m_a.get());
    if (archive_read_open_filename(m_a.get(), source.path().c_str(), 64 << 10) != ARCHIVE_OK) {
      source.fail("is not a tar archive, or cannot be read: " + archive_message(m_a.get()),
                  k_format_hint);
    }
  }

  void read() {
    std::string last;
    for (;;) {
      struct archive_entry* ae = nullptr;
      int r = archive_read_next_header(m_a.get(), &ae);
      if (r == ARCHIVE_EOF) return;
      // ARCHIVE_WARN leaves a whole entry: libarchive warns of a name it cannot convert to the
      // locale's character set, and keeps its bytes.
      if (r < ARCHIVE_WARN) {
        if (last.empty()) {
          m_source.fail("is not a tar archive, or is damaged: " + archive_message(m_a.get()),
                        k_format_hint);
        }
        m_source.fail("cannot be read after entry '" + shown_path(last) +
                      "': " + archive_message(m_a.get()));
      }
      if ((archive_format(m_a.get()) & ARCHIVE_FORMAT_BASE_MASK) != ARCHIVE_FORMAT_TAR) {
        m_source.fail("is not a tar archive", k_format_hint);
      }
      m_rules.count();
      Entry e;
      bool root = !entry_of(ae, &e);
      last = e.path.empty() ? "." : e.path;
      if (root || !m_rules.admit(e)) continue;  // the root itself, or a device under dev/
      m_tar.header(e);
      if (e.kind == Kind::file) copy(e);
    }
  }

 private:
  // E from AE; false for the root directory itself ("." or "./"), which is no entry.
  bool entry_of(struct archive_entry* ae, Entry* e) const {
    const char* name = archive_entry_pathname(ae);
    if (!name) name = archive_entry_pathname_utf8(ae);
    if (!name || !*name) m_source.fail("an entry has no name");
    const char* hardlink = archive_entry_hardlink(ae);
    auto type = archive_entry_filetype(ae);
    e->path = relative(name);
    if (type == AE_IFDIR && !hardlink && e->path.size() > 1 && e->path.back() == '/') {
      e->path.pop_back();
    }
    if (e->path.empty() || e->path == ".") return false;
    e->perm = archive_entry_perm(ae) & 07777;
    e->uid = archive_entry_uid(ae);
    e->gid = archive_entry_gid(ae);
    if (e->uid < 0 || e->uid > k_max_id || e->gid < 0 || e->gid > k_max_id) {
      m_source.fail_entry(e->path, "has an owner (uid " + std::to_string(e->uid) + ", gid " +
                                       std::to_string(e->gid) + ") that is no valid id");
    }
    if (archive_entry_mtime_is_set(ae)) {
      e->mtime = archive_entry_mtime(ae);
      e->mtime_nsec = archive_entry_mtime_nsec(ae);
    }
    if (hardlink) {
      e->kind = Kind::hardlink;
      e->link = relative(hardlink);
      return true;
    }
    switch (type) {
      case AE_IFREG:
        if (!archive_entry_size_is_set(ae) || archive_entry_size(ae) < 0) {
          m_source.fail_entry(e->path, "is a file with no valid size");
        }
        e->kind = Kind::file;
        e->size = static_cast<std::uint64_t>(archive_entry_size(ae));
        break;
      case AE_IFDIR:
        e->kind = Kind::directory;
        break;
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(ae);
        if (!target) target = archive_entry_symlink_utf8(ae);
        e->kind = Kind::symlink;
        e->link = target ? target : "";
        break;
      }
      case AE_IFCHR:
      case AE_IFBLK:
        e->kind = Kind::device;
        break;
      case AE_IFIFO:
        e->kind = Kind::fifo;
        break;
      case AE_IFSOCK:
        // Refused, where a directory's sockets are skipped: no tar tool writes one, so an
        // archive that claims one is not what it seems.
        m_source.fail_entry(e->path, "is a socket");
      default:
        m_source.fail_entry(e->path, "has a file type tar archives do not hold");
    }
    return true;
  }

  // NAME without one leading "./": tar -C DIR . writes its names so.
  static std::string relative(std::string_view name) {
    if (starts_with(name, "./")) name.remove_prefix(2);
    return std::string(name);
  }

  void copy(const Entry& e) {
    std::uint64_t done = 0;
    m_buf.resize(k_buffer_bytes);
    for (;;) {
      la_ssize_t n = archive_read_data(m_a.get(), m_buf.data(), m_buf.size());
      if (n < 0) m_source.fail_entry(e.path, "cannot be read: " + archive_message(m_a.get()));
      if (n == 0) break;
      auto len = static_cast<std::uint64_t>(n);
      if (len > e.size - done) m_source.fail_entry(e.path, "holds more than its size says");
      m_tar.data(m_buf.data(), static_cast<std::size_t>(n));
      done += len;
      m_progress.add(len);
    }
    if (done != e.size) m_source.fail_entry(e.path, "holds less than its size says");
  }

  const Source& m_source;
  Rules& m_rules;
  CanonicalTar& m_tar;
  ProgressSteps& m_progress;
  ArchivePtr m_a;
  std::string m_buf;
};

// Creates DIR (mode 0700) and its missing parents; returns what it is.
struct stat make_store(const std::string& dir) {
  std::string parent = dir.substr(0, dir.rfind('/') == std::string::npos ? 0 : dir.rfind('/'));
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw_errno("create the rootfs store " + dir);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw_errno("rootfs store " + dir);
  if (!S_ISDIR(st.st_mode)) throw Error("the rootfs store " + dir + " is not a directory");
  return st;
}

}  // namespace

RootfsBase import_rootfs_base(const std::string& path, const std::string& store_dir,
                              const RootfsLimits& limits, const RootfsProgress& progress) {
  CLocale c_locale;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    throw Error("rootfs " + path + ": " + std::strerror(err),
                err == ENOENT ? "give the path of a directory or of a tar archive" : "",
                ExitCode::usage);
  }
  bool directory = S_ISDIR(st.st_mode);
  if (!directory && !S_ISREG(st.st_mode)) {
    throw Error("rootfs " + path + " is neither a directory nor a regular file", k_format_hint,
                ExitCode::usage);
  }
  Source source(path, directory);
  std::string store = store_dir;
  while (store.size() > 1 && store.back() == '/') store.pop_back();
  struct stat store_st = make_store(store);

  Rules rules(source, limits);
  ProgressSteps steps(progress);
  CanonicalTar tar(source, store);
  if (directory) {
    // PATH itself may be a symlink to the directory: resolved here, once.
    UniqueFd root(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) throw_errno("rootfs " + path + ": open");
    DirectoryIn(source, rules, tar, steps, store_st).read(std::move(root));
  } else {
    TarIn(source, rules, tar, steps).read();
  }
  steps.finish();
  if (tar.entries() == 0) {
    std::string why = directory ? "is an empty directory" : "holds no entries";
    if (rules.skipped_devices()) why = "holds only device nodes under dev/, which kcr leaves out";
    source.fail(why, "give the path of the container's root filesystem");
  }
  RootfsBase out = tar.finish();
  out.file_bytes = rules.file_bytes();
  out.skipped_devices = rules.skipped_devices();
  return out;
}

bool is_rootfs_digest(std::string_view text) {
  constexpr std::string_view prefix = "sha256:";
  if (text.size() != prefix.size() + 64 || !starts_with(text, prefix)) return false;
  return std::all_of(text.begin() + prefix.size(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace kcr::core
