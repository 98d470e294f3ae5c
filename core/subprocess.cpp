#include "core/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

extern char** environ;

namespace kcr::core {

std::optional<std::string> find_program(const std::string& program) {
  auto executable = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (program.find('/') != std::string::npos) {
    return executable(program) ? std::optional(program) : std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  // Debian keeps some tools (criu, nft) in sbin, which a user's PATH may lack.
  dirs += ":/usr/sbin:/sbin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + program;
      if (executable(candidate)) return candidate;
    }
    start = end + 1;
  }
  return std::nullopt;
}

namespace {

void make_pipe(UniqueFd& r, UniqueFd& w) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
  r.reset(fds[0]);
  w.reset(fds[1]);
}

}  // namespace

SubprocessResult run_subprocess(const std::vector<std::string>& argv,
                                const SubprocessOptions& options) {
  if (argv.empty()) throw Error("run_subprocess: empty argv");
  auto program = find_program(argv[0]);
  if (!program) throw Error("'" + argv[0] + "' was not found in PATH");

  UniqueFd in_r, in_w, out_r, out_w, err_r, err_w, out_file;
  make_pipe(in_r, in_w);
  const bool capture = options.capture && !options.output_file;
  if (options.output_file) {
    out_file.reset(
        ::open(options.output_file->c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!out_file) throw_errno("cannot open " + *options.output_file);
  }
  if (capture) {
    make_pipe(out_r, out_w);
    make_pipe(err_r, err_w);
  }

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
  for (const auto& e : options.extra_env) env_store.push_back(e);
  std::vector<char*> cenv;
  for (auto& e : env_store) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(in_r.get(), 0);
    if (capture) {
      ::dup2(out_w.get(), 1);
      ::dup2(err_w.get(), 2);
    } else if (out_file) {
      ::dup2(out_file.get(), 1);
      ::dup2(out_file.get(), 2);
    }
    if (options.cwd && ::chdir(options.cwd->c_str()) != 0) _exit(126);
    ::execve(program->c_str(), cargv.data(), cenv.data());
    _exit(127);
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  out_file.reset();
  if (!options.stdin_data) in_w.reset();

  SubprocessResult result;
  using Clock = std::chrono::steady_clock;
  std::optional<Clock::time_point> deadline;
  if (options.timeout) deadline = Clock::now() + *options.timeout;
  std::size_t in_done = 0;
  ::signal(SIGPIPE, SIG_IGN);

  for (;;) {
    std::vector<pollfd> fds;
    if (out_r) fds.push_back({out_r.get(), POLLIN, 0});
    if (err_r) fds.push_back({err_r.get(), POLLIN, 0});
    if (in_w) fds.push_back({in_w.get(), POLLOUT, 0});
    if (fds.empty()) break;
    int wait_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
      wait_ms = left.count() < 0 ? 0 : static_cast<int>(left.count());
    }
    int r = ::poll(fds.data(), fds.size(), wait_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (r == 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    for (auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == in_w.get()) {
        const std::string& data = *options.stdin_data;
        ssize_t n = ::write(p.fd, data.data() + in_done, data.size() - in_done);
        if (n < 0 && errno != EINTR && errno != EAGAIN) {
          in_w.reset();
        } else if (n > 0) {
          in_done += static_cast<std::size_t>(n);
          if (in_done == data.size()) in_w.reset();
        }
        continue;
      }
      char buf[65536];
      ssize_t n = ::read(p.fd, buf, sizeof buf);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        if (p.fd == out_r.get())
          out_r.reset();
        else
          err_r.reset();
        continue;
      }
      (p.fd == out_r.get() ? result.out : result.err).append(buf, static_cast<std::size_t>(n));
    }
  }

  int status = 0;
  bool reaped = false;
  // Without pipes to poll (output to a file or inherited), the timeout and the ticks are
  // served here.
  if (!result.timed_out && (deadline || options.on_tick)) {
    auto next_tick = Clock::now() + options.tick_interval;
    for (;;) {
      pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid) {
        reaped = true;
        break;
      }
      if (done < 0 && errno != EINTR) throw_errno("waitpid");
      auto now = Clock::now();
      if (deadline && now >= *deadline) {
        result.timed_out = true;
        ::kill(pid, SIGKILL);
        break;
      }
      if (options.on_tick && now >= next_tick) {
        options.on_tick();
        next_tick += options.tick_interval;
      }
      ::usleep(100'000);
    }
  }
  while (!reaped && ::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid");
  }
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
    if (result.exit_code == 127 && !options.capture) {
      // exec failure is indistinguishable here; leave it to the caller
    }
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

}  // namespace kcr::core
