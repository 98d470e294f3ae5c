#include "vm/copy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/names.hpp"
#include "core/unique_fd.hpp"

namespace kcr::vm {

namespace {

constexpr std::size_t k_chunk_bytes = 1 << 20;
constexpr auto k_timeout = std::chrono::seconds(120);

[[noreturn]] void fail_host(const std::string& what, const std::string& path, int err) {
  throw Error(what + " " + path + ": " + std::strerror(err));
}

std::string base_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string join(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

// Reports progress at most every 64 chunks, and when done.
class Ticker {
 public:
  Ticker(const core::OnTransfer& cb, std::string phase, std::string verb, uint64_t total)
      : m_cb(cb), m_start(std::chrono::steady_clock::now()) {
    m_p.phase = std::move(phase);
    m_p.verb = std::move(verb);
    m_p.total = total;
  }
  void add(uint64_t n) {
    m_p.done += n;
    if (m_cb && (++m_calls % 8 == 0)) report();
  }
  void finish() {
    m_p.finished = true;
    if (m_cb) report();
  }

 private:
  void report() {
    m_p.elapsed_s = core::ms_since(m_start) / 1000.0;
    m_cb(m_p);
  }
  const core::OnTransfer& m_cb;
  std::chrono::steady_clock::time_point m_start;
  core::TransferProgress m_p;
  uint64_t m_calls = 0;
};

// What the workload holds at PATH: its CopyEntry, or nullopt.
std::optional<proto::CopyEntry> stat_in_workload(VmSession& s, const std::string& workload,
                                                 const std::string& path) {
  proto::Request req;
  auto* c = req.mutable_copy_out();
  c->set_workload(workload);
  c->set_path(path);
  c->set_stat_only(true);
  std::optional<proto::CopyEntry> entry;
  auto resp = s.agent().call_streaming(req, k_timeout, [&](const proto::Response& part) {
    if (part.body_case() != proto::Response::kCopyEntry || entry) {
      throw Error("protocol error: the agent answered a stat with file data");
    }
    entry = part.copy_entry();
  });
  if (!resp.copy_out().exists()) return std::nullopt;
  if (!entry) throw Error("protocol error: the agent found " + path + " but sent no entry");
  return entry;
}

uint64_t local_bytes(const std::string& path, int depth = 0) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) fail_host("cannot read", path, errno);
  if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  if (!S_ISDIR(st.st_mode) || depth > 64) return 0;
  uint64_t total = 0;
  DIR* d = ::opendir(path.c_str());
  if (!d) fail_host("cannot read the directory", path, errno);
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") total += local_bytes(path + "/" + n, depth + 1);
  }
  ::closedir(d);
  return total;
}

class Uploader {
 public:
  Uploader(VmSession& s, const std::string& workload, Ticker& ticker, CopyResult& result)
      : m_s(s), m_workload(workload), m_ticker(ticker), m_result(result) {}

  void copy(const std::string& local, const std::string& remote, int depth) {
    struct stat st {};
    if (::lstat(local.c_str(), &st) != 0) fail_host("cannot read", local, errno);
    proto::Request req;
    auto* c = req.mutable_copy_in();
    c->set_workload(m_workload);
    c->set_path(remote);
    c->set_mode(st.st_mode & 07777);
    if (S_ISDIR(st.st_mode)) {
      if (depth > 64) throw Error(local + ": directories nest deeper than 64");
      c->set_kind(proto::COPY_DIRECTORY);
      m_s.call(req, k_timeout);
      ++m_result.directories;
      std::vector<std::string> names;
      DIR* d = ::opendir(local.c_str());
      if (!d) fail_host("cannot read the directory", local, errno);
      while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
      }
      ::closedir(d);
      std::sort(names.begin(), names.end());
      for (const auto& n : names) copy(local + "/" + n, join(remote, n), depth + 1);
    } else if (S_ISLNK(st.st_mode)) {
      char target[4097];
      ssize_t n = ::readlink(local.c_str(), target, sizeof target - 1);
      if (n < 0) fail_host("cannot read the link", local, errno);
      c->set_kind(proto::COPY_SYMLINK);
      c->set_target(std::string(target, static_cast<std::size_t>(n)));
      m_s.call(req, k_timeout);
      ++m_result.links;
    } else if (S_ISREG(st.st_mode)) {
      send_file(local, req);
      ++m_result.files;
    } else {
      ++m_result.skipped;  // a device, FIFO or socket: as podman cp, not copied
    }
  }

 private:
  void send_file(const std::string& local, proto::Request& req) {
    UniqueFd fd(::open(local.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) fail_host("cannot open", local, errno);
    auto* c = req.mutable_copy_in();
    c->set_kind(proto::COPY_FILE);
    std::string buf(k_chunk_bytes, '\0');
    uint64_t offset = 0;
    for (;;) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_host("cannot read", local, errno);
      auto len = static_cast<uint64_t>(n);
      if (m_result.bytes + len > k_copy_max_bytes) {
        throw Error(
            "kcr cp moves at most " + std::to_string(k_copy_max_bytes >> 30) + " GiB at a time",
            "copy less at a time");
      }
      // Read ahead one byte's worth: the last chunk says so, and an empty
      // file is one empty last chunk.
      c->set_offset(offset);
      c->set_data(buf.data(), static_cast<std::size_t>(n));
      struct stat st {};
      c->set_last(n == 0 || (::fstat(fd.get(), &st) == 0 &&
                             offset + len >= static_cast<uint64_t>(st.st_size)));
      m_s.call(req, k_timeout);
      offset += len;
      m_result.bytes += len;
      m_ticker.add(len);
      if (c->last()) return;
    }
  }

  VmSession& m_s;
  const std::string& m_workload;
  Ticker& m_ticker;
  CopyResult& m_result;
};

