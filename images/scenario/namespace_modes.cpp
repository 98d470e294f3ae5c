// Scenarios of namespaces, each a workload answering the generic probe (checker.hpp).

#include <sched.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace

void add_namespace_modes(ModeTable& t) {
  t["uts-ipc"] = {run_uts_ipc, {}, true, "a hostname and a semaphore set in its own namespaces"};
  t["nested-ns"] = {
      run_nested_ns,
      {"kind"},
      true,
      "[--kind uts|ipc|pid]  3 children in UTS (ipc: and IPC) namespaces of their own; "
      "with pid, one is PID 1 of a nested PID namespace with a child"};
}

}  // namespace kcr::scenario
