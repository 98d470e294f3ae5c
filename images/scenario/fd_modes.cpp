// Scenarios of file descriptors (eventfd, timerfd, signalfd, epoll, inotify, fanotify), timers,
// signals and credentials, each a workload answering the generic probe (checker.hpp).

#include <fcntl.h>
#include <grp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <ctime>
#include <string>
#include <vector>

#include "images/scenario/checker.hpp"
#include "images/scenario/modes.hpp"
#include "images/scenario/scenario.hpp"

namespace kcr::scenario {

namespace {

std::string bad(const std::string& why) {
  return "bad " + why;
}

// Reads up to N bytes, retrying on EINTR; -1 on an error (EAGAIN for an empty
// non-blocking fd).
ssize_t read_some(int fd, void* p, std::size_t n) {
  for (;;) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

// eventfd-epoll: an eventfd holding a seed-derived count, a periodic timerfd, and an epoll
// instance watching both; the check sees both ready, the count intact, the timer firing.
int run_fds(const Args& a, bool with_timerfd) {
  uint64_t value = seed_number() % 1000000 + 1;
  int ev = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int tf = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ev < 0 || tf < 0 || ep < 0) fail_errno("eventfd/timerfd/epoll");
  ::write(ev, &value, sizeof value);
  itimerspec its{};
  its.it_interval.tv_nsec = 100 * k_ms;
  its.it_value.tv_nsec = 100 * k_ms;
  ::timerfd_settime(tf, 0, &its, nullptr);
  epoll_event e1{EPOLLIN, {.u64 = 1}}, e2{EPOLLIN, {.u64 = 2}};
  ::epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e1);
  if (with_timerfd) ::epoll_ctl(ep, EPOLL_CTL_ADD, tf, &e2);
  const char* name = with_timerfd ? "timerfd" : "eventfd-epoll";
  log_startup(std::string(name) + ": eventfd" + (with_timerfd ? ", timerfd" : "") + ", epoll");
  serve_checks(a, name, [&] {
    unsigned ready = with_timerfd ? 0 : 2;
    int64_t end = mono_ns() + 2 * k_s;
    while (ready != 3 && mono_ns() < end) {
      epoll_event out[4];
      int n = ::epoll_wait(ep, out, 4, 200);
      for (int i = 0; i < n; ++i) ready |= static_cast<unsigned>(out[i].data.u64);
    }
    uint64_t got = 0, ticks = 0;
    if (with_timerfd && !(ready & 2)) {
      sleep_ns(300 * k_ms);
      bool fired = ::read(tf, &ticks, sizeof ticks) == sizeof ticks;
      itimerspec cur{};
      ::timerfd_gettime(tf, &cur);
      return std::string(fired ? "bad epoll no longer reports the timerfd, which still fires"
                               : "bad the timerfd stopped firing") +
             " (timerfd_gettime: value " + std::to_string(cur.it_value.tv_sec) + "." +
             std::to_string(cur.it_value.tv_nsec / k_ms) + " s, interval " +
             std::to_string(cur.it_interval.tv_nsec / k_ms) + " ms)";
    }
    if (!(ready & 1)) return std::string("bad epoll does not report the eventfd");
    if (::read(ev, &got, sizeof got) != sizeof got) return std::string("bad eventfd empty");
    ::write(ev, &got, sizeof got);
    if (!with_timerfd) return "ok " + seed() + " eventfd=" + std::to_string(got) + " epoll=1";
    ::read(tf, &ticks, sizeof ticks);
    itimerspec now{};
    ::timerfd_gettime(tf, &now);
    return "ok " + seed() + " eventfd=" + std::to_string(got) +
           " timerfd_interval_ms=" + std::to_string(now.it_interval.tv_nsec / k_ms) + " epoll=2";
  });
}

int run_eventfd_epoll(const Args& a) {
  return run_fds(a, false);
}

int run_timerfd(const Args& a) {
  return run_fds(a, true);
}

std::atomic<unsigned> g_alarms{0}, g_rt{0};
void on_alarm(int) {
  ++g_alarms;
}
void on_rt(int) {
  ++g_rt;
}

// timers: a POSIX timer (SIGRTMIN+1, period from the seed) and an ITIMER_REAL itimer; both
// keep firing and keep their intervals.
int run_timers(const Args& a) {
  struct sigaction sa {};
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGALRM, &sa, nullptr);
  sa.sa_handler = on_rt;
  ::sigaction(SIGRTMIN + 1, &sa, nullptr);
  long period_ms = 50 + static_cast<long>(seed_number() % 100);
  sigevent sev{};
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGRTMIN + 1;
  timer_t t{};
  if (::timer_create(CLOCK_MONOTONIC, &sev, &t) != 0) fail_errno("timer_create");
  itimerspec its{};
  its.it_interval.tv_nsec = period_ms * k_ms;
  its.it_value.tv_nsec = period_ms * k_ms;
  ::timer_settime(t, 0, &its, nullptr);
  itimerval iv{};
  iv.it_interval.tv_usec = 200000;
  iv.it_value.tv_usec = 200000;
  ::setitimer(ITIMER_REAL, &iv, nullptr);
  log_startup("timers: POSIX timer every " + std::to_string(period_ms) + " ms, itimer 200 ms");
  serve_checks(a, "timers", [&] {
    unsigned a0 = g_alarms, r0 = g_rt;
    int64_t end = mono_ns() + 3 * k_s;
    while ((g_alarms == a0 || g_rt == r0) && mono_ns() < end) sleep_ns(20 * k_ms);
    if (g_alarms == a0) return std::string("bad the itimer stopped");
    if (g_rt == r0) return std::string("bad the POSIX timer stopped");
    itimerspec now{};
    ::timer_gettime(t, &now);
    itimerval inow{};
    ::getitimer(ITIMER_REAL, &inow);
    return "ok " + seed() + " timer_ms=" + std::to_string(now.it_interval.tv_nsec / k_ms) +
           " itimer_ms=" + std::to_string(inow.it_interval.tv_usec / 1000);
  });
}