int open_beneath(int base, const std::string& rel, int flags, mode_t mode = 0) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.mode = mode;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  std::string p = rel.empty() ? "." : rel;
  return static_cast<int>(::syscall(SYS_openat2, base, p.c_str(), &how, sizeof how));
}

// Writes what the guest sends under a temporary directory entry TMP of
// PARENT (a dir fd on the host), checking every name, size and order.
class Downloader {
 public:
  Downloader(int parent, std::string tmp, Ticker& ticker, CopyResult& result)
      : m_parent(parent), m_tmp(std::move(tmp)), m_ticker(ticker), m_result(result) {}

  void part(const proto::Response& r) {
    if (r.body_case() == proto::Response::kCopyEntry) return entry(r.copy_entry());
    if (r.body_case() != proto::Response::kChunk) {
      throw Error("protocol error: unexpected data in a copy from the guest");
    }
    const auto& c = r.chunk();
    if (!m_file || c.path() != m_file_rel || c.offset() != m_file_done) {
      throw Error("the guest sent data for '" + safe(c.path()) + "' out of order");
    }
    if (c.data().size() > m_file_size - m_file_done) {
      throw Error("the guest sent more of '" + safe(c.path()) + "' than its size");
    }
    const std::string& d = c.data();
    std::size_t done = 0;
    while (done < d.size()) {
      ssize_t n = ::write(m_file.get(), d.data() + done, d.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail_host("cannot write", display(m_file_rel), errno);
      done += static_cast<std::size_t>(n);
    }
    m_file_done += d.size();
    m_result.bytes += d.size();
    m_ticker.add(d.size());
    if (m_file_done == m_file_size) close_file();
  }

  void finish() {
    if (m_file) throw Error("the guest stopped in the middle of '" + safe(m_file_rel) + "'");
    if (!m_started) throw Error("the guest sent nothing");
  }

 private:
  static std::string safe(const std::string& s) {
    std::string out;
    for (char ch : s.substr(0, 200)) out += (static_cast<unsigned char>(ch) < 0x20) ? '?' : ch;
    return out;
  }
  std::string display(const std::string& rel) const {
    return rel.empty() ? m_tmp : m_tmp + "/" + rel;
  }
  std::string host_rel(const std::string& rel) const {
    return rel.empty() ? m_tmp : m_tmp + "/" + rel;
  }

  void entry(const proto::CopyEntry& e) {
    if (m_file)
      throw Error("the guest sent '" + safe(e.path()) + "' before the end of '" + safe(m_file_rel) +
                  "'");
    if (!is_safe_relative_path(e.path()) || (m_started && e.path().empty()) ||
        (!m_started && !e.path().empty())) {
      throw Error("the guest sent an unsafe name in the copy: '" + safe(e.path()) + "'",
                  "nothing was written outside the target");
    }
    m_started = true;
    std::string rel = host_rel(e.path());
    // The parent must be a directory this copy made: no links are followed.
    std::string dir = rel.substr(0, rel.rfind('/') == std::string::npos ? 0 : rel.rfind('/'));
    std::string name = rel.substr(dir.empty() ? 0 : dir.size() + 1);
    int pfd = open_beneath(m_parent, dir, O_PATH | O_DIRECTORY);
    if (pfd < 0) fail_host("cannot open the directory", dir.empty() ? "." : dir, errno);
    UniqueFd parent(pfd);
    mode_t mode = static_cast<mode_t>(e.mode() & 01777);  // never set-id bits from the guest
    switch (e.kind()) {
      case proto::COPY_DIRECTORY:
        if (::mkdirat(parent.get(), name.c_str(), 0700) != 0)
          fail_host("cannot make", display(e.path()), errno);
        m_dirs.push_back({rel, mode});
        ++m_result.directories;
        return;
      case proto::COPY_SYMLINK:
        if (e.target().empty() || e.target().size() > 4096) {
          throw Error("the guest sent a link with a target of " +
                      std::to_string(e.target().size()) + " bytes");
        }
        if (::symlinkat(e.target().c_str(), parent.get(), name.c_str()) != 0)
          fail_host("cannot make the link", display(e.path()), errno);
        ++m_result.links;
        return;
      case proto::COPY_FILE: {
        if (e.size() > k_copy_max_bytes - std::min(m_result.bytes, k_copy_max_bytes)) {
          throw Error("the copy holds more than " + std::to_string(k_copy_max_bytes >> 30) + " GiB",
                      "copy less at a time");
        }
        int fd = ::openat(parent.get(), name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) fail_host("cannot create", display(e.path()), errno);
        m_file = UniqueFd(fd);
        m_file_rel = e.path();
        m_file_size = e.size();
        m_file_done = 0;
        m_file_mode = mode;
        ++m_result.files;
        if (m_file_size == 0) close_file();
        return;
      }
      default:
        ++m_result.skipped;
        return;
    }
  }

  void close_file() {
    if (::fchmod(m_file.get(), m_file_mode) != 0)
      fail_host("cannot set the mode of", display(m_file_rel), errno);
    m_file.reset();
  }

 public:
  // Directories get their modes last: a read-only one must still be filled.
  void apply_directory_modes() {
    for (auto it = m_dirs.rbegin(); it != m_dirs.rend(); ++it) {
      int fd = open_beneath(m_parent, it->first, O_RDONLY | O_DIRECTORY);
      if (fd < 0) fail_host("cannot open", it->first, errno);
      UniqueFd d(fd);
      if (::fchmod(d.get(), it->second) != 0) fail_host("cannot set the mode of", it->first, errno);
    }
  }

 private:
  int m_parent;
  std::string m_tmp;
  Ticker& m_ticker;
  CopyResult& m_result;
  bool m_started = false;
  UniqueFd m_file;
  std::string m_file_rel;
  uint64_t m_file_size = 0, m_file_done = 0;
  mode_t m_file_mode = 0600;
  std::vector<std::pair<std::string, mode_t>> m_dirs;
};

void remove_tree(int parent, const std::string& name) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
      ::fchmod(fd, 0700);
      if (DIR* d = ::fdopendir(fd)) {
        std::vector<std::string> names;
        while (dirent* e = ::readdir(d)) {
          std::string n = e->d_name;
          if (n != "." && n != "..") names.push_back(n);
        }
        for (const auto& n : names) remove_tree(::dirfd(d), n);
        ::closedir(d);
      } else {
        ::close(fd);
      }
    }
    ::unlinkat(parent, name.c_str(), AT_REMOVEDIR);
  } else {
    ::unlinkat(parent, name.c_str(), 0);
  }
}

}  // namespace

