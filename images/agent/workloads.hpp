#pragma once

#include <sys/wait.h>

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "core/unique_fd.hpp"
#include "images/agent/limits.hpp"
#include "images/agent/rootfs.hpp"
#include "images/agent/workload_init.hpp"

namespace kcr::agent {

// One workload the agent launched, running or exited.
struct Workload {
  std::string name;
  pid_t pid = 0;  // the workload init's PID in the agent's namespace
  std::vector<std::string> argv;
  bool running = true;
  int exit_code = 0;
  int exit_signal = 0;
  int64_t started_unix_ms = 0;
  Limits limits;                     // its cgroup's (kcr run --memory, --pids-limit)
  std::optional<WorkloadRoot> root;  // a root filesystem of its own (kcr run --rootfs)
  // O_PATH fd of the workload's private /run (a tmpfs that only its mount namespace has, so CRIU
  // carries it, log included, inside the checkpoint). It keeps the log readable after the
  // workload exits and its namespace is gone.
  std::shared_ptr<UniqueFd> run_dir;
};

// Where a workload's stdout and stderr go, inside its own mount namespace.
inline constexpr const char* k_workload_run = "/run";
inline constexpr const char* k_workload_log = "kcr/output.log";  // relative to k_workload_run

// Opens /proc/PID/root/run as an O_PATH directory fd; throws kcr::Error on failure.
std::shared_ptr<UniqueFd> open_run_dir(pid_t pid);

// The agent's workloads by name; exited ones stay until a new run takes their name.
class WorkloadTable {
 public:
  // state_dir is the agent's own (/run/kcr); workload logs live in each workload's private /run.
  explicit WorkloadTable(std::string state_dir) : m_state_dir(std::move(state_dir)) {}

  // Launches a workload in new PID, mount, UTS and IPC namespaces; throws kcr::Error when the
  // request is invalid or the workload could not start.
  const Workload& run(const proto::RunRequest& request);

  // Records the exit of pid when it is a running workload's init; returns whether it was.
  bool record_exit(pid_t pid, int status);

  // Returns the workload named name or throws kcr::Error with a hint.
  const Workload& get(const std::string& name) const;

  // The workload named name, or nullptr.
  Workload* find(const std::string& name);

  // Registers a restored workload (running) under its name, replacing an exited one; throws when
  // a running workload has that name.
  const Workload& adopt(Workload workload);

  // Throws kcr::Error unless name is free or belongs to an exited workload.
  void check_name_free(const std::string& name) const;

  // The agent's state directory (checkpoint and staging directories live under it).
  const std::string& state_dir() const { return m_state_dir; }

  // Reaps the running workloads' inits (by pid, never waitpid(-1)); for use while another child
  // of the agent (criu) must not be reaped by accident.
  void reap_known();

  // Sends signal (0 means SIGTERM) to the running workload named name; throws when it is not.
  void kill(const std::string& name, int signal, bool all = false);

  // Reads up to max_bytes of the workload's log from offset.
  proto::LogsReply logs(const proto::LogsRequest& request) const;

  // Lists every workload in name order.
  proto::PsReply ps() const;

  // Sends signal to every running workload's init.
  void signal_all(int signal);

  // True while any workload is still running.
  bool any_running() const;

 private:
  std::string m_state_dir;
  std::map<std::string, Workload> m_workloads;
};

// Fills a protocol Workload from a table entry.
void to_proto(const Workload& workload, proto::Workload* out);

// Reaps every exited child without blocking and records the workloads among them.
// Reaps every exited child: the workloads' inits go to TABLE, CRIU processes
// running in the background to OTHERS (a callable bool(pid_t, int)).
template <typename Others>
void reap_children(WorkloadTable& table, Others& others) {
  int status = 0;
  pid_t pid;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
    if (!table.record_exit(pid, status)) others.child_exited(pid, status);
  }
}

}  // namespace kcr::agent
