#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "images/agent/workload_init.hpp"

namespace kcr::agent {

using Clock = std::chrono::steady_clock;

// Milliseconds of CLOCK_BOOTTIME (time since the guest booted, counting suspend).
uint64_t boottime_ms();

// Milliseconds since the Unix epoch.
int64_t unix_ms();

// The environment a command gets when its request names none.
std::vector<std::string> default_env();

// Holds argv/envp as NUL-terminated char* arrays built before fork, so a child only execs.
class CStringArray {
 public:
  explicit CStringArray(const std::vector<std::string>& strings);
  char** data() { return m_pointers.data(); }

 private:
  std::vector<std::string> m_strings;
  std::vector<char*> m_pointers;
};

// Output gathered from a child's stdout and stderr pipes.
struct Output {
  std::string out;
  std::string err;
  bool truncated = false;
};

// Reads out_fd and err_fd (-1 to skip one) until both reach EOF or the deadline passes; each
// stream keeps at most cap bytes and the rest is read and dropped. Returns false on timeout.
bool read_until_eof(int out_fd, int err_fd, std::size_t cap, Clock::time_point deadline,
                    Output& output);

// Waits for the agent's own child pid until the deadline, then SIGKILLs and reaps it; returns the
// wait status. Only pids the caller created are waited for here, never -1, so the general reaper
// and these synchronous waits never take each other's children.
int wait_for_child(pid_t pid, Clock::time_point deadline);

// The descriptor number PASS_FD gets in a spawned child.
inline constexpr int k_passed_fd = 3;

// Forks and execs ARGV with the default environment, stdin on /dev/null and
// stdout+stderr on OUT_FD (and PASS_FD, when given, as fd 3: CRIU's
// --status-fd); returns the child's pid (the caller waits for it).
pid_t spawn_with_output(const std::vector<std::string>& argv, int out_fd, int pass_fd = -1);

// What run_command saw.
struct CommandResult {
  int status = 0;      // raw wait status
  std::string output;  // stdout and stderr interleaved
  bool timed_out = false;
};

// Runs argv (searched in PATH) with stdin from /dev/null and stdout+stderr captured together,
// killing it at the timeout. A command that cannot be executed exits 127 with the reason in output.
CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// Describes a wait status: "exit code N" or "signal N".
std::string describe_status(int status);

// The first line of the file at PATH without its newline; empty when it cannot be read.
std::string read_first_line(const std::string& path);

// The state letter of a /proc/PID/stat line ('R', 'S', 'T', ...): the field after the
// parenthesised command name, which may itself hold spaces and ')'. '\0' for anything else.
char proc_stat_state(std::string_view stat_line);

// True for the states of a stopped task: 'T' (SIGSTOP, CRIU's --leave-stopped) and 't' (traced).
inline bool is_stopped_state(char state) {
  return state == 'T' || state == 't';
}

}  // namespace kcr::agent
