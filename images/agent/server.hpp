#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "core/frame.hpp"
#include "images/agent/check.hpp"
#include "images/agent/checkpoint.hpp"
#include "images/agent/port.hpp"
#include "images/agent/process.hpp"
#include "images/agent/rootfs.hpp"
#include "images/agent/workloads.hpp"

namespace kcr::agent {

// Serves the host's requests on a port, one at a time, and reaps every child meanwhile.
class Server {
 public:
  // Serves on port, keeping workload state under state_dir; criu is the startup probe's result.
  Server(std::unique_ptr<Port> port, std::string state_dir, CriuStatus criu);

  // Serves forever; as PID 1 a shutdown request powers the machine off, otherwise it returns.
  void run();

  // Answers one request; never throws (failures become Response.error).
  proto::Response handle(const proto::Request& request);

  // Called when the host disconnects, or a new host connects or says hello: every workload a
  // checkpoint left stopped for the host to decide on (kill once stored, or resume) and that got no
  // decision is resumed, so a kcr killed mid-checkpoint loses nothing. Returns the names resumed.
  std::vector<std::string> release_held();

  // The workloads a checkpoint left stopped and the host has not decided on.
  const std::set<std::string>& held() const { return m_held; }

 private:
  void on_bytes(const std::string& bytes);
  void on_frame(const std::string& frame);
  void send(proto::Response& response);
  proto::Hello hello() const;
  // Sends intermediate responses of a streaming request (checkpoint, restore).
  SendFn stream_sender();
  void shut_down();

  std::unique_ptr<Port> m_port;
  core::FrameDecoder m_decoder;
  WorkloadTable m_workloads;
  CriuStatus m_criu;
  Checkpointer m_checkpointer{m_workloads, m_criu};
  BaseUploads m_bases;
  std::uint64_t m_start_ms;
  bool m_discarding = false;        // the input stream lost sync; skip it until the host reconnects
  Clock::time_point m_last_data{};  // when bytes last arrived from the host
  bool m_shutdown_requested = false;
  bool m_stop = false;
  std::set<std::string> m_held;
};

}  // namespace kcr::agent
