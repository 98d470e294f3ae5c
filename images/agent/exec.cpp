#include "images/agent/exec.hpp"

#include "images/agent/limits.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "core/frame.hpp"
#include "core/unique_fd.hpp"
#include "images/agent/process.hpp"

namespace kcr::agent {

namespace {

// Each stream is capped so that both together still fit in one frame with the reply around them.
constexpr std::size_t k_output_cap = 4 * 1024 * 1024 - 64 * 1024;
static_assert(2 * k_output_cap + 64 * 1024 < core::k_max_frame);
constexpr std::chrono::milliseconds k_default_timeout{60000};
// How long output may keep flowing after the command exited (its background children may hold
// the pipes open; they are not waited for).
constexpr std::chrono::milliseconds k_drain_after_exit{200};

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe");
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void write_line(int fd, const std::string& line) {
  std::string text = line + "\n";
  ssize_t ignored = ::write(fd, text.data(), text.size());
  (void)ignored;
}

// The helper: joins the workload's namespaces, forks the command (which lands in the workload's
// PID namespace) and reports on report_fd "P<pid>", then "S<wait status>", or "E<message>".
[[noreturn]] void exec_helper(pid_t init_pid, const std::string& cwd, char** argv, char** envp,
                              int out_fd, int err_fd, int report_fd) {
  reset_signals_in_child();
  // Into the workload's cgroup first, while still the guest's root: its
  // limits count what exec runs, as podman exec's do.
  try {
    join_cgroup_of(init_pid);
  } catch (const Error& e) {
    write_line(report_fd, std::string("E") + e.what());
    _exit(1);
  }
  // The user namespace goes first (the others belong to it, and joining it gives the rights
  // to join them), as nsenter does; cgroup and user are joined only when the workload has
  // its own (joining one's own user namespace is an error). mnt goes last: once in the
  // workload's mount namespace, its /proc would be the one we see.
  const char* kinds[] = {"user", "cgroup", "ipc", "uts", "pid", "mnt"};
  constexpr int n = 6;
  int ns_fds[n];
  bool join[n];
  for (int i = 0; i < n; ++i) {
    std::string path = "/proc/" + std::to_string(init_pid) + "/ns/" + kinds[i];
    ns_fds[i] = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns_fds[i] < 0) {
      write_line(report_fd, "Eopen " + path + ": " + strerror(errno));
      _exit(1);
    }
    struct stat its {
    }, mine{};
    join[i] = i >= 2 || ::fstat(ns_fds[i], &its) != 0 ||
              ::stat((std::string("/proc/self/ns/") + kinds[i]).c_str(), &mine) != 0 ||
              its.st_ino != mine.st_ino;
  }
  for (int i = 0; i < n; ++i) {
    if (join[i] && ::setns(ns_fds[i], 0) != 0) {
      write_line(report_fd, std::string("Esetns ") + kinds[i] + ": " + strerror(errno));
      _exit(1);
    }
    ::close(ns_fds[i]);
    // Root of the workload's user namespace, as its own processes are: the guest's root may
    // be no id there, and could then create no file in its filesystems.
    if (i == 0 && join[0] &&
        (::setgroups(0, nullptr) != 0 || ::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0)) {
      write_line(report_fd, std::string("Ebecome root in the user namespace: ") + strerror(errno));
      _exit(1);
    }
  }
  pid_t command = ::fork();
  if (command < 0) {
    write_line(report_fd, std::string("Efork: ") + strerror(errno));
    _exit(1);
  }
  if (command == 0) {
    // A session of its own inside the workload's PID namespace: what it leaves running in the
    // background belongs to the workload then, and CRIU can dump it ("A session leader of ...
    // is outside of its pid namespace" otherwise, for every later checkpoint).
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    const std::string dir = cwd.empty() ? "/" : cwd;
    if (::chdir(dir.c_str()) != 0) {
      std::string message =
          "kcr-agent: cannot change directory to " + dir + ": " + strerror(errno) + "\n";
      ssize_t ignored = ::write(STDERR_FILENO, message.data(), message.size());
      (void)ignored;
      _exit(127);
    }
    exec_or_die(argv, envp);
  }
  ::close(out_fd);
  ::close(err_fd);
  write_line(report_fd, "P" + std::to_string(command));
  int status = 0;
  while (::waitpid(command, &status, 0) < 0) {
    if (errno != EINTR) {
      write_line(report_fd, std::string("Ewaitpid: ") + strerror(errno));
      _exit(1);
    }
  }
  write_line(report_fd, "S" + std::to_string(status));
  _exit(0);
}

// What the helper reported, parsed as lines arrive.
struct Report {
  std::string text;
  pid_t command = 0;
  bool has_status = false;
  int status = 0;
  std::string error;

