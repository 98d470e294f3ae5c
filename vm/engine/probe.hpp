#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "agent.pb.h"
#include "core/scenario.hpp"
#include "vm/vm.hpp"

namespace kcr::engine {

// Starts scenario S's workload (named after it) in the session's VM.
void start_scenario(vm::VmSession& session, const core::Scenario& s);

// Runs the scenario's probe inside the workload; nullopt when it fails, and then FAILURE (if
// given) says how: "(probe failed, exit 3: bad REASON)".
std::optional<std::string> run_probe(vm::VmSession& session, const std::string& workload,
                                     const core::Scenario& s, std::string* failure = nullptr);

// Waits up to 60 s until the probe answers (and, for a counter, reaches
// WARMUP); returns its output. Throws kcr::Error when it never does.
std::string await_probe(vm::VmSession& session, const std::string& workload,
                        const core::Scenario& s, long long warmup);

// What a long run watches for leaks: the agent's open fds, the guest's
// process count and this kcr's resident memory.
struct Health {
  uint32_t agent_fds = 0;
  uint32_t guest_processes = 0;
  uint64_t host_rss_kib = 0;
};
Health health(vm::VmSession& session);

// The workload called NAME in the session's VM, if any.
std::optional<proto::Workload> find_workload(vm::VmSession& session, const std::string& name);

// The running workload NAME; throws kcr::Error naming the VM otherwise.
proto::Workload running_workload(vm::VmSession& session, const std::string& name);

// Probes a restored workload until it shows state that survived BEFORE, for
// up to SETTLE (some state shows only after the workload ran a moment, data
// over a restored connection say). Without a scenario, survival means the
// workload runs.
core::ProbeVerdict judge_restored(vm::VmSession& session, const std::string& workload,
                                  const core::Scenario* scenario, const std::string& before,
                                  std::chrono::milliseconds settle = std::chrono::seconds(15));

}  // namespace kcr::engine
