#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kcr::agent {

// A workload's cgroup v2 limits (kcr run --memory, --pids-limit); 0: none.
struct Limits {
  uint64_t memory_max = 0;
  uint64_t pids_max = 0;
  bool any() const { return memory_max || pids_max; }
};

// The cgroup of workload NAME, as a path under /sys/fs/cgroup ("/kcr/NAME").
std::string workload_cgroup(const std::string& name);

// Makes the workload's cgroup (the memory and pids controllers enabled above
// it) with LIMITS written into it; throws kcr::Error naming the file.
void make_limited_cgroup(const std::string& cgroup, const Limits& limits);

// The limits travel inside the checkpoint as images/kcr-limits.txt (CRIU
// ignores a file it did not write): CRIU 3.17 restores a task's cgroup v2
// membership but none of the group's properties.
inline constexpr const char* k_limits_file = "kcr-limits.txt";
void write_limits_file(const std::string& images_dir, const Limits& limits);
// Nullopt when the images hold none; throws on a malformed one.
std::optional<Limits> read_limits_file(const std::string& images_dir);

// Moves the calling process into the cgroup PID is in (kcr exec joins the
// workload's, so its limits count what exec runs).
void join_cgroup_of(pid_t pid);

// Thaws the cgroup PID is in, and each above it, that is frozen (cgroup.freeze 1: an engine
// froze it), and waits until it is: CRIU cannot seize frozen tasks. Returns the groups thawed.
std::vector<std::string> thaw_cgroup_of(pid_t pid);

}  // namespace kcr::agent
