// Scenarios of process and IPC state, each a workload answering the generic probe
// (checker.hpp): its check reads the state back through the kernel object itself and answers
// "ok SEED what-it-saw", so a lost object fails the check and a restarted workload (another
// seed, other data) fails the comparison.

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "images/scenario/checker.hpp"
#include "images/scenario/modes.hpp"
#include "images/scenario/scenario.hpp"

namespace kcr::scenario {

namespace {

// Reads exactly N bytes (blocking), retrying on EINTR; false on EOF or an error.
bool read_exact(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// pipes: a pipe holding 4 KiB nobody has read (the kernel's buffer must survive), and a child
// that echoes each line the parent sends it over a second pair of pipes.
int run_pipes(const Args& a) {
  int held[2], to_child[2], from_child[2];
  if (::pipe2(held, O_CLOEXEC) != 0 || ::pipe2(to_child, O_CLOEXEC) != 0 ||
      ::pipe2(from_child, O_CLOEXEC) != 0) {
    fail(k_exit_unreadable, "pipe: " + errno_text(errno));
  }
  std::string data(4096, '\0');
  fill_pattern(data.data(), data.size(), seed_number());
  if (!write_all(held[1], data.data(), data.size())) fail(k_exit_unreadable, "write held pipe");
  pid_t child = ::fork();
  if (child < 0) fail(k_exit_unreadable, "fork: " + errno_text(errno));
  if (child == 0) {
    char c;
    while (read_exact(to_child[0], &c, 1)) {
      if (!write_all(from_child[1], &c, 1)) break;
    }
    ::_exit(0);
  }
  log_startup("pipes: 4096 bytes held, echo child " + std::to_string(child));
  serve_checks(a, "pipes", [&] {
    std::string got(data.size(), '\0');
    if (!read_exact(held[0], got.data(), got.size())) return std::string("bad held pipe empty");
    bool same = got == data;
    write_all(held[1], got.data(), got.size());
    if (!same) return std::string("bad held pipe data changed");
    std::string token = hex64(seed_number() ^ static_cast<uint64_t>(mono_ns()));
    std::string echo(token.size(), '\0');
    if (!write_all(to_child[1], token.data(), token.size()) ||
        !read_exact(from_child[0], echo.data(), echo.size()) || echo != token) {
      return std::string("bad echo child does not answer");
    }
    return "ok " + seed() + " held=" + hex64(checksum(got.data(), got.size())) + " echo=ok";
  });
}

// threads: 16 threads, each keeping a seed-derived value in a local variable of its own
// stack; a check asks every thread to report it (through a shared slot it answers).
int run_threads(const Args& a) {
  constexpr int n = 16;
  std::atomic<uint64_t> asked{0};
  std::atomic<uint64_t> answers[n] = {};
  std::atomic<uint64_t> answered_round[n] = {};
  for (int i = 0; i < n; ++i) {
    std::thread([i, &asked, &answers, &answered_round] {
      uint64_t mine = seed_number() * static_cast<uint64_t>(i + 3);  // on this thread's stack
      for (;;) {
        uint64_t r = asked.load();
        if (answered_round[i].load() != r) {
          answers[i] = mine;
          answered_round[i] = r;
        }
        sleep_ns(10 * k_ms);
      }
    }).detach();
  }
  log_startup("threads: 16 threads");
  serve_checks(a, "threads", [&] {
    uint64_t r = ++asked;
    int64_t end = mono_ns() + 5 * k_s;
    uint64_t sum = 0;
    for (int i = 0; i < n; ++i) {
      while (answered_round[i].load() != r && mono_ns() < end) sleep_ns(5 * k_ms);
      if (answered_round[i].load() != r) return "bad thread " + std::to_string(i) + " is gone";
      sum = sum * 31 + answers[i].load();
    }
    return "ok " + seed() + " threads=16 state=" + hex64(sum);
  });
}

// fork-tree: children and a grandchild that sleep, and a zombie child nobody reaped; the root
// checks the tree through /proc (pids inside its PID namespace are stable across restore).
int run_fork_tree(const Args& a) {
  std::vector<pid_t> kids;
  for (int i = 0; i < 3; ++i) {
    pid_t p = ::fork();
    if (p < 0) fail_errno("fork");
    if (p == 0) {
      if (i == 0 && ::fork() == 0) sleep_forever();  // the grandchild
      sleep_forever();
    }
    kids.push_back(p);
  }
  pid_t zombie = ::fork();
  if (zombie == 0) ::_exit(static_cast<int>(seed_number() % 100) + 1);
  if (zombie < 0) fail_errno("fork");
  log_startup("fork-tree: 3 children, a grandchild, a zombie");
  serve_checks(a, "fork-tree", [&] {
    std::string seen;
    for (pid_t k : kids) {
      auto st = read_small_file("/proc/" + std::to_string(k) + "/stat");
      if (!st) return "bad child " + std::to_string(k) + " is gone";
      seen += std::to_string(k) + ",";
    }
    auto children = read_small_file("/proc/" + std::to_string(kids[0]) + "/task/" +
                                    std::to_string(kids[0]) + "/children");
    if (!children || first_line(*children).empty()) return std::string("bad grandchild gone");
    auto zs = read_small_file("/proc/" + std::to_string(zombie) + "/stat");
    if (!zs || zs->find(") Z ") == std::string::npos) return std::string("bad zombie gone");
    siginfo_t si{};
    if (::waitid(P_PID, static_cast<id_t>(zombie), &si, WEXITED | WNOWAIT) != 0) {
      return "bad waitid: " + errno_text(errno);
    }
    return "ok " + seed() + " tree=" + seen + " zombie=" + std::to_string(zombie) +
           " status=" + std::to_string(si.si_status);
  });
}

// Reads what is queued on FD (non-blocking) and sends it back with SEND; its checksum.
std::string drain_and_requeue(int rfd, int wfd, bool dgram) {
  std::string all;
  char buf[8192];
  std::vector<std::string> msgs;
  for (;;) {
    ssize_t r = ::recv(rfd, buf, sizeof buf, MSG_DONTWAIT);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    msgs.emplace_back(buf, static_cast<std::size_t>(r));
    all.append(buf, static_cast<std::size_t>(r));
  }
  for (const auto& m : msgs) {
    if (dgram)
      ::send(wfd, m.data(), m.size(), MSG_NOSIGNAL);
    else
      send_all(wfd, m.data(), m.size());
  }
  return std::to_string(msgs.size()) + ":" + sum_of(all);
}

// unix-sockets: a stream and a datagram socketpair, each with seed-derived data queued and
// unread; the check reads it back and queues it again.
int run_unix_sockets(const Args& a) {
  int st[2], dg[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, st) != 0) fail_errno("socketpair");
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, dg) != 0) fail_errno("socketpair");
  std::string s1 = seeded(3000, 1);
  send_all(st[0], s1.data(), s1.size());
  for (uint64_t i = 0; i < 3; ++i) {
    std::string m = seeded(200 + i * 50, 10 + i);
    ::send(dg[0], m.data(), m.size(), MSG_NOSIGNAL);
  }
  log_startup("unix-sockets: stream and datagram pairs with data queued");
  serve_checks(a, "unix-sockets", [&] {
    std::string a1 = drain_and_requeue(st[1], st[0], false);
    std::string a2 = drain_and_requeue(dg[1], dg[0], true);
    return "ok " + seed() + " stream=" + a1 + " dgram=" + a2;
  });
}

