#include "core/scenario_registry.hpp"

#include <array>

namespace kcr::core {

namespace {

constexpr std::string_view k_agent_ns = "pid mnt uts ipc";

constexpr std::string_view k_userns_lazy =
    "the kernel lets a process in a user namespace open a userfaultfd only with sysctl "
    "vm.unprivileged_userfaultfd=1 (off by default; CRIU 3.17 does not ask for "
    "UFFD_USER_MODE_ONLY): \"Error (criu/uffd.c:314): uffd: Unable to open an userfaultfd "
    "descriptor: Operation not permitted\"";

// Each scenario once. Its workload and probe are modes of kcr-scenario (images/scenario/);
// "probe --name NAME" is the generic probe: it asks the workload to check its own state and
// prints the workload's answer ("ok FINGERPRINT" or "bad REASON"). A workload derives its
// state from a random seed at start, so a restarted workload answers differently.
constexpr ScenarioSpec k_specs[] = {
    // --- the first four: their own probes and judges
    {.name = "counter",
     .description = "a counter kept in memory, written to /tmp/counter 10 times a second",
     .workload = "counter --interval-ms 100",
     .probe = "counter-probe",
     .judge = "counter",
     .criu = "",
     .namespaces = k_agent_ns,
     .warmup = 30},
    {.name = "membuf",
     .description = "a 10 MB buffer of random bytes whose checksum must not change",
     .workload = "membuf --size 10M",
     .probe = "membuf-probe",
     .judge = "membuf",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "tcp-listen",
     .description = "a listening TCP socket on 127.0.0.1:8080 that must still answer",
     .workload = "tcp-listen --port 8080",
     .probe = "tcp-probe --port 8080",
     .judge = "tcp-listen",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "tcp-established",
     .description = "an established loopback TCP connection carrying a sequence that must not "
                    "break",
     .workload = "tcp-pair --port 9090",
     .probe = "tcp-pair-probe",
     .judge = "tcp-established",
     .criu = "tcp-established",
     .namespaces = k_agent_ns},
    // --- process and IPC state
    {.name = "pipes",
     .description = "a pipe holding 4 KiB nobody read, and a child echoing over two more",
     .workload = "pipes",
     .probe = "probe --name pipes",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "threads",
     .description = "16 threads, each with state on its own stack",
     .workload = "threads",
     .probe = "probe --name threads",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "fork-tree",
     .description = "a process tree with a grandchild and a zombie nobody reaped",
     .workload = "fork-tree",
     .probe = "probe --name fork-tree",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "unix-sockets",
     .description = "UNIX stream and datagram socket pairs with data queued, unread",
     .workload = "unix-sockets",
     .probe = "probe --name unix-sockets",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "udp",
     .description = "a UDP socket on 127.0.0.1 with datagrams queued, unread",
     .workload = "udp --port 9191",
     .probe = "probe --name udp",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns,
     .xfail = "CRIU 3.17 does not carry an inet UDP socket's receive queue: the socket is "
              "restored, its queued datagrams are gone (queued=3 before, queued=0 after)",
     .xfail_modes = mode_cycle | mode_migrate | mode_pre_dump | mode_lazy},
    {.name = "file-locks",
     .description = "an flock(2) lock and a POSIX record lock, held",
     .workload = "file-locks",
     .probe = "probe --name file-locks",
     .judge = "same",
     .criu = "file-locks",
     .namespaces = k_agent_ns},
    {.name = "unlinked-file",
     .description = "an open file that was unlinked, with 64 KiB in it",
     .workload = "unlinked-file",
     .probe = "probe --name unlinked-file",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "memfd",
     .description = "a sealed memfd with 256 KiB, mapped shared",
     .workload = "memfd",
     .probe = "probe --name memfd",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "mmap-file",
     .description = "a file mapped shared and, with pages copied on write, private",
     .workload = "mmap-file",
     .probe = "probe --name mmap-file",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "sysv-ipc",
     .description = "SysV shared memory and a message queue with messages, POSIX shared memory",
     .workload = "sysv-ipc",
     .probe = "probe --name sysv-ipc",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    // --- file descriptors, timers, signals and credentials
    {.name = "eventfd-epoll",
     .description = "an eventfd holding a count, watched by epoll",
     .workload = "eventfd-epoll",
     .probe = "probe --name eventfd-epoll",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "timerfd",
     .description = "a periodic timerfd and an eventfd, watched by epoll",
     .workload = "timerfd",
     .probe = "probe --name timerfd",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns,
     .xfail = "CRIU 3.17.1 restores a periodic timerfd disarmed (timerfd_gettime after the "
              "restore: value 0, interval 100 ms): it never fires again",
     .xfail_modes = mode_cycle | mode_migrate | mode_pre_dump | mode_lazy},
    {.name = "signalfd",
     .description = "two queued real-time signals with values, read through a signalfd that "
                    "epoll watches",
     .workload = "signalfd",
     .probe = "probe --name signalfd",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "inotify",
     .description = "an inotify watch on a directory that must still report new files",
     .workload = "inotify",
     .probe = "probe --name inotify",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "fanotify",
     .description = "a fanotify mark on a file that must still report writes",
     .workload = "fanotify",
     .probe = "probe --name fanotify",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "timers",
     .description = "a POSIX timer and an itimer that keep firing at their intervals",
     .workload = "timers",
     .probe = "probe --name timers",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "signals",
     .description = "blocked signals, signals pending while blocked, a handler with its flags",
     .workload = "signals",
     .probe = "probe --name signals",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "creds",
     .description = "cwd, umask and rlimits, and a child running as a non-root uid with groups",
     .workload = "creds",
     .probe = "probe --name creds",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    // --- namespaces, cgroups and mounts
    {.name = "uts-ipc",
     .description = "the workload's own hostname, domain name and a SysV semaphore set",
     .workload = "uts-ipc",
     .probe = "probe --name uts-ipc",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns},
    {.name = "netns",
     .description = "a child in a network namespace of its own, a TCP listener on its loopback",
     .workload = "netns --port 9393",
     .probe = "probe --name netns",
     .judge = "same",
     .criu = "",
     .namespaces = "pid mnt uts ipc +net",
     .xfail = "CRIU 3.17.1 cannot dump a network namespace in this guest: the kernel refuses "
              "its netlink dump of the namespace's links, \"Error (criu/libnetlink.c:54): -22 "
              "reported by netlink: Invalid argument\"",
     .xfail_modes = mode_cycle | mode_migrate | mode_pre_dump | mode_lazy},
    {.name = "userns",
     .description = "a user namespace mapping root to host root (0:0:65536) and a cgroup "
                    "namespace: a child as uid 1000, a file owned by 1000",
     .workload = "userns",
     .probe = "probe --name userns",
     .judge = "same",
     .criu = "",
     .namespaces = "user pid mnt uts ipc cgroup",
     .uidmap = "0:0:65536",
     .cgroupns = true,
     .xfail = k_userns_lazy,
     .xfail_modes = mode_lazy},
    {.name = "userns-hostid",
     .description = "the same with root mapped to host uid 100000: runc#5121's case, whose "
                    "restore fails in cgroup namespace setup on CRIU 4.2 (criu#2902); a pass "
                    "says this CRIU does not have that bug",
     .workload = "userns --host-id 100000",
     .probe = "probe --name userns",
     .judge = "same",
     .criu = "",
     .namespaces = "user pid mnt uts ipc cgroup",
     .uidmap = "0:100000:65536",
     .cgroupns = true,
     .xfail = k_userns_lazy,
     .xfail_modes = mode_lazy},
    {.name = "nested-uts",
     .description = "3 children in UTS namespaces of their own, each with its hostname",
     .workload = "nested-ns --kind uts",
     .probe = "probe --name nested-ns",
     .judge = "same",
     .criu = "",
     .namespaces = "pid mnt uts ipc +uts",
     .xfail = "CRIU 3.17 cannot dump a UTS namespace nested in the workload's: \"Error "
              "(criu/namespaces.c:463): Can't dump nested uts namespace\"",
     .xfail_modes = mode_cycle | mode_migrate | mode_pre_dump | mode_lazy},
    {.name = "nested-ipc",
     .description = "3 children in UTS and IPC namespaces of their own",
     .workload = "nested-ns --kind ipc",
     .probe = "probe --name nested-ns",
     .judge = "same",
     .criu = "",
     .namespaces = "pid mnt uts ipc +uts +ipc",
     .xfail = "CRIU 3.17 cannot dump an IPC namespace nested in the workload's: \"Error "
              "(criu/namespaces.c:463): Can't dump nested ipc namespace\"",
     .xfail_modes = mode_cycle | mode_migrate | mode_pre_dump | mode_lazy},
    {.name = "nested-pidns",
     .description = "children, one PID 1 of a nested PID namespace with a child of its own",
     .workload = "nested-ns --kind pid",
     .probe = "probe --name nested-ns",
     .judge = "same",
     .criu = "",
     .namespaces = "pid mnt uts ipc +pid",
     .xfail = "CRIU 3.17 cannot dump a PID namespace nested in the workload's: \"Error "
              "(criu/namespaces.c:463): Can't dump nested pid namespace\"",
     .xfail_modes = mode_cycle | mode_migrate | mode_pre_dump | mode_lazy},
    {.name = "cgroup-v2",
     .description = "the workload in a cgroup v2 group of its own, with memory.max and pids.max",
     .workload = "cgroup-v2",
     .probe = "probe --name cgroup-v2",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns,
     .xfail = "CRIU 3.17 restores cgroup v2 membership but no cgroup v2 property: in a fresh VM "
              "it recreates the group without its memory.max and pids.max (it dumps cgroup v1 "
              "properties only; criu#1110). In place the group survives, so cycle passes",
     .xfail_modes = mode_migrate | mode_pre_dump | mode_lazy},
    {.name = "overlayfs",
     .description = "an overlayfs mount in /tmp with a lower file open, one written, one deleted",
     .workload = "overlayfs",
     .probe = "probe --name overlayfs",
     .judge = "same",
     .criu = "",
     .namespaces = k_agent_ns,
     .xfail = "CRIU 3.17 mounts the overlay again with its lowerdir/upperdir/workdir options as "
              "dumped, paths of the workload's view that do not exist in its mount yard: "
              "\"Error (criu/mount.c:2217): mnt: Unable to mount overlay ...: No such file or "
              "directory\"",
     .xfail_modes = mode_cycle | mode_migrate | mode_pre_dump | mode_lazy},
};

}  // namespace

std::span<const ScenarioSpec> scenario_specs() {
  return k_specs;
}

std::string_view mode_word(SuiteModeBit m) {
  switch (m) {
    case mode_cycle:
      return "cycle";
    case mode_migrate:
      return "migrate";
    case mode_pre_dump:
      return "pre-dump";
    case mode_lazy:
      return "lazy";
    case mode_restart:
      return "restart";
  }
  return {};
}

unsigned mode_from_word(std::string_view word) {
  for (auto m : {mode_cycle, mode_migrate, mode_pre_dump, mode_lazy, mode_restart}) {
    if (mode_word(m) == word) return m;
  }
  return 0;
}

}  // namespace kcr::core