CopyPlace parse_copy_place(const std::string& spec) {
  CopyPlace p;
  if (spec.empty()) throw Error("kcr cp needs a source and a destination", {}, ExitCode::usage);
  auto first = spec.find(':');
  // A host path may hold ':' too; VM:WORKLOAD:/PATH has two names before it.
  if (first == std::string::npos || spec[0] == '/' || spec[0] == '.') {
    p.path = spec;
    return p;
  }
  auto second = spec.find(':', first + 1);
  if (second == std::string::npos) {
    throw Error("'" + spec + "' is neither a host path nor VM:WORKLOAD:PATH",
                "name the workload too: kcr cp FILE VM:WORKLOAD:/PATH", ExitCode::usage);
  }
  p.vm = spec.substr(0, first);
  p.workload = spec.substr(first + 1, second - first - 1);
  p.path = spec.substr(second + 1);
  core::validate_name("VM name", p.vm);
  core::validate_name("workload name", p.workload);
  if (p.path.empty() || p.path[0] != '/') {
    throw Error("'" + spec + "': the path in the workload must be absolute",
                "for example " + p.vm + ":" + p.workload + ":/tmp/file", ExitCode::usage);
  }
  return p;
}

bool is_safe_relative_path(const std::string& rel) {
  if (rel.empty()) return true;
  if (rel.size() > 4096 || rel[0] == '/' || rel.find('\0') != std::string::npos) return false;
  std::size_t start = 0;
  while (start <= rel.size()) {
    auto end = rel.find('/', start);
    if (end == std::string::npos) end = rel.size();
    std::string c = rel.substr(start, end - start);
    if (c.empty() || c == "." || c == ".." || c.size() > 255) return false;
    start = end + 1;
  }
  return true;
}