  void parse() {
    std::size_t start = 0;
    for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string line = text.substr(start, nl - start);
      if (line.empty()) continue;
      std::string value = line.substr(1);
      if (line[0] == 'P') command = static_cast<pid_t>(std::atoi(value.c_str()));
      if (line[0] == 'S') {
        has_status = true;
        status = std::atoi(value.c_str());
      }
      if (line[0] == 'E') error = value;
    }
  }
};

// Reads the command's stdout and stderr and the helper's report until all
// three close, killing the command once TIMEOUT passed. Returns whether it did.
bool collect(int (&fds)[3], pid_t helper, std::chrono::milliseconds timeout, Output& output,
             Report& state) {
  std::string* sinks[3] = {&output.out, &output.err, &state.text};
  auto deadline = Clock::now() + timeout;
  bool timed_out = false;
  bool killed = false;
  char buf[64 * 1024];
  for (;;) {
    // Once the command's status is in, only drain briefly what it left in the pipes.
    if (state.has_status && deadline > Clock::now() + k_drain_after_exit) {
      deadline = Clock::now() + k_drain_after_exit;
    }
    pollfd pfds[3];
    int which[3];
    int count = 0;
    for (int i = 0; i < 3; ++i) {
      if (fds[i] < 0) continue;
      pfds[count] = {fds[i], POLLIN, 0};
      which[count++] = i;
    }
    if (count == 0) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      if (state.has_status || killed) break;
      // Timed out: kill the command (its helper then reports its status) and give it a moment.
      timed_out = true;
      killed = true;
      ::kill(state.command > 0 ? state.command : helper, SIGKILL);
      deadline = Clock::now() + std::chrono::seconds(2);
      continue;
    }
    int r = ::poll(pfds, count, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) break;
    for (int k = 0; k < count && r > 0; ++k) {
      if (pfds[k].revents == 0) continue;
      int i = which[k];
      ssize_t n = ::read(fds[i], buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        fds[i] = -1;
        continue;
      }
      std::size_t cap = i == 2 ? 4096 : k_output_cap;
      std::string& sink = *sinks[i];
      std::size_t room = cap > sink.size() ? cap - sink.size() : 0;
      std::size_t take = std::min(static_cast<std::size_t>(n), room);
      sink.append(buf, take);
      if (take < static_cast<std::size_t>(n) && i != 2) output.truncated = true;
      if (i == 2) state.parse();
    }
  }
  return timed_out;
}

}  // namespace

proto::ExecReply exec_in_workload(const Workload& workload, const proto::ExecRequest& request) {
  if (!workload.running) {
    throw Error("workload '" + workload.name + "' is not running", "kcr ps VM shows its state");
  }
  if (request.argv().empty()) throw Error("exec needs a command");
  std::vector<std::string> argv(request.argv().begin(), request.argv().end());
  std::vector<std::string> env(request.env().begin(), request.env().end());
  if (env.empty()) env = default_env();
  CStringArray c_argv(argv);
  CStringArray c_env(env);
  auto timeout =
      request.timeout_ms() ? std::chrono::milliseconds(request.timeout_ms()) : k_default_timeout;

  Pipe out = make_pipe();
  Pipe err = make_pipe();
  Pipe report = make_pipe();
  pid_t helper = ::fork();
  if (helper < 0) throw_errno("fork");
  if (helper == 0) {
    exec_helper(workload.pid, request.cwd(), c_argv.data(), c_env.data(), out.write.get(),
                err.write.get(), report.write.get());
  }
  out.write.reset();
  err.write.reset();
  report.write.reset();

  proto::ExecReply reply;
  Output output;
  Report state;
  int fds[3] = {out.read.get(), err.read.get(), report.read.get()};
  bool timed_out = collect(fds, helper, timeout, output, state);
  int helper_status = wait_for_child(helper, Clock::now() + std::chrono::seconds(2));
  (void)helper_status;
  state.parse();
  if (!state.error.empty()) {
    throw Error("exec in workload '" + workload.name + "' failed: " + state.error);
  }
  if (state.has_status) {
    if (WIFSIGNALED(state.status)) {
      reply.set_exit_signal(WTERMSIG(state.status));
    } else {
      reply.set_exit_code(WEXITSTATUS(state.status));
    }
  } else {
    // The helper died with the command (timeout): report the kill.
    reply.set_exit_signal(SIGKILL);
  }
  if (timed_out) {
    output.err += "\nkcr-agent: command timed out after " + std::to_string(timeout.count()) +
                  " ms and was killed\n";
  }
  reply.set_stdout_data(std::move(output.out));
  reply.set_stderr_data(std::move(output.err));
  reply.set_truncated(output.truncated);
  return reply;
}

}  // namespace kcr::agent
