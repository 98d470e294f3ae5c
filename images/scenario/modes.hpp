#pragma once

// What kcr-scenario's modes share: exit codes, the parsed command line and the EINTR-safe
// helpers every mode uses (main.cpp). The modes live in memory_modes.cpp (counter, membuf)
// and tcp_modes.cpp (tcp-listen, tcp-pair and their probes); main.cpp holds the mode table.

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "images/scenario/scenario.hpp"

namespace kcr::scenario {

constexpr int k_exit_ok = 0;
constexpr int k_exit_unreadable = 1;  // probe: no state to read, or workload not answering
constexpr int k_exit_usage = 2;
constexpr int k_exit_mismatch = 3;  // probe: state read but wrong

constexpr int64_t k_ms = 1'000'000;
constexpr int64_t k_s = 1'000'000'000;

// Prints MSG and a pointer to --help on stderr and exits k_exit_usage.
[[noreturn]] void usage_error(const std::string& msg);

// Prints MSG on stderr and exits CODE.
[[noreturn]] void fail(int code, const std::string& msg);

// fail(k_exit_unreadable, "WHAT: strerror(errno)"): a workload that cannot set its state up.
[[noreturn]] void fail_errno(const std::string& what);

// strerror(ERR) as a string.
std::string errno_text(int err);

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

// --state-dir, else $KCR_SCENARIO_STATE_DIR, else /tmp; without a trailing slash.
std::string state_dir(const Args& a);

// CLOCK_MONOTONIC in nanoseconds, and nanoseconds as a timespec.
int64_t mono_ns();
timespec to_timespec(int64_t ns);

// Sleeps NS on the monotonic clock; an interrupted sleep sleeps the rest (never more than NS,
// even if the clock jumped while the process was frozen).
void sleep_ns(int64_t ns);

// Sleeps until killed.
[[noreturn]] void sleep_forever();

// Writes (or sends, without SIGPIPE) all N bytes, retrying on EINTR; false on an error.
bool write_all(int fd, const char* p, std::size_t n);
bool send_all(int fd, const void* data, std::size_t n);

// Writes CONTENT to PATH through PATH.tmp-TAG and rename(2), so readers see the old or the
// new file, never half of one. TAG keeps two writers of one file apart. Returns false and
// says why on stderr; workloads keep running when a write fails.
bool write_file_atomic(const std::string& path, const std::string& content, const char* tag);

// The first 64 KiB or so of PATH; nullopt (errno set) when it cannot be opened.
std::optional<std::string> read_small_file(const std::string& path);

// S up to its first newline.
std::string first_line(const std::string& s);

// Prints LINE (the mode's startup line, which goes to the workload's log) and flushes.
void log_startup(const std::string& line);

// The modes: each gets the parsed command line and returns the exit code (workloads never
// return).
int run_counter(const Args& a);
int run_counter_probe(const Args& a);
int run_membuf(const Args& a);
int run_membuf_probe(const Args& a);
int run_mmap_file(const Args& a);
int run_tcp_listen(const Args& a);
int run_tcp_probe(const Args& a);
int run_tcp_pair(const Args& a);
int run_tcp_pair_probe(const Args& a);

// kcr-scenario's mode table: name -> entry. main.cpp holds the first modes and asks each
// family's file to add its own, so a new family is one file and one call.
struct Mode {
  int (*run)(const Args&);
  std::set<std::string> options;  // --state-dir is always allowed
  bool workload;                  // runs until killed (stdin /dev/null, SIGPIPE ignored)
  const char* help;               // one line for --help: "[--size 10M]  what it does"
};
using ModeTable = std::map<std::string, Mode>;

// Process and IPC state (process_modes.cpp); file descriptors, timers, signals and
// credentials (fd_modes.cpp); namespaces (namespace_modes.cpp); cgroups and mounts
// (mount_modes.cpp).
void add_process_modes(ModeTable& t);
void add_fd_modes(ModeTable& t);
void add_namespace_modes(ModeTable& t);
void add_mount_modes(ModeTable& t);

}  // namespace kcr::scenario
