#include "images/agent/workload_init.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace kcr::agent {

void fail_setup(int error_fd, const std::string& what) {
  std::string message = what + ": " + strerror(errno);
  ssize_t ignored = ::write(error_fd, message.data(), message.size());
  (void)ignored;
  _exit(126);
}

void reset_signals_in_child() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    signal(sig, SIG_DFL);
  }
}

void exec_or_die(char** argv, char** envp) {
  // execvpe searches the caller's PATH; the command's own PATH is the one that should count.
  for (char** e = envp; *e; ++e) {
    if (std::strncmp(*e, "PATH=", 5) == 0) {
      setenv("PATH", *e + 5, 1);
      break;
    }
  }
  execvpe(argv[0], argv, envp);
  int err = errno;
  std::string message =
      std::string("kcr-agent: cannot run '") + argv[0] + "': " + strerror(err) + "\n";
  ssize_t ignored = ::write(STDERR_FILENO, message.data(), message.size());
  (void)ignored;
  _exit(127);
}

void workload_init_main(char** argv, char** envp) {
  const int error_fd = k_init_error_fd;
  ::fcntl(error_fd, F_SETFD, FD_CLOEXEC);
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, nullptr);
  signal(SIGCHLD, SIG_DFL);
  ::prctl(PR_SET_NAME, "kcr-init", 0, 0, 0);

  pid_t command = ::fork();
  if (command < 0) fail_setup(error_fd, "fork");
  if (command == 0) {
    ::close(error_fd);
    reset_signals_in_child();
    exec_or_die(argv, envp);
  }
  ::close(error_fd);

  // A namespace init ignores signals it has no handler for, so it forwards them to the command
  // (else `kill TERM` would do nothing), and exits with the command's status.
  for (;;) {
    siginfo_t info{};
    int sig = ::sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      ::kill(command, sig);
      continue;
    }
    int status = 0;
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != command) continue;
      if (WIFSIGNALED(status)) _exit(128 + WTERMSIG(status));
      _exit(WEXITSTATUS(status));
    }
  }
}

}  // namespace kcr::agent
