#include "images/agent/workloads.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "core/names.hpp"
#include "core/unique_fd.hpp"
#include "images/agent/process.hpp"

namespace kcr::agent {

namespace {

constexpr std::uint32_t k_max_log_read = 1024 * 1024;
constexpr auto k_start_timeout = std::chrono::seconds(10);

void make_dirs(const std::string& path) {
  for (std::size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir " + prefix);
  }
}

// Reports a setup failure to the agent through error_fd and exits.
[[noreturn]] void fail(int error_fd, const std::string& what) {
  std::string message = what + ": " + strerror(errno);
  ssize_t ignored = ::write(error_fd, message.data(), message.size());
  (void)ignored;
  _exit(126);
}

// Runs in the cloned child, PID 1 of the workload's new PID namespace: sets up what CRIU needs
// (guest.md), starts the command and then acts as its init, forwarding signals to it (a namespace
// init ignores signals it has no handler for, so without this `kill TERM` would do nothing).
[[noreturn]] void workload_init(const std::string& name, const std::string& log_path,
                                const std::string& cwd, char** argv, char** envp, int error_fd) {
  // Nothing of the agent's may stay open here: the port above all.
  if (error_fd <= STDERR_FILENO) error_fd = ::fcntl(error_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  ::close_range(0, static_cast<unsigned>(error_fd) - 1, 0);
  ::close_range(static_cast<unsigned>(error_fd) + 1, ~0U, 0);

  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    fail(error_fd, "make / private");
  }
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    fail(error_fd, "mount /proc");
  }
  if (::mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0) {
    fail(error_fd, "mount /tmp");
  }
  if (::sethostname(name.data(), name.size()) != 0) fail(error_fd, "sethostname");
  ::prctl(PR_SET_NAME, "kcr-init", 0, 0, 0);
  // CRIU refuses a session leader outside the workload's PID namespace.
  if (::setsid() < 0) fail(error_fd, "setsid");

  // Stdio is opened inside the new mount namespace, or CRIU cannot find its mount.
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd < 0) fail(error_fd, "open /dev/null");
  if (null_fd != STDIN_FILENO) {
    ::dup2(null_fd, STDIN_FILENO);
    ::close(null_fd);
  }
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (log_fd < 0) fail(error_fd, "open " + log_path);
  ::dup2(log_fd, STDOUT_FILENO);
  ::dup2(log_fd, STDERR_FILENO);
  if (log_fd > STDERR_FILENO) ::close(log_fd);
  const std::string dir = cwd.empty() ? "/" : cwd;
  if (::chdir(dir.c_str()) != 0) fail(error_fd, "chdir " + dir);

  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, nullptr);
  signal(SIGCHLD, SIG_DFL);

  pid_t command = ::fork();
  if (command < 0) fail(error_fd, "fork");
  if (command == 0) {
    ::close(error_fd);
    reset_signals_in_child();
    exec_or_die(argv, envp);
  }
  ::close(error_fd);

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

}  // namespace

void to_proto(const Workload& workload, proto::Workload* out) {
  out->set_name(workload.name);
  out->set_pid(workload.pid);
  for (const auto& arg : workload.argv) out->add_argv(arg);
  out->set_state(workload.running ? "running" : "exited");
  out->set_exit_code(workload.exit_code);
  out->set_exit_signal(workload.exit_signal);
  out->set_started_unix_ms(workload.started_unix_ms);
}