// signals: a seed-derived set of blocked signals, standard signals pending while blocked,
// and a handler with its flags; checked with sigprocmask, sigpending and sigaction.
int run_signals(const Args& a) {
  const int candidates[] = {SIGUSR1, SIGUSR2, SIGHUP, SIGWINCH, SIGURG, SIGTTIN};
  sigset_t blocked;
  sigemptyset(&blocked);
  uint64_t s = seed_number();
  for (int i = 0; i < 6; ++i) {
    if ((s >> i) & 1) sigaddset(&blocked, candidates[i]);
  }
  sigaddset(&blocked, SIGUSR1);
  ::sigprocmask(SIG_BLOCK, &blocked, nullptr);
  ::raise(SIGUSR1);
  if (sigismember(&blocked, SIGHUP)) ::raise(SIGHUP);
  struct sigaction sa {};
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART | SA_NODEFER;
  ::sigaction(SIGUSR2, &sa, nullptr);
  log_startup("signals: blocked set, pending signals, a handler");
  serve_checks(a, "signals", [&] {
    sigset_t now, pend;
    ::sigprocmask(SIG_BLOCK, nullptr, &now);
    ::sigpending(&pend);
    std::string b, p;
    for (int sig = 1; sig < 32; ++sig) {
      if (sigismember(&now, sig)) b += std::to_string(sig) + ",";
      if (sigismember(&pend, sig)) p += std::to_string(sig) + ",";
    }
    struct sigaction cur {};
    ::sigaction(SIGUSR2, nullptr, &cur);
    bool handler = cur.sa_handler == on_alarm && (cur.sa_flags & SA_NODEFER);
    if (!handler) return std::string("bad the SIGUSR2 handler is gone");
    return "ok " + seed() + " blocked=" + b + " pending=" + p + " handler=ok";
  });
}

