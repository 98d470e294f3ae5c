#pragma once

#include "agent.pb.h"
#include "images/agent/workloads.hpp"

namespace kcr::agent {

// Runs request.argv inside the running workload's IPC, UTS, mount and PID namespaces, waits for it
// (killing it at the timeout) and returns its status and captured output; throws kcr::Error when
// it cannot be started there.
proto::ExecReply exec_in_workload(const Workload& workload, const proto::ExecRequest& request);

}  // namespace kcr::agent