CopyResult copy_into_workload(VmSession& session, const std::string& source,
                              const std::string& workload, const std::string& path,
                              const core::OnTransfer& progress) {
  struct stat st {};
  if (::lstat(source.c_str(), &st) != 0) fail_host("cannot copy", source, errno);
  std::string target = path;
  auto there = stat_in_workload(session, workload, path);
  if (there && there->kind() == proto::COPY_DIRECTORY) {
    std::string name = base_name(source);
    if (name.empty() || name == "/" || name == "." || name == "..") {
      throw Error("cannot tell what to call " + source + " inside " + path,
                  "name the destination: VM:WORKLOAD:/DIR/NAME", ExitCode::usage);
    }
    target = join(path, name);
  } else if (!there && path.size() > 1 && path.back() == '/') {
    throw Error("no directory " + path + " in workload '" + workload + "'",
                "make it first (kcr exec VM W -- mkdir -p " + path + ")");
  }
  CopyResult result;
  result.target = target;
  Ticker ticker(progress, "copy to '" + workload + "'", "sent", local_bytes(source));
  Uploader(session, workload, ticker, result).copy(source, target, 0);
  ticker.finish();
  return result;
}

CopyResult copy_from_workload(VmSession& session, const std::string& workload,
                              const std::string& path, const std::string& dest,
                              const core::OnTransfer& progress) {
  auto there = stat_in_workload(session, workload, path);
  if (!there) throw Error("no " + path + " in workload '" + workload + "'");
  std::string target = dest;
  struct stat st {};
  if (::stat(dest.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    std::string name = base_name(path);
    if (name.empty() || name == "/") {
      throw Error("cannot tell what to call " + path + " inside " + dest,
                  "name the destination: kcr cp VM:W:/ DIR/NAME", ExitCode::usage);
    }
    target = join(dest, name);
  }
  std::string parent_dir =
      target.find('/') == std::string::npos ? "." : target.substr(0, target.rfind('/'));
  if (parent_dir.empty()) parent_dir = "/";
  std::string name = base_name(target);
  UniqueFd parent(::open(parent_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!parent) fail_host("cannot open the directory", parent_dir, errno);
  struct stat existing {};
  bool exists = ::fstatat(parent.get(), name.c_str(), &existing, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists && (S_ISDIR(existing.st_mode) || there->kind() == proto::COPY_DIRECTORY)) {
    throw Error(target + " already exists", "remove it, or copy to another name");
  }
  std::random_device rd;
  std::string tmp = "." + name.substr(0, 200) + ".kcr-cp-" + std::to_string(rd() % 1000000);
  CopyResult result;
  result.target = target;
  Ticker ticker(progress, "copy from '" + workload + "'", "received", 0);
  Downloader down(parent.get(), tmp, ticker, result);
  try {
    proto::Request req;
    auto* c = req.mutable_copy_out();
    c->set_workload(workload);
    c->set_path(path);
    c->set_max_bytes(k_copy_max_bytes);
    session.agent().call_streaming(req, k_timeout, [&](const proto::Response& r) { down.part(r); });
    down.finish();
    down.apply_directory_modes();
    if (::renameat(parent.get(), tmp.c_str(), parent.get(), name.c_str()) != 0) {
      fail_host("cannot put the copy in place at", target, errno);
    }
  } catch (...) {
    remove_tree(parent.get(), tmp);
    throw;
  }
  ticker.finish();
  return result;
}

}  // namespace kcr::vm