// signalfd: SIGRTMIN+2 blocked and queued twice with seed-derived values, read through a
// signalfd that epoll watches. The check takes the first queued signal (its value must be the
// next expected one) and queues it again, so the queue keeps two signals in rotation.
int run_signalfd(const Args& a) {
  const int sig = SIGRTMIN + 2;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (sfd < 0 || ep < 0) fail_errno("signalfd/epoll");
  epoll_event e{EPOLLIN, {.u64 = 1}};
  ::epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &e);
  int values[2] = {static_cast<int>(seed_number() % 100000), static_cast<int>(seed_number() >> 40)};
  for (int v : values) {
    if (::sigqueue(::getpid(), sig, sigval{.sival_int = v}) != 0) fail_errno("sigqueue");
  }
  unsigned next = 0;
  log_startup("signalfd: 2 queued SIGRTMIN+2, a signalfd watched by epoll");
  serve_checks(a, "signalfd", [&] {
    epoll_event out{};
    if (::epoll_wait(ep, &out, 1, 1000) != 1) return bad("epoll does not report the signalfd");
    signalfd_siginfo si{};
    if (read_some(sfd, &si, sizeof si) != static_cast<ssize_t>(sizeof si)) {
      return bad("the signalfd has no queued signal");
    }
    int want = values[next % 2];
    ::sigqueue(::getpid(), sig, sigval{.sival_int = si.ssi_int});
    if (static_cast<int>(si.ssi_signo) != sig || si.ssi_int != want) {
      return bad("signal " + std::to_string(si.ssi_signo) + " value " + std::to_string(si.ssi_int) +
                 ", expected value " + std::to_string(want));
    }
    ++next;
    sigset_t pend;
    ::sigpending(&pend);
    if (!sigismember(&pend, sig)) return bad("the requeued signal is not pending");
    return "ok " + seed() + " queued=" + std::to_string(values[0]) + "," +
           std::to_string(values[1]) + " signalfd+epoll";
  });
}

// creds: cwd deep in /tmp, a seed-derived umask and rlimits, and a child running as a
// non-root uid/gid with supplementary groups, checked through /proc.
int run_creds(const Args& a) {
  uint64_t s = seed_number();
  std::string dir = state_dir(a) + "/creds";
  ::mkdir(dir.c_str(), 0755);
  dir += "/d" + std::to_string(s % 1000);
  ::mkdir(dir.c_str(), 0755);
  if (::chdir(dir.c_str()) != 0) fail_errno("chdir");
  ::umask(static_cast<mode_t>(s % 0777) & 0077);
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = 100 + s % 500;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  uid_t uid = 1000 + static_cast<uid_t>(s % 1000);
  pid_t child = ::fork();
  if (child == 0) {
    gid_t groups[] = {static_cast<gid_t>(uid + 1), static_cast<gid_t>(uid + 2)};
    if (::setgroups(2, groups) != 0 || ::setresgid(uid, uid, uid) != 0 ||
        ::setresuid(uid, uid, uid) != 0) {
      ::_exit(1);
    }
    sleep_forever();
  }
  log_startup("creds: cwd, umask, rlimit, a child as uid " + std::to_string(uid));
  serve_checks(a, "creds", [&] {
    char cwd[512];
    if (!::getcwd(cwd, sizeof cwd)) return std::string("bad getcwd");
    mode_t m = ::umask(0);
    ::umask(m);
    rlimit r{};
    ::getrlimit(RLIMIT_NOFILE, &r);
    auto found = process_ids(child);
    if (!found) return std::string("bad the non-root child is gone");
    const std::string& ids = *found;
    return "ok " + seed() + " cwd=" + cwd + " umask=" + std::to_string(m) +
           " nofile=" + std::to_string(r.rlim_cur) + " child=" + ids;
  });
}

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
    fail(k_exit_unreadable, "mkdir " + path + ": " + errno_text(errno));
  }
}

void touch(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) ::close(fd);
}

// ---- inotify

// Reads every queued inotify event: the names created, in order; false when one
// is not an IN_CREATE on WD.
bool read_inotify(int fd, int wd, std::vector<std::string>& names) {
  alignas(inotify_event) char buf[8192];
  for (;;) {
    ssize_t n = read_some(fd, buf, sizeof buf);
    if (n < 0) return errno == EAGAIN;
    for (ssize_t off = 0; off < n;) {
      auto* ev = reinterpret_cast<inotify_event*>(buf + off);
      if (ev->wd != wd || !(ev->mask & IN_CREATE)) return false;
      names.emplace_back(ev->len ? ev->name : "");
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
    }
  }
}

