#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agent.pb.h"

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
  std::string log_path;
};

// The agent's workloads by name; exited ones stay until a new run takes their name.
class WorkloadTable {
 public:
  // Keeps per-workload directories (with their log) under state_dir/workloads.
  explicit WorkloadTable(std::string state_dir) : m_state_dir(std::move(state_dir)) {}

  // Launches a workload in new PID, mount, UTS and IPC namespaces; throws kcr::Error when the
  // request is invalid or the workload could not start.
  const Workload& run(const proto::RunRequest& request);

  // Records the exit of pid when it is a running workload's init; returns whether it was.
  bool record_exit(pid_t pid, int status);

  // Returns the workload named name or throws kcr::Error with a hint.
  const Workload& get(const std::string& name) const;

  // Sends signal (0 means SIGTERM) to the running workload named name; throws when it is not.
  void kill(const std::string& name, int signal);

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
void reap_children(WorkloadTable& table);

}  // namespace kcr::agent
