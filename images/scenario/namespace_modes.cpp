// Scenarios of namespaces, each a workload answering the generic probe (checker.hpp).

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "images/scenario/checker.hpp"
#include "images/scenario/modes.hpp"

namespace kcr::scenario {

namespace {

std::string uts_names() {
  utsname u{};
  ::uname(&u);
  return std::string(u.nodename) + "/" + u.domainname;
}

// uts-ipc: what the workload's own UTS and IPC namespaces hold: a seed-derived host and
// domain name, and a SysV semaphore set with seed-derived values.
int run_uts_ipc(const Args& a) {
  std::string host = "kcr-" + seed().substr(0, 8), domain = "d" + seed().substr(8, 8);
  if (::sethostname(host.data(), host.size()) != 0) fail_errno("sethostname");
  if (::setdomainname(domain.data(), domain.size()) != 0) fail_errno("setdomainname");
  int sem = ::semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
  if (sem < 0) fail_errno("semget");
  for (int i = 0; i < 3; ++i) {
    ::semctl(sem, i, SETVAL, static_cast<int>((seed_number() >> (i * 8)) % 200));
  }
  log_startup("uts-ipc: hostname " + host + ", a semaphore set");
  serve_checks(a, "uts-ipc", [&] {
    std::string vals;
    for (int i = 0; i < 3; ++i) {
      int v = ::semctl(sem, i, GETVAL);
      if (v < 0) return "bad semaphore set gone: " + errno_text(errno);
      vals += std::to_string(v) + ",";
    }
    return "ok " + seed() + " uts=" + uts_names() + " sem=" + vals;
  });
}

// nested-ns: children in UTS and IPC namespaces of their own (each with its own hostname)
// and one that is PID 1 of a nested PID namespace with a child of its own; each child
// answers the check files for its index, the root collects them.
int run_nested_ns(const Args& a) {
  std::string kind = a.get("kind", "uts");
  if (kind != "uts" && kind != "ipc" && kind != "pid") usage_error("--kind is uts, ipc or pid");
  int flags = kind == "ipc" ? CLONE_NEWUTS | CLONE_NEWIPC : kind == "uts" ? CLONE_NEWUTS : 0;
  std::vector<pid_t> kids;
  for (int i = 0; i < 3; ++i) {
    pid_t p = ::fork();
    if (p < 0) fail_errno("fork");
    if (p == 0) {
      if (flags && ::unshare(flags) != 0) fail_errno("unshare");
      std::string host = "ns" + std::to_string(i) + "-" + seed().substr(0, 6);
      if (flags) ::sethostname(host.data(), host.size());
      bool pidns = kind == "pid" && i == 2;
      if (pidns) {
        if (::unshare(CLONE_NEWPID) != 0) fail_errno("unshare pid");
        if (::fork() != 0) sleep_forever();  // the nested namespace's PID 1 answers
      }
      pid_t inner = 0;
      if (pidns) {
        inner = ::fork();  // a child inside the nested PID namespace
        if (inner == 0) sleep_forever();
      }
      std::string name = "nested-ns-" + std::to_string(i);
      serve_checks(a, name, [=] {
        return "ok host=" + uts_names() + " pid=" + std::to_string(::getpid()) +
               " inner=" + std::to_string(inner);
      });
    }
    kids.push_back(p);
  }
  log_startup("nested-ns: 3 children in their own UTS/IPC namespaces, one in a nested PID ns");
  serve_checks(a, "nested-ns", [&] {
    std::string all;
    for (int i = 0; i < 3; ++i) {
      // Ask the child as the probe would: a request file, its answer in the report file.
      std::string seq = std::to_string(static_cast<uint64_t>(mono_ns()) >> 1);
      std::string base = state_dir(a) + "/nested-ns-" + std::to_string(i);
      write_file_atomic(base + ".request", seq + "\n", "r");
      int64_t end = mono_ns() + 5 * k_s;
      std::string got;
      while (mono_ns() < end) {
        auto rep = read_small_file(base + ".report");
        if (rep && first_line(*rep).starts_with(seq + " ")) {
          got = first_line(*rep).substr(seq.size() + 1);
          break;
        }
        sleep_ns(20 * k_ms);
      }
      if (!got.starts_with("ok")) return "bad child " + std::to_string(i) + " does not answer";
      all += " [" + got.substr(3) + "]";
    }
    return "ok " + seed() + all;
  });
}

// /proc/self/uid_map (or gid_map) as "C:H:S,C:H:S", its columns without their padding.
std::string id_map(const char* which) {
  auto text = read_small_file(std::string("/proc/self/") + which);
  if (!text) return "(unreadable)";
  std::istringstream in(*text);
  std::string out, c, h, n;
  while (in >> c >> h >> n) out += (out.empty() ? "" : ",") + c + ":" + h + ":" + n;
  return out;
}

// userns: run by the agent in a user namespace of its own (the registry gives the maps): root
// there, a child running as uid/gid 1000 with a supplementary group, and a file in /tmp owned
// by 1000:1000. The check reads the maps, the ids the child and the file have as seen inside,
// and the workload's cgroup as its cgroup namespace shows it.
int run_userns(const Args& a) {
  if (::getuid() != 0) fail(k_exit_unreadable, "userns: not root in its user namespace");
  const std::string host_id = a.get("host-id", "0");
  if (!id_map("uid_map").starts_with("0:" + host_id + ":")) {
    fail(k_exit_unreadable, "userns: uid_map is " + id_map("uid_map") + ", not root as host uid " +
                                host_id + " (run it with kcr run --uidmap 0:" + host_id + ":N)");
  }
  const std::string file = state_dir(a) + "/userns-" + seed().substr(0, 8);
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0 || ::fchown(fd, 1000, 1000) != 0) fail_errno("create a file owned by 1000 in " + file);
  ::close(fd);
  pid_t child = ::fork();
  if (child < 0) fail_errno("fork");
  if (child == 0) {
    gid_t groups[] = {1001};
    if (::setgroups(1, groups) != 0 || ::setresgid(1000, 1000, 1000) != 0 ||
        ::setresuid(1000, 1000, 1000) != 0) {
      ::_exit(1);
    }
    sleep_forever();
  }
  log_startup("userns: uid_map " + id_map("uid_map") + ", a child as 1000, " + file);
  serve_checks(a, "userns", [&] {
    auto found = process_ids(child);
    if (!found) return std::string("bad the child running as uid 1000 is gone");
    const std::string& ids = *found;
    struct stat fs {};
    if (::stat(file.c_str(), &fs) != 0) return "bad " + file + " is gone";
    auto cg = read_small_file("/proc/self/cgroup");
    return "ok " + seed() + " uid_map=" + id_map("uid_map") + " gid_map=" + id_map("gid_map") +
           " uid=" + std::to_string(::getuid()) + " child=" + ids +
           " file=" + std::to_string(fs.st_uid) + ":" + std::to_string(fs.st_gid) +
           " cgroup=" + (cg ? first_line(*cg) : std::string("?"));
  });
}

// netns: a child in a network namespace of its own, its loopback up, a TCP listener on
// 127.0.0.1:PORT there. The child answers the check: it connects to its own listener through
// that loopback and reads back what it sent.
int run_netns(const Args& a) {
  const auto port = static_cast<uint16_t>(a.number("port", 9393, 1, 65535));
  pid_t child = ::fork();
  if (child < 0) fail_errno("fork");
  if (child > 0) {
    log_startup("netns: child " + std::to_string(child) + " in its own network namespace");
    sleep_forever();
  }
  if (::unshare(CLONE_NEWNET) != 0) fail_errno("unshare a network namespace");
  int ctl = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ctl < 0 || ::ioctl(ctl, SIOCGIFFLAGS, &ifr) != 0) fail_errno("read lo's flags");
  ifr.ifr_flags |= IFF_UP;
  if (::ioctl(ctl, SIOCSIFFLAGS, &ifr) != 0) fail_errno("bring lo up");
  ::close(ctl);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 4) != 0) {
    fail_errno("listen on 127.0.0.1:" + std::to_string(port) + " in the network namespace");
  }
  serve_checks(a, "netns", [&] {
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      if (c >= 0) ::close(c);
      return "bad cannot connect to 127.0.0.1:" + std::to_string(port) + ": " + errno_text(errno);
    }
    int s = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    const std::string token = seed();
    std::string got(token.size(), '\0');
    bool ok = s >= 0 && send_all(c, token.data(), token.size()) &&
              ::recv(s, got.data(), got.size(), MSG_WAITALL) == static_cast<ssize_t>(got.size());
    ::close(c);
    if (s >= 0) ::close(s);
    if (!ok || got != token) return std::string("bad the listener does not carry data");
    return "ok " + seed() + " lo=up listen=127.0.0.1:" + std::to_string(port);
  });
}

}  // namespace

void add_namespace_modes(ModeTable& t) {
  t["netns"] = {run_netns,
                {"port"},
                true,
                "[--port 9393]  a child in its own network namespace, a listener on its "
                "loopback"};
  t["userns"] = {run_userns,
                 {"host-id"},
                 true,
                 "[--host-id 0]  in its own user namespace, root as host uid HOST_ID (kcr run "
                 "--uidmap 0:HOST_ID:N): a child as uid 1000, a file owned by 1000"};
  t["uts-ipc"] = {run_uts_ipc, {}, true, "a hostname and a semaphore set in its own namespaces"};
  t["nested-ns"] = {
      run_nested_ns,
      {"kind"},
      true,
      "[--kind uts|ipc|pid]  3 children in UTS (ipc: and IPC) namespaces of their own; "
      "with pid, one is PID 1 of a nested PID namespace with a child"};
}

}  // namespace kcr::scenario
