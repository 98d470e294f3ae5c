#include "core/error.hpp"

#include <cerrno>
#include <cstring>

namespace kcr {

const std::vector<ExitCodeInfo>& exit_codes() {
  static const std::vector<ExitCodeInfo> table = {
      {ExitCode::ok, "ok", "Success.", {}},
      {ExitCode::failure,
       "failure",
       "The operation failed; the message says why (kcr: error: ..., with a hint: line where "
       "one helps).",
       {}},
      {ExitCode::failure, "failure", "A prerequisite is missing or criu check fails.", {"check"}},
      {ExitCode::failure,
       "failure",
       "A required kernel option is missing.",
       {"image check-kernel"}},
      {ExitCode::failure,
       "failure",
       "A file of the checkpoint does not match its digest.",
       {"checkpoints verify"}},
      {ExitCode::usage, "usage", "Bad command line, name or configuration.", {}},
      {ExitCode::state_lost,
       "state_lost",
       "A workload's state did not survive a checkpoint/restore (its probe disagreed).",
       {"cycle", "migrate"}},
      {std::nullopt,
       "command",
       "Otherwise the exit status of the command it ran (128+N when killed by signal N).",
       {"exec"}},
  };
  return table;
}

void throw_errno(const std::string& what) {
  int e = errno;
  throw Error(what + ": " + std::strerror(e));
}

}  // namespace kcr
