#include "core/files.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "core/error.hpp"

namespace kcr::core {

namespace {

// Appends what FD holds to DATA until end of file or until DATA has LIMIT bytes; false (errno
// set) on a read error.
bool read_up_to(int fd, std::size_t limit, std::string& data) {
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    data.reserve(std::min(static_cast<std::size_t>(st.st_size), limit));
  }
  char buf[64 * 1024];
  while (data.size() < limit) {
    std::size_t want = std::min(sizeof buf, limit - data.size());
    ssize_t n = ::read(fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  return true;
}

std::string parent_dir(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

std::string read_file(const std::string& path, std::size_t max) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("cannot read " + path);
  std::string data;
  // One byte past MAX tells a file of exactly MAX bytes from a larger one.
  if (!read_up_to(fd.get(), max == SIZE_MAX ? max : max + 1, data)) {
    throw_errno("cannot read " + path);
  }
  if (data.size() > max) {
    throw Error("cannot read " + path + ": larger than " + std::to_string(max) + " bytes");
  }
  return data;
}

std::optional<std::string> try_read_file(const std::string& path, std::size_t max) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::string data;
  if (!read_up_to(fd.get(), max, data)) return std::nullopt;
  return data;
}

void write_file_atomic(const std::string& path, std::string_view content, mode_t mode) {
  std::string tmp = path + ".tmp-XXXXXX";
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd) throw_errno("cannot create a temporary file for " + path);
  try {
    if (::fchmod(fd.get(), mode) != 0) throw_errno("chmod " + tmp);
    std::size_t done = 0;
    while (done < content.size()) {
      ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("cannot write " + path);
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) throw_errno("fsync " + tmp);
    // close(2) is where some file systems report a failed write.
    if (::close(fd.release()) != 0) throw_errno("close " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("rename to " + path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  // Without this the rename itself may not survive a crash. A directory that cannot be opened
  // for reading cannot be fsynced; the file is in place anyway.
  std::string dir = parent_dir(path);
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd && ::fsync(dir_fd.get()) != 0) throw_errno("fsync " + dir);
}

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

UniqueFd connect_unix(const std::string& path, const std::string& what) {
  std::string where = "connect to " + what + " (" + path + ")";
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // An empty path would name an abstract socket; a long one would be cut short.
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    throw Error(where + ": a socket path must have 1 to " +
                std::to_string(sizeof addr.sun_path - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno(where + ": socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw_errno(where);
  }
  return fd;
}

uint64_t ms_since(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

std::string random_suffix() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

void make_dir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) throw_errno("mkdir " + path);
}

std::string trim(std::string_view text) {
  constexpr std::string_view space = " \t\r\n\v\f";
  auto begin = text.find_first_not_of(space);
  if (begin == std::string_view::npos) return {};
  auto end = text.find_last_not_of(space);
  return std::string(text.substr(begin, end - begin + 1));
}

}  // namespace kcr::core