// udp: a UDP socket bound on 127.0.0.1 with datagrams it sent itself, unread.
int run_udp(const Args& a) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail_errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(a.number("port", 9191, 1, 65535)));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail_errno("bind");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail_errno("connect");
  for (uint64_t i = 0; i < 3; ++i) {
    std::string m = seeded(100 + i * 10, 20 + i);
    ::send(fd, m.data(), m.size(), 0);
  }
  log_startup("udp: 3 datagrams queued on 127.0.0.1");
  serve_checks(a, "udp",
               [&] { return "ok " + seed() + " queued=" + drain_and_requeue(fd, fd, true); });
}

// file-locks: an flock(2) lock and a POSIX record lock held on files in /tmp; a forked child
// must find both taken.
int run_file_locks(const Args& a) {
  std::string dir = state_dir(a);
  int f1 = ::open((dir + "/flock.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  int f2 = ::open((dir + "/posix.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (f1 < 0 || f2 < 0) fail_errno("open lock file");
  if (::flock(f1, LOCK_EX) != 0) fail_errno("flock");
  off_t start = static_cast<off_t>(seed_number() % 1000);
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = 10;
  if (::fcntl(f2, F_SETLK, &fl) != 0) fail_errno("fcntl F_SETLK");
  log_startup("file-locks: flock and a POSIX lock held");
  serve_checks(a, "file-locks", [&] {
    int pipefd[2];
    if (::pipe(pipefd) != 0) return std::string("bad pipe");
    pid_t p = ::fork();
    if (p == 0) {
      std::string r;
      int g1 = ::open((dir + "/flock.lock").c_str(), O_RDWR);
      r += (::flock(g1, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) ? "flock=held"
                                                                         : "flock=FREE";
      int g2 = ::open((dir + "/posix.lock").c_str(), O_RDWR);
      struct flock q {};
      q.l_type = F_WRLCK;
      q.l_whence = SEEK_SET;
      q.l_start = 0;
      q.l_len = 0;
      ::fcntl(g2, F_GETLK, &q);
      r += q.l_type == F_WRLCK
               ? " posix=held@" + std::to_string(q.l_start) + "+" + std::to_string(q.l_len)
               : std::string(" posix=FREE");
      write_all(pipefd[1], r.data(), r.size());
      ::_exit(0);
    }
    ::close(pipefd[1]);
    char buf[256];
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    ::close(pipefd[0]);
    ::waitpid(p, nullptr, 0);
    std::string seen = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
    if (seen.find("FREE") != std::string::npos || seen.empty()) return "bad locks lost: " + seen;
    return "ok " + seed() + " " + seen;
  });
}

// unlinked-file: a file written with seed-derived data, then unlinked while open.
int run_unlinked_file(const Args& a) {
  std::string path = state_dir(a) + "/unlinked.data";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail_errno("open");
  std::string d = seeded(64 * 1024, 3);
  write_all(fd, d.data(), d.size());
  ::unlink(path.c_str());
  log_startup("unlinked-file: 64 KiB in an unlinked open file");
  serve_checks(a, "unlinked-file", [&] {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return std::string("bad fstat");
    std::string got(d.size(), '\0');
    if (::pread(fd, got.data(), got.size(), 0) != static_cast<ssize_t>(got.size())) {
      return std::string("bad short read");
    }
    return "ok " + seed() + " nlink=" + std::to_string(st.st_nlink) +
           " size=" + std::to_string(st.st_size) + " data=" + sum_of(got);
  });
}

// memfd: a memfd with seed-derived data, mapped shared; read through both.
int run_memfd(const Args& a) {
  int fd = ::memfd_create("kcr-memfd", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) fail_errno("memfd_create");
  std::string d = seeded(256 * 1024, 4);
  write_all(fd, d.data(), d.size());
  ::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
  void* m = ::mmap(nullptr, d.size(), PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) fail_errno("mmap");
  log_startup("memfd: 256 KiB, sealed, mapped");
  serve_checks(a, "memfd", [&] {
    std::string got(d.size(), '\0');
    if (::pread(fd, got.data(), got.size(), 0) != static_cast<ssize_t>(got.size())) {
      return std::string("bad short read");
    }
    std::string mapped(static_cast<const char*>(m), d.size());
    if (mapped != got) return std::string("bad mapping and file differ");
    return "ok " + seed() + " seals=" + std::to_string(::fcntl(fd, F_GET_SEALS)) +
           " data=" + sum_of(got);
  });
}

// sysv-ipc: SysV shared memory, a SysV message queue with messages queued, and POSIX shared
// memory in /dev/shm, all in the workload's IPC namespace.
int run_sysv_ipc(const Args& a) {
  std::string d = seeded(64 * 1024, 5);
  int shm = ::shmget(IPC_PRIVATE, d.size(), IPC_CREAT | 0600);
  if (shm < 0) fail_errno("shmget");
  void* p = ::shmat(shm, nullptr, 0);
  if (p == reinterpret_cast<void*>(-1)) fail_errno("shmat");
  std::memcpy(p, d.data(), d.size());
  int q = ::msgget(IPC_PRIVATE, IPC_CREAT | 0600);
  if (q < 0) fail_errno("msgget");
  struct Msg {
    long type;
    char text[64];
  };
  for (int i = 0; i < 3; ++i) {
    Msg m{i + 1, {}};
    std::string t = hex64(seed_number() + static_cast<uint64_t>(i));
    std::memcpy(m.text, t.data(), t.size());
    ::msgsnd(q, &m, sizeof m.text, 0);
  }
  int pfd = ::open("/dev/shm/kcr-posix-shm", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (pfd < 0) fail_errno("open /dev/shm");
  std::string pd = seeded(16 * 1024, 6);
  write_all(pfd, pd.data(), pd.size());
  void* pm = ::mmap(nullptr, pd.size(), PROT_READ | PROT_WRITE, MAP_SHARED, pfd, 0);
  if (pm == MAP_FAILED) fail_errno("mmap");
  log_startup("sysv-ipc: shm segment, message queue, POSIX shm");
  serve_checks(a, "sysv-ipc", [&] {
    std::string shm_now(static_cast<const char*>(p), d.size());
    std::string msgs;
    std::vector<Msg> got;
    Msg m{};
    while (::msgrcv(q, &m, sizeof m.text, 0, IPC_NOWAIT) >= 0) got.push_back(m);
    for (auto& g : got) {
      msgs += std::to_string(g.type) + ":" + std::string(g.text, 16) + ",";
      ::msgsnd(q, &g, sizeof g.text, 0);
    }
    std::string pnow(static_cast<const char*>(pm), pd.size());
    return "ok " + seed() + " shm=" + sum_of(shm_now) + " msgs=" + msgs + " posix=" + sum_of(pnow);
  });
}

}  // namespace

void add_process_modes(ModeTable& t) {
  t["pipes"] = {run_pipes,
                {},
                true,
                "a pipe holding 4 KiB unread and a child echoing over two more (probe --name "
                "pipes)"};
  t["threads"] = {run_threads, {}, true, "16 threads with state on their stacks"};
  t["fork-tree"] = {run_fork_tree, {}, true, "children, a grandchild and an unreaped zombie"};
  t["unix-sockets"] = {
      run_unix_sockets, {}, true, "UNIX stream and datagram socketpairs with data queued"};
  t["udp"] = {run_udp, {"port"}, true, "[--port 9191]  a bound UDP socket with datagrams queued"};
  t["file-locks"] = {run_file_locks, {}, true, "an flock and a POSIX record lock held"};
  t["unlinked-file"] = {run_unlinked_file, {}, true, "an open file that was unlinked"};
  t["memfd"] = {run_memfd, {}, true, "a sealed memfd, mapped"};
  t["sysv-ipc"] = {
      run_sysv_ipc, {}, true, "SysV shared memory and message queue, POSIX shared memory"};
}

}  // namespace kcr::scenario
