// kcr-scenario: the built-in workloads kcr runs inside the guest, and the probes that prove a
// workload's state survived checkpoint/restore. See usage() for the modes. State files live in
// --state-dir (default $KCR_SCENARIO_STATE_DIR, else /tmp: the workload's private tmpfs, which
// CRIU carries in the checkpoint). Workloads run until killed; probes print one line.
//
// Everything here must survive being frozen, dumped and restored by CRIU: every syscall
// retries on EINTR, intervals use CLOCK_MONOTONIC with big jumps clamped (Pacer), and no
// PID is remembered except the one membuf writes to its pid file.

#include <arpa/inet.h>
#include <endian.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "images/scenario/scenario.hpp"

namespace {

using kcr::scenario::Pacer;

constexpr int k_exit_ok = 0;
constexpr int k_exit_unreadable = 1;  // probe: no state to read, or workload not answering
constexpr int k_exit_usage = 2;
constexpr int k_exit_mismatch = 3;  // probe: state read but wrong

constexpr int64_t k_ms = 1'000'000;
constexpr int64_t k_s = 1'000'000'000;

const char* const k_usage =
    "usage: kcr-scenario MODE [OPTIONS]\n"
    "\n"
    "Workloads (run until killed):\n"
    "  counter [--interval-ms 1000]       count in memory, write the count to counter\n"
    "  membuf [--size 10M] [--rewrite-mb-per-s N]\n"
    "                                     fill a buffer, write 'SIZE CHECKSUM' to\n"
    "                                     membuf.expected and the pid to membuf.pid; on\n"
    "                                     SIGUSR1 write 'GENERATION CHECKSUM' to membuf.actual\n"
    "  tcp-listen [--port 8080]           serve 'hello N' on 127.0.0.1:PORT\n"
    "  tcp-pair [--port 9090] [--interval-ms 100]\n"
    "                                     send a sequence over one 127.0.0.1 connection,\n"
    "                                     write 'received N errors E' or 'broken REASON'\n"
    "                                     to tcp-pair.state\n"
    "Probes (print one line; exit 0 ok, 1 no state, 2 usage, 3 state wrong):\n"
    "  counter-probe                      print the count\n"
    "  membuf-probe [--timeout-s 30]      ask membuf to re-checksum its buffer: 'ok SIZE SUM'\n"
    "                                     or 'mismatch expected=X actual=Y'\n"
    "  tcp-probe [--port 8080] [--timeout-s 5]\n"
    "                                     print the line tcp-listen sends\n"
    "  tcp-pair-probe                     print tcp-pair.state; ok if 'received N errors 0'\n"
    "\n"
    "Every mode takes --state-dir DIR (default $KCR_SCENARIO_STATE_DIR, else /tmp).\n"
    "Sizes: 4096, 512K, 10M, 1G (binary units).\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "kcr-scenario: %s\n(see kcr-scenario --help)\n", msg.c_str());
  std::exit(k_exit_usage);
}

[[noreturn]] void fail(int code, const std::string& msg) {
  std::fprintf(stderr, "kcr-scenario: %s\n", msg.c_str());
  std::exit(code);
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// The command line after the mode: --name VALUE or --name=VALUE, only names in ALLOWED.
struct Args {
  std::string mode;
  std::map<std::string, std::string> values;

  std::string get(const std::string& name, const std::string& fallback) const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
  uint64_t number(const std::string& name, uint64_t fallback, uint64_t min, uint64_t max) const {
    auto it = values.find(name);
    if (it == values.end()) return fallback;
    auto v = kcr::scenario::parse_u64(it->second);
    if (!v || *v < min || *v > max) {
      usage_error("--" + name + " must be a number from " + std::to_string(min) + " to " +
                  std::to_string(max) + ", not '" + it->second + "'");
    }
    return *v;
  }
};

Args parse_args(int argc, char** argv, const std::set<std::string>& allowed) {
  Args a;
  a.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (!arg.starts_with("--") || arg.size() == 2) usage_error("unexpected argument '" + arg + "'");
    std::string name = arg.substr(2), value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    } else {
      if (i + 1 >= argc) usage_error("--" + name + " needs a value");
      value = argv[++i];
    }
    if (name != "state-dir" && !allowed.count(name)) {
      usage_error("mode " + a.mode + " has no option --" + name);
    }
    a.values[name] = value;
  }
  return a;
}

