#include "images/agent/copy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/unique_fd.hpp"

namespace kcr::agent {

namespace {

constexpr std::size_t k_chunk_bytes = 1 << 20;
constexpr int k_max_depth = 64;
constexpr uint64_t k_max_entries = 1000000;

[[noreturn]] void fail_path(const std::string& what, const std::string& path, int err) {
  throw Error(what + " " + path + " in the workload: " + std::strerror(err));
}

// The workload's root directory as an O_PATH fd.
UniqueFd open_root(const Workload& w) {
  if (!w.running) {
    throw Error("workload '" + w.name + "' is not running", "kcr ps VM shows its state");
  }
  std::string root = "/proc/" + std::to_string(w.pid) + "/root";
  int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail_path("cannot open the root of", "'" + w.name + "'", errno);
  return UniqueFd(fd);
}

// PATH resolved inside ROOT: ".." stops at it, links are followed only
// within it, /proc's magic links not at all.
int open_in_root(int root, const std::string& path, int flags, mode_t mode = 0) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = mode;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string p = path.empty() ? "." : path;
  return static_cast<int>(::syscall(SYS_openat2, root, p.c_str(), &how, sizeof how));
}

void check_path(const std::string& path) {
  if (path.empty() || path[0] != '/') {
    throw Error("a path in the workload must be absolute, not '" + path + "'");
  }
  if (path.size() > 4096 || path.find('\0') != std::string::npos) {
    throw Error("a path in the workload must be under 4096 bytes and hold no NUL");
  }
}

// PATH's directory opened inside ROOT, and its last component.
std::pair<UniqueFd, std::string> open_parent(int root, const std::string& path) {
  check_path(path);
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.rfind('/');
  std::string dir = p.substr(0, slash == 0 ? 1 : slash);
  std::string name = p.substr(slash + 1);
  if (name.empty() || name == "." || name == "..") {
    throw Error("'" + path + "' names no entry to create", "name the file: /DIR/NAME");
  }
  int fd = open_in_root(root, dir, O_PATH | O_DIRECTORY);
  if (fd < 0) fail_path("cannot open the directory", dir, errno);
  return {UniqueFd(fd), name};
}

// The workload's root user: its init's uid and gid as the guest sees them
// (a host id under --uidmap).
std::pair<uid_t, gid_t> owner_of(const Workload& w) {
  auto status = core::try_read_file("/proc/" + std::to_string(w.pid) + "/status", 1 << 16);
  uid_t uid = 0;
  gid_t gid = 0;
  if (status) {
    auto field = [&](const char* key) -> unsigned long {
      auto at = status->find(key);
      if (at == std::string::npos) return 0;
      return std::strtoul(status->c_str() + at + std::strlen(key), nullptr, 10);
    };
    uid = static_cast<uid_t>(field("\nUid:\t"));
    gid = static_cast<gid_t>(field("\nGid:\t"));
  }
  return {uid, gid};
}

void write_all_at(int fd, const std::string& data, uint64_t offset, const std::string& path) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_path("cannot write", path, errno);
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

void copy_in(const Workload& workload, const proto::CopyInRequest& r) {
  UniqueFd root = open_root(workload);
  auto [parent, name] = open_parent(root.get(), r.path());
  auto [uid, gid] = owner_of(workload);
  mode_t mode = static_cast<mode_t>(r.mode() & 07777);
  switch (r.kind()) {
    case proto::COPY_DIRECTORY: {
      if (::mkdirat(parent.get(), name.c_str(), mode) != 0) {
        struct stat st {};
        if (errno != EEXIST ||
            ::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(st.st_mode)) {
          fail_path("cannot make the directory", r.path(), errno == 0 ? EEXIST : errno);
        }
        return;  // an existing directory is copied into, as cp -r does
      }
      if (::fchownat(parent.get(), name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0 ||
          ::fchmodat(parent.get(), name.c_str(), mode, 0) != 0) {
        fail_path("cannot set the owner of", r.path(), errno);
      }
      return;
    }
    case proto::COPY_SYMLINK: {
      if (r.target().empty() || r.target().size() > 4096) {
        throw Error("the link " + r.path() + " needs a target of 1 to 4096 bytes");
      }
      if (::symlinkat(r.target().c_str(), parent.get(), name.c_str()) != 0) {
        fail_path("cannot make the link", r.path(), errno);
      }
      if (::fchownat(parent.get(), name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
        fail_path("cannot set the owner of", r.path(), errno);
      }
      return;
    }
    case proto::COPY_FILE:
      break;
    default:
      throw Error("kcr cp copies files, directories and links only (" + r.path() + ")");
  }
  // A hidden temporary beside the file, renamed into place with the last
  // chunk: the path never holds half a file.
  std::string tmp = "." + name + ".kcr-cp";
  if (tmp.size() > 255) tmp = ".kcr-cp-" + std::to_string(std::hash<std::string>{}(name));
  int flags = O_WRONLY | O_NOFOLLOW | O_CLOEXEC | (r.offset() == 0 ? O_CREAT | O_TRUNC : 0);
  UniqueFd fd(::openat(parent.get(), tmp.c_str(), flags, 0600));
  if (!fd)
    fail_path(r.offset() == 0 ? "cannot create" : "lost the partial copy of", r.path(), errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) != r.offset()) {
    ::unlinkat(parent.get(), tmp.c_str(), 0);
    throw Error("the copy of " + r.path() + " arrived out of order", "copy it again");
  }
  try {
    write_all_at(fd.get(), r.data(), r.offset(), r.path());
    if (!r.last()) return;
    if (::fchown(fd.get(), uid, gid) != 0 || ::fchmod(fd.get(), mode) != 0) {
      fail_path("cannot set the owner of", r.path(), errno);
    }
    if (::renameat(parent.get(), tmp.c_str(), parent.get(), name.c_str()) != 0) {
      fail_path("cannot put the copy in place at", r.path(), errno);
    }
  } catch (...) {
    ::unlinkat(parent.get(), tmp.c_str(), 0);
    throw;
  }
}

namespace {

class Sender {
 public:
  Sender(uint64_t id, const proto::CopyOutRequest& r,
         const std::function<bool(proto::Response&)>& send)
      : m_id(id), m_request(r), m_send(send) {}

  void entry(int dirfd, const std::string& name, const std::string& rel, int depth) {
    if (m_entries++ >= k_max_entries) {
      throw Error("more than " + std::to_string(k_max_entries) + " entries under " +
                  m_request.path());
    }
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      fail_path("cannot read", shown(rel), errno);
    }
    proto::Response part;
    auto* e = part.mutable_copy_entry();
    e->set_path(rel);
    e->set_mode(st.st_mode & 07777);
    if (S_ISREG(st.st_mode)) {
      e->set_kind(proto::COPY_FILE);
      e->set_size(static_cast<uint64_t>(st.st_size));
    } else if (S_ISDIR(st.st_mode)) {
      e->set_kind(proto::COPY_DIRECTORY);
    } else if (S_ISLNK(st.st_mode)) {
      e->set_kind(proto::COPY_SYMLINK);
      char target[4097];
      ssize_t n = ::readlinkat(dirfd, name.c_str(), target, sizeof target - 1);
      if (n < 0) fail_path("cannot read the link", shown(rel), errno);
      e->set_target(std::string(target, static_cast<std::size_t>(n)));
    } else {
      e->set_kind(proto::COPY_OTHER);
    }
    if (m_request.stat_only()) {
      send(part);
      return;
    }
    if (e->kind() == proto::COPY_FILE) {
      send_file(dirfd, name, rel, part);
    } else {
      send(part);
    }
    if (e->kind() == proto::COPY_DIRECTORY) {
      if (depth >= k_max_depth)
        throw Error("directories nest deeper than 64 under " + m_request.path());
      send_directory(dirfd, name, rel, depth + 1);
    }
  }

  proto::CopyOutReply reply() {
    proto::CopyOutReply r;
    r.set_exists(true);
    r.set_entries(m_entries);
    r.set_bytes(m_bytes);
    return r;
  }

 private:
  static std::string shown(const std::string& rel) { return rel.empty() ? "." : rel; }

  void send(proto::Response& part) {
    part.set_id(m_id);
    if (!m_send(part)) throw Error("the host went away during the copy");
  }

  void send_file(int dirfd, const std::string& name, const std::string& rel,
                 proto::Response& entry) {
    UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) fail_path("cannot open", shown(rel), errno);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail_path("cannot read", shown(rel), errno);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (m_request.max_bytes() &&
        size > m_request.max_bytes() - std::min(m_bytes, m_request.max_bytes())) {
      throw Error("the copy holds more than " + std::to_string(m_request.max_bytes()) + " bytes",
                  "copy less at a time");
    }
    entry.mutable_copy_entry()->set_size(size);
    send(entry);
    std::string buf(k_chunk_bytes, '\0');
    uint64_t done = 0;
    while (done < size) {
      ssize_t n = ::pread(fd.get(), buf.data(),
                          static_cast<std::size_t>(std::min<uint64_t>(k_chunk_bytes, size - done)),
                          static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_path("cannot read", shown(rel), errno);
      if (n == 0) throw Error(shown(rel) + " shrank while it was copied", "copy it again");
      proto::Response part;
      auto* c = part.mutable_chunk();
      c->set_path(rel);
      c->set_offset(done);
      c->set_data(buf.data(), static_cast<std::size_t>(n));
      send(part);
      done += static_cast<uint64_t>(n);
    }
    m_bytes += size;
  }

  void send_directory(int dirfd, const std::string& name, const std::string& rel, int depth) {
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) fail_path("cannot open the directory", shown(rel), errno);
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      fail_path("cannot read the directory", shown(rel), errno);
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    std::sort(names.begin(), names.end());
    try {
      for (const auto& n : names) entry(::dirfd(d), n, rel.empty() ? n : rel + "/" + n, depth);
    } catch (...) {
      ::closedir(d);
      throw;
    }
    ::closedir(d);
  }

  uint64_t m_id;
  const proto::CopyOutRequest& m_request;
  const std::function<bool(proto::Response&)>& m_send;
  uint64_t m_entries = 0;
  uint64_t m_bytes = 0;
};

}  // namespace

proto::CopyOutReply copy_out(uint64_t id, const Workload& workload,
                             const proto::CopyOutRequest& request,
                             const std::function<bool(proto::Response&)>& send) {
  UniqueFd root = open_root(workload);
  check_path(request.path());
  std::string p = request.path();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  // The path's own entry is read from its directory, so a link at the end
  // of it is sent as a link, as cp -P does.
  std::string dir = "/", name = ".";
  if (p != "/") {
    auto slash = p.rfind('/');
    dir = p.substr(0, slash == 0 ? 1 : slash);
    name = p.substr(slash + 1);
  }
  int dfd = open_in_root(root.get(), dir, O_PATH | O_DIRECTORY);
  if (dfd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return proto::CopyOutReply();
    fail_path("cannot open the directory", dir, errno);
  }
  UniqueFd parent(dfd);
  if (name == "..")
    throw Error("'" + request.path() + "' ends in '..'", "name the directory itself");
  struct stat st {};
  if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return proto::CopyOutReply();
    fail_path("cannot read", request.path(), errno);
  }
  Sender sender(id, request, send);
  sender.entry(parent.get(), name, "", 0);
  return sender.reply();
}

}  // namespace kcr::agent
