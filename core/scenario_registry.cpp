#include "core/scenario_registry.hpp"

#include <array>

namespace kcr::core {

namespace {

constexpr std::string_view k_agent_ns = "pid mnt uts ipc";

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
    // --- file descriptors, timers, signals and credentials
    // --- namespaces, cgroups and mounts
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