// A watch for IN_CREATE on a directory in /tmp; QUEUED files created since,
// their events left unread.
[[noreturn]] void inotify_workload(const Args& a, const std::string& name, int queued) {
  const std::string dir = state_dir(a) + "/" + name + "-" + seed().substr(0, 8);
  make_dir(dir);
  int fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  int wd = fd < 0 ? -1 : ::inotify_add_watch(fd, dir.c_str(), IN_CREATE);
  if (wd < 0) fail(k_exit_unreadable, "inotify: " + errno_text(errno));
  std::vector<std::string> files;
  for (int i = 0; i < queued; ++i) {
    files.push_back("q" + std::to_string(i) + "-" + hex64(seed_number() * (i + 3)).substr(0, 6));
    touch(dir + "/" + files.back());
  }
  const std::string fresh = "new-" + seed().substr(8);
  log_startup(name + ": watch " + std::to_string(wd) + " on " + dir + ", " +
              std::to_string(queued) + " events queued");
  serve_checks(a, name, [&] {
    std::vector<std::string> got;
    if (!read_inotify(fd, wd, got)) return bad("inotify: unexpected event or read error");
    std::string list;
    for (auto& f : got) list += (list.empty() ? "" : ",") + f;
    if (got != files) return bad("queued events were [" + list + "]");
    touch(dir + "/" + fresh);
    std::vector<std::string> now;
    bool read_ok = read_inotify(fd, wd, now);
    ::unlink((dir + "/" + fresh).c_str());
    for (auto& f : files) {  // queue them again: unlinking makes no event (IN_CREATE only)
      ::unlink((dir + "/" + f).c_str());
      touch(dir + "/" + f);
    }
    if (!read_ok || now != std::vector<std::string>{fresh}) {
      return bad("creating a file made no event on watch " + std::to_string(wd));
    }
    return "ok " + seed() + " dir=" + dir + " wd=" + std::to_string(wd) + " queued=[" + list +
           "] new-file=event";
  });
}

int run_inotify(const Args& a) {
  inotify_workload(a, "inotify", 0);
}

// ---- fanotify

int run_fanotify(const Args& a) {
  const std::string dir = state_dir(a) + "/fanotify-" + seed().substr(0, 8);
  const std::string file = dir + "/watched";
  make_dir(dir);
  touch(file);
  int fd = ::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(k_exit_unreadable, "fanotify_init: " + errno_text(errno));
  if (::fanotify_mark(fd, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, file.c_str()) != 0) {
    fail(k_exit_unreadable, "fanotify_mark: " + errno_text(errno));
  }
  log_startup("fanotify: FAN_MODIFY mark on " + file);
  serve_checks(a, "fanotify", [&] {
    int w = ::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (w < 0 || !write_all(w, "x", 1)) return bad("cannot write " + file);
    ::close(w);
    alignas(fanotify_event_metadata) char buf[4096];
    ssize_t n = read_some(fd, buf, sizeof buf);
    if (n <= 0) return bad("fanotify: no event for a write to the marked file");
    std::string path;
    uint64_t mask = 0;
    auto* ev = reinterpret_cast<fanotify_event_metadata*>(buf);
    for (; FAN_EVENT_OK(ev, n); ev = FAN_EVENT_NEXT(ev, n)) {
      mask |= ev->mask;
      if (ev->fd >= 0) {
        char target[PATH_MAX];
        ssize_t len =
            ::readlink(("/proc/self/fd/" + std::to_string(ev->fd)).c_str(), target, sizeof target);
        if (len > 0) path.assign(target, static_cast<std::size_t>(len));
        ::close(ev->fd);
      }
    }
    if (!(mask & FAN_MODIFY) || path != file) return bad("fanotify event for '" + path + "'");
    return "ok " + seed() + " mark=" + file + " event=modify";
  });
}

}  // namespace

void add_fd_modes(ModeTable& t) {
  t["eventfd-epoll"] = {
      run_eventfd_epoll, {}, true, "an eventfd holding a count, watched by epoll"};
  t["timerfd"] = {run_timerfd, {}, true, "a periodic timerfd and an eventfd watched by epoll"};
  t["inotify"] = {run_inotify, {}, true, "an inotify watch on a directory in /tmp, queue empty"};
  t["fanotify"] = {run_fanotify, {}, true, "a fanotify FAN_MODIFY mark on a file in /tmp"};
  t["timers"] = {run_timers, {}, true, "a POSIX timer and an itimer, firing"};
  t["signals"] = {run_signals, {}, true, "blocked and pending signals, a handler"};
  t["signalfd"] = {
      run_signalfd, {}, true, "two queued real-time signals read through a signalfd, epoll"};
  t["creds"] = {run_creds, {}, true, "cwd, umask, rlimits and a non-root child"};
}

}  // namespace kcr::scenario
