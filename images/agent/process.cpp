#include "images/agent/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/unique_fd.hpp"

namespace kcr::agent {

uint64_t boottime_ms() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

int64_t unix_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::vector<std::string> default_env() {
  return {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
          "TERM=linux"};
}

CStringArray::CStringArray(const std::vector<std::string>& strings) : m_strings(strings) {
  for (auto& s : m_strings) m_pointers.push_back(s.data());
  m_pointers.push_back(nullptr);
}

namespace {

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return 0;
  return left.count() > 1000000 ? 1000000 : static_cast<int>(left.count());
}

}  // namespace

bool read_until_eof(int out_fd, int err_fd, std::size_t cap, Clock::time_point deadline,
                    Output& output) {
  int fds[2] = {out_fd, err_fd};
  std::string* sinks[2] = {&output.out, &output.err};
  char buf[64 * 1024];
  for (;;) {
    pollfd pfds[2];
    int count = 0;
    int which[2];
    for (int i = 0; i < 2; ++i) {
      if (fds[i] < 0) continue;
      pfds[count] = {fds[i], POLLIN, 0};
      which[count++] = i;
    }
    if (count == 0) return true;
    int timeout = remaining_ms(deadline);
    if (timeout == 0) return false;
    int r = ::poll(pfds, count, timeout);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    for (int k = 0; k < count; ++k) {
      if (pfds[k].revents == 0) continue;
      int i = which[k];
      ssize_t n = ::read(fds[i], buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        fds[i] = -1;
        continue;
      }
      std::string& sink = *sinks[i];
      std::size_t room = cap > sink.size() ? cap - sink.size() : 0;
      std::size_t take = static_cast<std::size_t>(n) < room ? static_cast<std::size_t>(n) : room;
      sink.append(buf, take);
      if (take < static_cast<std::size_t>(n)) output.truncated = true;
    }
  }
}

int wait_for_child(pid_t pid, Clock::time_point deadline) {
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return 0;  // not our child any more; nothing to report
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return status;
    }
    ::usleep(5000);
  }
}

pid_t spawn_with_output(const std::vector<std::string>& argv, int out_fd, int pass_fd) {
  CStringArray args(argv);
  CStringArray env(default_env());
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    reset_signals_in_child();
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(out_fd, STDERR_FILENO);
    if (pass_fd >= 0) {
      // As fd 3 (dup2 onto itself would keep close-on-exec).
      if (pass_fd == k_passed_fd) {
        ::fcntl(pass_fd, F_SETFD, 0);
      } else {
        ::dup2(pass_fd, k_passed_fd);
      }
    }
    ::close_range(pass_fd >= 0 ? k_passed_fd + 1 : k_passed_fd, ~0U, 0);
    exec_or_die(args.data(), env.data());
  }
  return pid;
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  if (argv.empty()) throw Error("empty command");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);
  pid_t pid = spawn_with_output(argv, write_end.get());
  write_end.reset();
  auto deadline = Clock::now() + timeout;
  CommandResult result;
  Output output;
  result.timed_out = !read_until_eof(read_end.get(), -1, 1024 * 1024, deadline, output);
  result.output = std::move(output.out);
  result.status = wait_for_child(pid, result.timed_out ? Clock::now() : deadline);
  return result;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "exit code " + std::to_string(WEXITSTATUS(status));
}

std::string read_first_line(const std::string& path) {
  std::string text = core::try_read_file(path, 4096).value_or("");
  return text.substr(0, text.find('\n'));
}

char proc_stat_state(std::string_view stat_line) {
  // The command name is the only field that can hold ')', so the state follows the last one.
  auto close = stat_line.rfind(')');
  if (close == std::string_view::npos || stat_line.find('(') > close) return '\0';
  if (close + 3 > stat_line.size() || stat_line[close + 1] != ' ') return '\0';
  char state = stat_line[close + 2];
  bool alone =
      close + 3 == stat_line.size() || stat_line[close + 3] == ' ' || stat_line[close + 3] == '\n';
  return alone && state != ' ' ? state : '\0';
}

}  // namespace kcr::agent