const Workload& WorkloadTable::run(const proto::RunRequest& request) {
  const std::string& name = request.name();
  if (!core::is_valid_name(name)) {
    throw Error("workload name '" + name + "' is not valid",
                "use 1-64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit");
  }
  auto existing = m_workloads.find(name);
  if (existing != m_workloads.end() && existing->second.running) {
    throw Error("workload '" + name + "' already exists", "kill it first or choose another name");
  }
  if (request.argv().empty()) throw Error("workload '" + name + "' has no command to run");

  std::string dir = m_state_dir + "/workloads/" + name;
  make_dirs(dir);
  std::string log_path = dir + "/log";
  {
    UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!log) throw_errno("create " + log_path);
  }

  std::vector<std::string> argv(request.argv().begin(), request.argv().end());
  std::vector<std::string> env(request.env().begin(), request.env().end());
  if (env.empty()) env = default_env();
  CStringArray c_argv(argv);
  CStringArray c_env(env);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd error_read(pipe_fds[0]);
  UniqueFd error_write(pipe_fds[1]);

  // A fork-style clone: the child continues here on a copy of this stack, PID 1 of its own PID
  // namespace, with the agent as its parent.
  long pid =
      ::syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD,
                nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) throw_errno("clone");
  if (pid == 0) {
    workload_init(name, log_path, request.cwd(), c_argv.data(), c_env.data(), error_write.get());
  }
  error_write.reset();

  Output setup;
  bool done = read_until_eof(error_read.get(), -1, 4096, Clock::now() + k_start_timeout, setup);
  if (!done || !setup.out.empty()) {
    int status = wait_for_child(static_cast<pid_t>(pid), Clock::now());
    (void)status;
    throw Error("workload '" + name +
                "' could not start: " + (done ? setup.out : std::string("setup timed out")));
  }

  Workload workload;
  workload.name = name;
  workload.pid = static_cast<pid_t>(pid);
  workload.argv = std::move(argv);
  workload.started_unix_ms = unix_ms();
  workload.log_path = log_path;
  auto& slot = m_workloads[name];
  slot = std::move(workload);
  return slot;
}

bool WorkloadTable::record_exit(pid_t pid, int status) {
  for (auto& [name, workload] : m_workloads) {
    if (!workload.running || workload.pid != pid) continue;
    workload.running = false;
    if (WIFSIGNALED(status)) {
      workload.exit_signal = WTERMSIG(status);
    } else {
      workload.exit_code = WEXITSTATUS(status);
    }
    return true;
  }
  return false;
}

const Workload& WorkloadTable::get(const std::string& name) const {
  auto it = m_workloads.find(name);
  if (it == m_workloads.end()) {
    throw Error("no workload named '" + name + "'", "kcr ps VM lists the workloads");
  }
  return it->second;
}

void WorkloadTable::kill(const std::string& name, int signal) {
  if (signal == 0) signal = SIGTERM;
  if (signal < 1 || signal > 64) throw Error("signal " + std::to_string(signal) + " is not valid");
  const Workload& workload = get(name);
  if (!workload.running) throw Error("workload '" + name + "' is not running");
  if (::kill(workload.pid, signal) != 0) throw_errno("kill workload '" + name + "'");
}

proto::LogsReply WorkloadTable::logs(const proto::LogsRequest& request) const {
  const Workload& workload = get(request.workload());
  proto::LogsReply reply;
  reply.set_running(workload.running);
  reply.set_next_offset(request.offset());
  if (request.offset() > static_cast<std::uint64_t>(INT64_MAX / 2)) return reply;
  std::uint32_t max = request.max_bytes();
  if (max == 0 || max > k_max_log_read) max = k_max_log_read;
  UniqueFd fd(::open(workload.log_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("open " + workload.log_path);
  std::string data(max, '\0');
  std::size_t got = 0;
  while (got < max) {
    ssize_t n =
        ::pread(fd.get(), data.data() + got, max - got, static_cast<off_t>(request.offset() + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("read " + workload.log_path);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  reply.set_next_offset(request.offset() + got);
  reply.set_data(std::move(data));
  return reply;
}

proto::PsReply WorkloadTable::ps() const {
  proto::PsReply reply;
  for (const auto& [name, workload] : m_workloads) to_proto(workload, reply.add_workloads());
  return reply;
}

void WorkloadTable::signal_all(int signal) {
  for (const auto& [name, workload] : m_workloads) {
    if (workload.running) ::kill(workload.pid, signal);
  }
}

bool WorkloadTable::any_running() const {
  for (const auto& [name, workload] : m_workloads) {
    if (workload.running) return true;
  }
  return false;
}

void reap_children(WorkloadTable& table) {
  int status = 0;
  pid_t pid;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) table.record_exit(pid, status);
}

}  // namespace kcr::agent
