#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kcr::core {

struct SubprocessResult {
  int exit_code = -1;  // exit status, or -1 when killed by a signal
  int signal = 0;      // the signal that ended it, else 0
  bool timed_out = false;
  std::string out;  // captured stdout
  std::string err;  // captured stderr

  bool ok() const { return exit_code == 0 && !timed_out; }
};

struct SubprocessOptions {
  std::optional<std::string> cwd;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::string> stdin_data;  // else stdin is /dev/null
  bool capture = true;                    // else stdout/stderr are inherited
  std::vector<std::string> extra_env;     // KEY=VALUE added to the environment
  // When set, stdout and stderr are appended to this file instead (capture is ignored).
  std::optional<std::string> output_file;
  // When set, called every tick_interval while the program runs (progress of long builds).
  std::function<void()> on_tick;
  std::chrono::milliseconds tick_interval = std::chrono::seconds(30);
};

// Runs ARGV (argv[0] looked up in PATH) and waits for it. Never goes through a
// shell. Throws kcr::Error when the program cannot be started; a non-zero exit
// is reported in the result, not thrown.
SubprocessResult run_subprocess(const std::vector<std::string>& argv,
                                const SubprocessOptions& options = {});

// Returns the full path of PROGRAM found in PATH (or PROGRAM itself when it
// contains a '/' and is executable), or nullopt.
std::optional<std::string> find_program(const std::string& program);

}  // namespace kcr::core
