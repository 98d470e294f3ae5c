#include "images/agent/port.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "core/error.hpp"
#include "core/files.hpp"
#include "images/agent/log.hpp"
#include "images/agent/process.hpp"

namespace kcr::agent {

namespace {

constexpr std::size_t k_max_read = 1 << 20;

using Clock = std::chrono::steady_clock;

int to_ms(std::chrono::milliseconds d) {
  return static_cast<int>(d.count());
}

// Writes all of data to a nonblocking fd, waiting for POLLOUT as needed.
bool write_nonblocking(int fd, const std::string& data, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLOUT, 0};
    int r = ::poll(&pfd, 1, to_ms(left));
    if (r < 0 && errno != EINTR) return false;
    if (r > 0 && (pfd.revents & (POLLERR | POLLNVAL))) return false;
  }
  return true;
}

// The guest side of virtio-serial: poll() says POLLHUP while no host is connected and read()
// returns 0 once it left. The fd stays open for the agent's whole life.
class VirtioPort : public Port {
 public:
  explicit VirtioPort(UniqueFd fd) : m_fd(std::move(fd)) {}

  PortEvent poll(std::chrono::milliseconds timeout, std::string& bytes) override {
    pollfd pfd{m_fd.get(), POLLIN, 0};
    int r = ::poll(&pfd, 1, to_ms(timeout));
    if (r < 0) return PortEvent::none;
    // POLLHUP is level-triggered: set exactly while no host is connected. So a quiet poll (r == 0)
    // also means a host is there.
    if (r > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))) {
      bool was_connected = m_connected;
      m_connected = false;
      // What a host that left had sent and the agent had not read yet stays in the port's
      // buffers and would reach the next host's stream first, mid-frame: the tail of a file
      // chunk taken for a length prefix swallows the next host's requests.
      if (pfd.revents & POLLIN) drop_unread();
      // Without a host, POLLHUP stays set: sleep instead of spinning on it.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return was_connected ? PortEvent::disconnected : PortEvent::none;
    }
    if (!m_connected) {
      m_connected = true;
      return PortEvent::connected;
    }
    if (r == 0) return PortEvent::none;
    if (!(pfd.revents & POLLIN)) return PortEvent::none;
    // A virtio-serial read returns at most one 4 KiB buffer: drain what is
    // there (up to 1 MiB) in one go instead of one poll round per 4 KiB.
    bytes.resize(k_max_read);
    std::size_t got = 0;
    while (got < k_max_read) {
      ssize_t n = ::read(m_fd.get(), bytes.data() + got, k_max_read - got);
      if (n > 0) {
        got += static_cast<std::size_t>(n);
        continue;
      }
      if (n == 0 && got == 0) {
        bytes.clear();
        m_connected = false;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        return PortEvent::disconnected;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && got == 0) {
        // Anything but EAGAIN must not turn into a busy loop.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      break;
    }
    bytes.resize(got);
    return got ? PortEvent::data : PortEvent::none;
  }

  bool write_all(const std::string& data, std::chrono::milliseconds timeout) override {
    return write_nonblocking(m_fd.get(), data, timeout);
  }

 private:
  void drop_unread() {
    std::string buf(64 * 1024, '\0');
    std::size_t dropped = 0;
    for (;;) {
      ssize_t n = ::read(m_fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // nothing left (0: no host and no data; EAGAIN)
      dropped += static_cast<std::size_t>(n);
    }
    if (dropped > 0) {
      log_line("dropped " + std::to_string(dropped) + " bytes a gone host left unread");
    }
  }

  UniqueFd m_fd;
  bool m_connected = false;
};

// A unix socket listener that serves one connection at a time, standing in for the port on a host.
class UnixPort : public Port {
 public:
  explicit UnixPort(UniqueFd listener) : m_listener(std::move(listener)) {}

  PortEvent poll(std::chrono::milliseconds timeout, std::string& bytes) override {
    if (!m_conn) {
      pollfd pfd{m_listener.get(), POLLIN, 0};
      if (::poll(&pfd, 1, to_ms(timeout)) <= 0) return PortEvent::none;
      int fd = ::accept4(m_listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return PortEvent::none;
      m_conn.reset(fd);
      return PortEvent::connected;
    }
    pollfd pfd{m_conn.get(), POLLIN, 0};
    if (::poll(&pfd, 1, to_ms(timeout)) <= 0) return PortEvent::none;
    char buf[64 * 1024];
    ssize_t n = ::read(m_conn.get(), buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return PortEvent::none;
    if (n <= 0) {
      m_conn.reset();
      return PortEvent::disconnected;
    }
    bytes.assign(buf, static_cast<std::size_t>(n));
    return PortEvent::data;
  }

  bool write_all(const std::string& data, std::chrono::milliseconds timeout) override {
    return m_conn && write_nonblocking(m_conn.get(), data, timeout);
  }

 private:
  UniqueFd m_listener;
  UniqueFd m_conn;
};

}  // namespace

std::string find_virtio_port(const std::string& name) {
  const char* base = "/sys/class/virtio-ports";
  DIR* dir = ::opendir(base);
  if (!dir) return {};
  std::string found;
  while (dirent* entry = ::readdir(dir)) {
    std::string port = entry->d_name;
    if (port.rfind("vport", 0) != 0) continue;
    if (read_first_line(std::string(base) + "/" + port + "/name") == name) {
      found = "/dev/" + port;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

std::unique_ptr<Port> open_virtio_port(const std::string& path_or_empty, const std::string& name,
                                       std::chrono::milliseconds wait) {
  auto deadline = Clock::now() + wait;
  bool logged = false;
  for (;;) {
    std::string path = path_or_empty.empty() ? find_virtio_port(name) : path_or_empty;
    if (!path.empty()) {
      int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
      if (fd >= 0) {
        log_always("using port " + path);
        return std::make_unique<VirtioPort>(UniqueFd(fd));
      }
      if (Clock::now() >= deadline) throw_errno("open " + path);
    } else if (Clock::now() >= deadline) {
      throw Error("no virtio-serial port named '" + name + "' in /sys/class/virtio-ports");
    }
    if (!logged) {
      log_always("waiting for the virtio port '" + name + "'");
      logged = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::unique_ptr<Port> listen_unix_port(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw_errno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) throw Error("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw_errno("bind " + path);
  }
  if (::listen(fd.get(), 4) != 0) throw_errno("listen " + path);
  return std::make_unique<UnixPort>(std::move(fd));
}

}  // namespace kcr::agent
