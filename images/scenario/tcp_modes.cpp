// kcr-scenario's TCP workloads: tcp-listen (a server on 127.0.0.1) and tcp-pair (a sequence
// over one established connection), with their probes.

#include <arpa/inet.h>
#include <endian.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "images/scenario/checker.hpp"
#include "images/scenario/modes.hpp"

namespace kcr::scenario {

namespace {

// ---- tcp-listen / tcp-probe ---------------------------------------------------------------

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

int listen_loopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(k_exit_unreadable, "socket: " + errno_text(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr = loopback(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    fail(k_exit_unreadable,
         "cannot bind 127.0.0.1:" + std::to_string(port) + ": " + errno_text(errno));
  }
  if (::listen(fd, 64) != 0) fail(k_exit_unreadable, "listen: " + errno_text(errno));
  return fd;
}

int accept_one(int listen_fd) {
  for (;;) {
    int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) return c;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    std::fprintf(stderr, "kcr-scenario: accept: %s\n", errno_text(errno).c_str());
    sleep_ns(100 * k_ms);  // EMFILE, ENOBUFS...: back off, do not spin
  }
}

}  // namespace

int run_tcp_listen(const Args& a) {
  auto port = static_cast<uint16_t>(a.number("port", 8080, 1, 65535));
  int fd = listen_loopback(port);
  log_startup("kcr-scenario tcp-listen: pid " + std::to_string(::getpid()) +
              ", listening on 127.0.0.1:" + std::to_string(port));
  uint64_t served = 0;
  for (;;) {
    int c = accept_one(fd);
    ++served;
    std::string line = "hello " + seed() + " " + std::to_string(served) + "\n";
    if (!send_all(c, line.data(), line.size())) {
      std::fprintf(stderr, "kcr-scenario: send: %s\n", errno_text(errno).c_str());
    }
    ::close(c);
  }
}

int run_tcp_probe(const Args& a) {
  auto port = static_cast<uint16_t>(a.number("port", 8080, 1, 65535));
  uint64_t timeout_s = a.number("timeout-s", 5, 1, 3600);
  int64_t deadline = mono_ns() + static_cast<int64_t>(timeout_s) * k_s;
  std::string where = "127.0.0.1:" + std::to_string(port);

  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) fail(k_exit_unreadable, "socket: " + errno_text(errno));
  sockaddr_in addr = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS &&
      errno != EINTR) {
    fail(k_exit_unreadable, "cannot connect to " + where + ": " + errno_text(errno));
  }
  // Waits for EVENTS on fd until the deadline; false on timeout.
  auto wait_for = [&](short events) {
    for (;;) {
      int64_t left = deadline - mono_ns();
      if (left <= 0) return false;
      pollfd p{fd, events, 0};
      int r = ::poll(&p, 1, static_cast<int>((left + k_ms - 1) / k_ms));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) fail(k_exit_unreadable, "poll: " + errno_text(errno));
    }
  };
  if (!wait_for(POLLOUT)) {
    fail(k_exit_unreadable,
         "connecting to " + where + " timed out after " + std::to_string(timeout_s) + " s");
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) fail(k_exit_unreadable, "cannot connect to " + where + ": " + errno_text(err));

  std::string got;
  while (got.find('\n') == std::string::npos && got.size() < 4096) {
    if (!wait_for(POLLIN)) {
      fail(k_exit_unreadable, "no line from " + where + " within " + std::to_string(timeout_s) +
                                  " s (got '" + got + "')");
    }
    char buf[512];
    ssize_t r = ::recv(fd, buf, sizeof buf, 0);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      fail(k_exit_unreadable, "reading from " + where + ": " + errno_text(errno));
    }
    if (r == 0) break;
    got.append(buf, static_cast<std::size_t>(r));
  }
  ::close(fd);
  std::string line = first_line(got);
  if (line.empty()) fail(k_exit_unreadable, where + " closed the connection without a line");
  std::printf("%s\n", line.c_str());
  return k_exit_ok;
}

// ---- tcp-pair -----------------------------------------------------------------------------

