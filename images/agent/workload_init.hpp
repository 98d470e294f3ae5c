#pragma once

// A workload's init, PID 1 of its PID namespace: the agent binary re-executed inside the
// workload's namespaces, or, for a workload with a root filesystem of its own (whose root has
// no libraries of the guest's), kcr-init, a static binary of this file alone copied into the
// workload's /run. Standard library and libc only: no kcr library may be linked into it.

#include <string>

namespace kcr::agent {

// The init is started as `INIT --workload-init -- COMMAND...`, with fd 3 open to report a
// failure to the agent; fd 3's closing tells the agent that the workload started.
inline constexpr const char* k_workload_init_flag = "--workload-init";
inline constexpr int k_init_error_fd = 3;

// Reports a setup failure (WHAT and errno's text) to the agent through ERROR_FD and exits 126.
[[noreturn]] void fail_setup(int error_fd, const std::string& what);

// In a freshly forked child: unblocks all signals and restores default dispositions (the agent
// ignores SIGPIPE, which exec would otherwise pass on).
void reset_signals_in_child();

// In a child: execs argv with envp, searching PATH from envp; on failure writes the reason to
// stderr and exits 127.
[[noreturn]] void exec_or_die(char** argv, char** envp);

// The init's main: starts argv with envp, forwards signals to it and exits with its status.
[[noreturn]] void workload_init_main(char** argv, char** envp);

}  // namespace kcr::agent
