// kcr-scenario: the built-in workloads kcr runs inside the guest, and the probes that prove a
// workload's state survived checkpoint/restore. See usage() for the modes. State files live in
// --state-dir (default $KCR_SCENARIO_STATE_DIR, else /tmp: the workload's private tmpfs, which
// CRIU carries in the checkpoint). Workloads run until killed; probes print one line.
//
// Everything here must survive being frozen, dumped and restored by CRIU: every syscall
// retries on EINTR, intervals use CLOCK_MONOTONIC with big jumps clamped (Pacer), and no
// PID is remembered except the one membuf writes to its pid file.

#include <fcntl.h>
#include <sys/socket.h>
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

#include "core/scenario_registry.hpp"
#include "images/scenario/checker.hpp"
#include "images/scenario/modes.hpp"

namespace kcr::scenario {

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "kcr-scenario: %s\n(see kcr-scenario --help)\n", msg.c_str());
  std::exit(k_exit_usage);
}

[[noreturn]] void fail(int code, const std::string& msg) {
  std::fprintf(stderr, "kcr-scenario: %s\n", msg.c_str());
  std::exit(code);
}

void fail_errno(const std::string& what) {
  fail(k_exit_unreadable, what + ": " + errno_text(errno));
}

std::string errno_text(int err) {
  return std::strerror(err);
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

void log_startup(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace kcr::scenario

using namespace kcr::scenario;

namespace {

// The modes' help lines come from the table; this is what surrounds them.
const char* const k_usage_head =
    "usage: kcr-scenario MODE [OPTIONS]\n"
    "\n"
    "The guest side of kcr's scenarios (core/scenario_registry.cpp lists them: `kcr scenarios\n"
    "ls`). Workloads run until killed; probes print one line and exit 0 ok, 1 no state or no\n"
    "answer, 2 usage, 3 state wrong.\n"
    "\n";
const char* const k_usage_tail =
    "\n"
    "  list                               the registry's scenarios and their modes here\n"
    "  check-registry                     exit 3 unless every registry entry's workload and\n"
    "                                     probe are modes here\n"
    "\n"
    "Every mode takes --state-dir DIR (default $KCR_SCENARIO_STATE_DIR, else /tmp).\n"
    "Sizes: 4096, 512K, 10M, 1G (binary units).\n";

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

const ModeTable& mode_table() {
  static const ModeTable table = [] {
    ModeTable t = {
        {"counter",
         {run_counter,
          {"interval-ms"},
          true,
          "[--interval-ms 1000]  count in memory, write the count to counter"}},
        {"counter-probe", {run_counter_probe, {}, false, "print the count"}},
        {"membuf",
         {run_membuf,
          {"size", "rewrite-mb-per-s"},
          true,
          "[--size 10M] [--rewrite-mb-per-s N]  fill a buffer, write 'SIZE CHECKSUM' to "
          "membuf.expected and the pid to membuf.pid; on SIGUSR1 write 'GENERATION CHECKSUM' "
          "to membuf.actual"}},
        {"membuf-probe",
         {run_membuf_probe,
          {"timeout-s"},
          false,
          "[--timeout-s 30]  ask membuf to re-checksum its buffer: 'ok SIZE SUM' or "
          "'mismatch expected=X actual=Y'"}},
        {"mmap-file",
         {run_mmap_file, {}, true, "a file in /tmp mapped shared, and private with pages copied"}},
        {"tcp-listen",
         {run_tcp_listen,
          {"port"},
          true,
          "[--port 8080]  serve 'hello SEED N' on 127.0.0.1:PORT (SEED drawn at start, N "
          "connections so far)"}},
        {"tcp-probe",
         {run_tcp_probe,
          {"port", "timeout-s"},
          false,
          "[--port 8080] [--timeout-s 5]  print the line tcp-listen sends"}},
        {"tcp-pair",
         {run_tcp_pair,
          {"port", "interval-ms"},
          true,
          "[--port 9090] [--interval-ms 100]  send a sequence over one 127.0.0.1 connection, "
          "write 'received N errors E' or 'broken REASON' to tcp-pair.state"}},
        {"tcp-pair-probe",
         {run_tcp_pair_probe, {}, false, "print tcp-pair.state; ok if 'received N errors 0'"}},
        {"probe",
         {run_probe,
          {"name", "timeout-s"},
          false,
          "--name NAME [--timeout-s 10]  ask workload NAME to check its state; print its "
          "answer ('ok FINGERPRINT' or 'bad REASON')"}},
    };
    add_process_modes(t);
    add_fd_modes(t);
    add_namespace_modes(t);
    add_mount_modes(t);
    return t;
  }();
  return table;
}

void print_usage(std::FILE* out) {
  std::fputs(k_usage_head, out);
  for (bool workloads : {true, false}) {
    std::fputs(workloads ? "Workloads:\n" : "Probes:\n", out);
    for (const auto& [name, m] : mode_table()) {
      if (m.workload == workloads) std::fprintf(out, "  %-18s %s\n", name.c_str(), m.help);
    }
  }
  std::fputs(k_usage_tail, out);
}

std::string first_word(std::string_view s) {
  return std::string(s.substr(0, s.find(' ')));
}

// Every registry entry's workload and probe must be a mode of the right kind here.
int check_registry(bool list) {
  int bad = 0;
  for (const auto& spec : kcr::core::scenario_specs()) {
    auto w = mode_table().find(first_word(spec.workload));
    auto p = mode_table().find(first_word(spec.probe));
    bool ok = w != mode_table().end() && w->second.workload && p != mode_table().end() &&
              !p->second.workload;
    if (list) {
      std::printf("%-22s %s\n", std::string(spec.name).c_str(), ok ? "ok" : "MISSING");
    } else if (!ok) {
      std::fprintf(stderr,
                   "kcr-scenario: scenario %s: workload '%s' or probe '%s' is not a "
                   "mode here\n",
                   std::string(spec.name).c_str(), std::string(spec.workload).c_str(),
                   std::string(spec.probe).c_str());
    }
    bad += !ok;
  }
  return bad ? k_exit_mismatch : k_exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return k_exit_usage;
  }
  std::string mode = argv[1];
  if (mode == "--help" || mode == "-h" || mode == "help") {
    print_usage(stdout);
    return k_exit_ok;
  }
  if (mode == "list" || mode == "check-registry") return check_registry(mode == "list");
  const auto& modes = mode_table();
  auto it = modes.find(mode);
  if (it == modes.end()) usage_error("unknown mode '" + mode + "'");
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      print_usage(stdout);
      return k_exit_ok;
    }
  }
  Args args = parse_args(argc, argv, it->second.options);
  if (it->second.workload) common_setup();
  return it->second.run(args);
}