namespace {

// The server side (the child): one connection, each 8-byte big-endian number must be the
// previous one plus 1 (the first must be 1).
[[noreturn]] void tcp_pair_server(int listen_fd, const std::string& path) {
  int c = accept_one(listen_fd);
  ::close(listen_fd);
  uint64_t received = 0, errors = 0, previous = 0;
  write_file_atomic(path, kcr::scenario::format_pair_state(0, 0) + "\n", "server");
  for (;;) {
    unsigned char buf[8];
    std::size_t have = 0;
    while (have < sizeof buf) {
      ssize_t r = ::recv(c, buf + have, sizeof buf - have, 0);
      if (r > 0) {
        have += static_cast<std::size_t>(r);
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      std::string reason = r == 0 ? "server: eof after " + std::to_string(received) + " numbers"
                                  : "server: recv: " + errno_text(errno);
      write_file_atomic(path, "broken " + reason + "\n", "server");
      std::fprintf(stderr, "kcr-scenario tcp-pair: broken %s\n", reason.c_str());
      sleep_forever();
    }
    uint64_t v;
    std::memcpy(&v, buf, sizeof v);
    v = be64toh(v);
    if (v != previous + 1) {
      ++errors;
      std::fprintf(stderr, "kcr-scenario tcp-pair: got %llu after %llu\n",
                   static_cast<unsigned long long>(v), static_cast<unsigned long long>(previous));
    }
    previous = v;
    ++received;
    write_file_atomic(path, kcr::scenario::format_pair_state(received, errors) + "\n", "server");
  }
}

}  // namespace

int run_tcp_pair(const Args& a) {
  auto port = static_cast<uint16_t>(a.number("port", 9090, 1, 65535));
  int64_t interval = static_cast<int64_t>(a.number("interval-ms", 100, 1, 86'400'000)) * k_ms;
  std::string path = state_dir(a) + "/tcp-pair.state";
  write_file_atomic(path, "waiting for the connection\n", "client");
  // Listening before the fork means the parent's connect cannot race the child's listen.
  int listen_fd = listen_loopback(port);
  pid_t parent = ::getpid();
  pid_t child = ::fork();
  if (child < 0) fail(k_exit_unreadable, "fork: " + errno_text(errno));
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) std::_Exit(0);
    tcp_pair_server(listen_fd, path);
  }
  ::close(listen_fd);

  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(k_exit_unreadable, "socket: " + errno_text(errno));
  sockaddr_in addr = loopback(port);
  int r;
  do {
    r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (r != 0 && errno == EINTR);
  if (r != 0 && errno != EISCONN) {
    std::string reason = "client: connect: " + errno_text(errno);
    write_file_atomic(path, "broken " + reason + "\n", "client");
    std::fprintf(stderr, "kcr-scenario tcp-pair: broken %s\n", reason.c_str());
    sleep_forever();
  }
  log_startup("kcr-scenario tcp-pair: pid " + std::to_string(::getpid()) + ", server pid " +
              std::to_string(child) + ", 127.0.0.1:" + std::to_string(port) + ", every " +
              std::to_string(interval / k_ms) + " ms, state in " + path);

  Pacer pacer(interval);
  for (uint64_t seq = 1;; ++seq) {
    uint64_t wire = htobe64(seq);
    if (!send_all(fd, &wire, sizeof wire)) {
      std::string reason = "client: send: " + errno_text(errno);
      write_file_atomic(path, "broken " + reason + "\n", "client");
      std::fprintf(stderr, "kcr-scenario tcp-pair: broken %s\n", reason.c_str());
      sleep_forever();
    }
    sleep_ns(pacer.delay(mono_ns()));
  }
}

int run_tcp_pair_probe(const Args& a) {
  std::string path = state_dir(a) + "/tcp-pair.state";
  auto content = read_small_file(path);
  if (!content) fail(k_exit_unreadable, "cannot read " + path + ": " + errno_text(errno));
  std::string line = first_line(*content);
  std::printf("%s\n", line.c_str());
  return kcr::scenario::parse_pair_state(line).healthy() ? k_exit_ok : k_exit_mismatch;
}

}  // namespace kcr::scenario
