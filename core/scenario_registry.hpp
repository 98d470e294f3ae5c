#pragma once

// The one registry of kcr's scenarios: plain data, read by the host (core/scenario.cpp turns
// each entry into a Scenario: `kcr scenarios ls`, `kcr cycle/migrate --scenario`, `kcr suite`)
// and by kcr-scenario in the guest (its mode table must implement every entry's workload and
// probe: `kcr-scenario check-registry`). Standard library only: kcr-scenario links it
// statically.

#include <span>
#include <string_view>

namespace kcr::core {

// The ways a suite runs a scenario. Bit flags, for ScenarioSpec::modes.
enum SuiteModeBit : unsigned {
  mode_cycle = 1u << 0,     // checkpoint, kill, restore in the same VM
  mode_migrate = 1u << 1,   // kcr migrate into a fresh VM
  mode_pre_dump = 1u << 2,  // kcr migrate --pre-dump 2
  mode_lazy = 1u << 3,      // kcr migrate --lazy-pages
  mode_restart = 1u << 4,   // the control: killed and started again instead of restored;
                            // its probe must notice (a probe that passes it proves nothing)
};
constexpr unsigned k_all_modes =
    mode_cycle | mode_migrate | mode_pre_dump | mode_lazy | mode_restart;

struct ScenarioSpec {
  std::string_view name;
  std::string_view description;
  // kcr-scenario's arguments for the workload and for its probe: "counter --interval-ms 100".
  std::string_view workload;
  std::string_view probe;
  // How the probe's two answers are judged: "counter" (a number that must not go back),
  // "membuf", "tcp-listen", "tcp-established" (their own lines), "same" (both "ok ...", equal).
  std::string_view judge;
  // CRIU options the scenario needs, in runc/podman words: tcp-established, ext-unix-sk,
  // file-locks, link-remap, shell-job, manage-cgroups=MODE.
  std::string_view criu;
  // The namespaces the workload runs in: the agent gives every workload pid, mnt, uts and
  // ipc (and user, cgroup with the two below); "+X" are those the program makes itself
  // inside them.
  std::string_view namespaces;
  // kcr run --uidmap (the same for gids): a user namespace of its own; empty for none.
  std::string_view uidmap = {};
  // kcr run --cgroupns private.
  bool cgroupns = false;
  unsigned modes = k_all_modes;
  // A known CRIU or kernel limit: the reason, and the modes it applies to. Such a case is an
  // expected failure; one that passes is reported as an unexpected pass.
  std::string_view xfail = {};
  unsigned xfail_modes = 0;
  // The counter's probe value to reach before the first checkpoint (so that a counter
  // restarted from zero cannot pass for one that survived).
  long long warmup = 0;
};

std::span<const ScenarioSpec> scenario_specs();

// "cycle", "migrate", "pre-dump", "lazy", "restart" for one bit; 0 for an unknown word.
std::string_view mode_word(SuiteModeBit m);
unsigned mode_from_word(std::string_view word);

}  // namespace kcr::core
