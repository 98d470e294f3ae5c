#pragma once

#include <functional>

#include "agent.pb.h"
#include "images/agent/workloads.hpp"

namespace kcr::agent {

// kcr cp, in the guest: paths resolve inside the workload's root (its mount
// namespace, through /proc/PID/root) with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS), so ".." stops at its root and no link leads out.

// Writes one entry (a file's chunk, a directory, a link) into WORKLOAD.
void copy_in(const Workload& workload, const proto::CopyInRequest& request);

// Sends PATH of WORKLOAD through SEND as CopyEntry and FileChunk parts of
// request ID; SEND returns false when the host is gone.
proto::CopyOutReply copy_out(uint64_t id, const Workload& workload,
                             const proto::CopyOutRequest& request,
                             const std::function<bool(proto::Response&)>& send);

}  // namespace kcr::agent
