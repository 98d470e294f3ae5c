#pragma once

#include <string>

namespace kcr::core {

// A fault-injection point for the tests: with KCR_FAULT="POINT[:ACTION],..."
// in the environment, reaching POINT performs ACTION: "kill" (the default)
// sends this process SIGKILL, as a dropped ssh session or an OOM kill would;
// "fail" throws kcr::Error("injected fault at POINT"); "kill-qemu=VM" kills
// that VM's QEMU with SIGKILL and goes on ("kill-qemu": every VM this kcr has
// opened), as a host OOM kill of QEMU would. Without KCR_FAULT it does
// nothing. Points are named "operation.step" (checkpoint.before-commit).
void fault_point(const char* point);

// Tells fault_point the QEMU pid of a VM this kcr opened (vm::VmSession).
void fault_register_vm(const std::string& name, int pid);

// The agent's side. KCR_AGENT_FAULT="POINT:ACTION,..." in kcr's environment at
// `kcr vm start` goes on the guest kernel's command line as kcr.fault=...; the
// agent reads it from /proc/cmdline. Each point fires once per boot, so one VM
// can carry several and stays usable after each. Actions: "exit" (the agent
// ends: as PID 1 the guest panics and QEMU exits, which is what the host sees
// when QEMU is killed), "enospc" and "eio" (the write at that point fails with
// that errno: the return value, for the caller to fail as that write would),
// "stall" (the agent stops for k_agent_stall_seconds, longer than the host's
// longest wait, 300 s of silence in a stream). Returns 0 when nothing is to fail.
int agent_fault_point(const char* point);

constexpr int k_agent_stall_seconds = 330;

// Whether spec is a valid KCR_AGENT_FAULT value (POINT:ACTION items, names of
// [a-z0-9.-], actions above); the host checks it before it reaches a kernel
// command line. Throws kcr::Error naming what is wrong.
void validate_agent_fault_spec(const std::string& spec);

}  // namespace kcr::core