std::string state_dir(const Args& a) {
  const char* env = std::getenv("KCR_SCENARIO_STATE_DIR");
  std::string dir = a.get("state-dir", env && *env ? env : "/tmp");
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

int64_t mono_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * k_s + ts.tv_nsec;
}

timespec to_timespec(int64_t ns) {
  return timespec{static_cast<time_t>(ns / k_s), static_cast<long>(ns % k_s)};
}

// Sleeps NS on the monotonic clock; an interrupted sleep sleeps the rest (never more than NS,
// even if the clock jumped while the process was frozen).
void sleep_ns(int64_t ns) {
  if (ns <= 0) return;
  timespec req = to_timespec(ns), rem{};
  while (::clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem) == EINTR) req = rem;
}

[[noreturn]] void sleep_forever() {
  for (;;) ::pause();
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool send_all(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Writes CONTENT to PATH through PATH.tmp-TAG and rename(2), so readers see the old or the
// new file, never half of one. TAG keeps two writers of one file apart. Returns false and
// says why on stderr; workloads keep running when a write fails.
bool write_file_atomic(const std::string& path, const std::string& content, const char* tag) {
  std::string tmp = path + ".tmp-" + tag;
  int fd;
  do {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    std::fprintf(stderr, "kcr-scenario: cannot create %s: %s\n", tmp.c_str(),
                 errno_text(errno).c_str());
    return false;
  }
  bool ok = write_all(fd, content.data(), content.size());
  int err = errno;
  ::close(fd);
  if (ok && ::rename(tmp.c_str(), path.c_str()) == 0) return true;
  if (ok) err = errno;
  std::fprintf(stderr, "kcr-scenario: cannot write %s: %s\n", path.c_str(),
               errno_text(err).c_str());
  ::unlink(tmp.c_str());
  return false;
}

std::optional<std::string> read_small_file(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    out.append(buf, static_cast<std::size_t>(r));
    if (out.size() > 65536) break;
  }
  ::close(fd);
  return out;
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

// Every mode: stdin is /dev/null (the workload must not hold the agent's terminal or pipe),
// SIGPIPE is ignored (send() uses MSG_NOSIGNAL anyway).
void common_setup() {
  int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (fd != 0) {
      ::dup2(fd, 0);
      ::close(fd);
    }
  } else {
    ::close(0);
  }
  std::signal(SIGPIPE, SIG_IGN);
}

void log_startup(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// ---- counter ------------------------------------------------------------------------------

int run_counter(const Args& a) {
  int64_t interval = static_cast<int64_t>(a.number("interval-ms", 1000, 1, 86'400'000)) * k_ms;
  std::string path = state_dir(a) + "/counter";
  log_startup("kcr-scenario counter: pid " + std::to_string(::getpid()) + ", every " +
              std::to_string(interval / k_ms) + " ms to " + path);
  uint64_t counter = 0;
  Pacer pacer(interval);
  for (;;) {
    ++counter;
    write_file_atomic(path, std::to_string(counter) + "\n", "counter");
    sleep_ns(pacer.delay(mono_ns()));
  }
}

int run_counter_probe(const Args& a) {
  std::string path = state_dir(a) + "/counter";
  auto content = read_small_file(path);
  if (!content) fail(k_exit_unreadable, "cannot read " + path + ": " + errno_text(errno));
  auto v = kcr::scenario::parse_u64(first_line(*content));
  if (!v) fail(k_exit_mismatch, path + " does not hold a number: '" + first_line(*content) + "'");
  std::printf("%llu\n", static_cast<unsigned long long>(*v));
  return k_exit_ok;
}

// ---- membuf -------------------------------------------------------------------------------

int run_membuf(const Args& a) {
  std::string size_text = a.get("size", "10M");
  auto size = kcr::scenario::parse_size(size_text);
  if (!size || *size > (uint64_t{1} << 40)) usage_error("bad --size '" + size_text + "'");
  uint64_t rate_mb = a.number("rewrite-mb-per-s", 0, 0, 1'000'000);
  std::string dir = state_dir(a);

  // SIGUSR1 stays blocked and is taken with sigtimedwait: no handler, no async-signal rules,
  // and a probe's signal can never kill us before we are ready for it.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, nullptr);

  auto n = static_cast<std::size_t>(*size);
  void* mem = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    fail(k_exit_unreadable, "cannot allocate " + size_text + ": " + errno_text(errno));
  timespec rt{};
  ::clock_gettime(CLOCK_REALTIME, &rt);
  uint64_t seed = (static_cast<uint64_t>(rt.tv_sec) * 1'000'000'007ULL) ^
                  static_cast<uint64_t>(rt.tv_nsec) ^ (static_cast<uint64_t>(mono_ns()) << 17);
  kcr::scenario::fill_pattern(mem, n, seed);
  uint64_t expected = kcr::scenario::checksum(mem, n);

  // A stale membuf.actual from an earlier run would carry a higher generation than ours.
  ::unlink((dir + "/membuf.actual").c_str());
  if (!write_file_atomic(dir + "/membuf.expected",
                         std::to_string(n) + " " + kcr::scenario::hex64(expected) + "\n",
                         "membuf") ||
      !write_file_atomic(dir + "/membuf.pid", std::to_string(::getpid()) + "\n", "membuf")) {
    fail(k_exit_unreadable, "cannot write the state files in " + dir);
  }
  log_startup("kcr-scenario membuf: pid " + std::to_string(::getpid()) + ", " + std::to_string(n) +
              " bytes, checksum " + kcr::scenario::hex64(expected) + ", rewrite " +
              std::to_string(rate_mb) + " MB/s, state in " + dir);

  // Rewriting copies each word onto itself through a volatile pointer: the bytes (and so the
  // checksum) stay the same but every page written gets dirtied again.
  volatile uint64_t* words = static_cast<uint64_t*>(mem);
  const std::size_t word_count = n / 8;
  std::size_t cursor = 0;
  double owed_bytes = 0;
  const double rate_bytes_per_ns = static_cast<double>(rate_mb) * 1048576.0 / 1e9;
  int64_t last = mono_ns();
  uint64_t generation = 0;

  for (;;) {
    timespec timeout = to_timespec(rate_mb > 0 ? 100 * k_ms : 10 * k_s);
    int sig = ::sigtimedwait(&usr1, nullptr, &timeout);
    if (sig == SIGUSR1) {
      ++generation;
      uint64_t actual = kcr::scenario::checksum(mem, n);
      write_file_atomic(dir + "/membuf.actual",
                        std::to_string(generation) + " " + kcr::scenario::hex64(actual) + "\n",
                        "membuf");
    }
    if (rate_mb > 0 && word_count > 0) {
      int64_t now = mono_ns();
      int64_t elapsed = now - last;
      last = now;
      if (elapsed < 0) elapsed = 0;
      if (elapsed > k_s) elapsed = k_s;  // frozen or restored: do not catch up
      owed_bytes += static_cast<double>(elapsed) * rate_bytes_per_ns;
      if (owed_bytes > static_cast<double>(n)) owed_bytes = static_cast<double>(n);
      auto todo = static_cast<std::size_t>(owed_bytes / 8);
      owed_bytes -= static_cast<double>(todo) * 8;
      while (todo > 0) {
        std::size_t chunk = std::min(todo, word_count - cursor);
        for (std::size_t i = cursor; i < cursor + chunk; ++i) words[i] = words[i];
        cursor = (cursor + chunk) % word_count;
        todo -= chunk;
      }
    }
  }
}

int run_membuf_probe(const Args& a) {
  uint64_t timeout_s = a.number("timeout-s", 30, 1, 3600);
  std::string dir = state_dir(a);
  auto pid_text = read_small_file(dir + "/membuf.pid");
  auto pid = pid_text ? kcr::scenario::parse_u64(first_line(*pid_text)) : std::nullopt;
  if (!pid || *pid == 0 || *pid > 0x3fffffff) {
    fail(k_exit_unreadable,
         "membuf is not running here: cannot read a pid from " + dir + "/membuf.pid");
  }
  auto expected_text = read_small_file(dir + "/membuf.expected");
  auto expected =
      expected_text ? kcr::scenario::parse_number_and_sum(*expected_text) : std::nullopt;
  if (!expected)
    fail(k_exit_unreadable, "cannot read 'SIZE CHECKSUM' from " + dir + "/membuf.expected");

  auto read_actual = [&]() -> std::optional<kcr::scenario::NumberAndSum> {
    auto t = read_small_file(dir + "/membuf.actual");
    return t ? kcr::scenario::parse_number_and_sum(*t) : std::nullopt;
  };
  auto before = read_actual();
  uint64_t old_generation = before ? before->number : 0;
  if (::kill(static_cast<pid_t>(*pid), SIGUSR1) != 0) {
    fail(k_exit_unreadable,
         "cannot signal membuf (pid " + std::to_string(*pid) + "): " + errno_text(errno));
  }
  int64_t deadline = mono_ns() + static_cast<int64_t>(timeout_s) * k_s;
  for (;;) {
    auto now_actual = read_actual();
    if (now_actual && now_actual->number > old_generation) {
      if (now_actual->sum == expected->sum) {
        std::printf("ok %llu %s\n", static_cast<unsigned long long>(expected->number),
                    kcr::scenario::hex64(expected->sum).c_str());
        return k_exit_ok;
      }
      std::printf("mismatch expected=%s actual=%s\n", kcr::scenario::hex64(expected->sum).c_str(),
                  kcr::scenario::hex64(now_actual->sum).c_str());
      return k_exit_mismatch;
    }
    if (mono_ns() >= deadline) {
      fail(k_exit_unreadable, "membuf (pid " + std::to_string(*pid) +
                                  ") wrote no checksum within " + std::to_string(timeout_s) + " s");
    }
    sleep_ns(20 * k_ms);
  }
}

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

int run_tcp_listen(const Args& a) {
  auto port = static_cast<uint16_t>(a.number("port", 8080, 1, 65535));
  int fd = listen_loopback(port);
  log_startup("kcr-scenario tcp-listen: pid " + std::to_string(::getpid()) +
              ", listening on 127.0.0.1:" + std::to_string(port));
  uint64_t served = 0;
  for (;;) {
    int c = accept_one(fd);
    ++served;
    std::string line = "hello " + std::to_string(served) + "\n";
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

struct Mode {
  int (*run)(const Args&);
  std::set<std::string> options;
  bool workload;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(k_usage, stderr);
    return k_exit_usage;
  }
  std::string mode = argv[1];
  if (mode == "--help" || mode == "-h" || mode == "help") {
    std::fputs(k_usage, stdout);
    return k_exit_ok;
  }
  static const std::map<std::string, Mode> modes = {
      {"counter", {run_counter, {"interval-ms"}, true}},
      {"counter-probe", {run_counter_probe, {}, false}},
      {"membuf", {run_membuf, {"size", "rewrite-mb-per-s"}, true}},
      {"membuf-probe", {run_membuf_probe, {"timeout-s"}, false}},
      {"tcp-listen", {run_tcp_listen, {"port"}, true}},
      {"tcp-probe", {run_tcp_probe, {"port", "timeout-s"}, false}},
      {"tcp-pair", {run_tcp_pair, {"port", "interval-ms"}, true}},
      {"tcp-pair-probe", {run_tcp_pair_probe, {}, false}},
  };
  auto it = modes.find(mode);
  if (it == modes.end()) usage_error("unknown mode '" + mode + "'");
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(k_usage, stdout);
      return k_exit_ok;
    }
  }
  Args args = parse_args(argc, argv, it->second.options);
  if (it->second.workload) common_setup();
  return it->second.run(args);
}
