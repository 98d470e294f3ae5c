#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "core/checksum64.hpp"
#include "images/agent/check.hpp"
#include "images/agent/streamer.hpp"
#include "images/agent/workloads.hpp"

namespace kcr::agent {

// Checkpoint and restore of workloads with CRIU, and the staging of checkpoint files the host
// uploads for a restore. Checkpoints are written under STATE/checkpoints/<unique>/ and streamed
// out while CRIU writes them; uploads go to STATE/staging/<staging>/.
class Checkpointer {
 public:
  Checkpointer(WorkloadTable& workloads, const CriuStatus& criu)
      : m_workloads(workloads), m_criu(criu) {}

  // Dumps the workload, sending every file as chunks and a FileDone through send with id, and
  // returns the final reply. Throws kcr::Error when the dump fails (after sending dump.log).
  proto::CheckpointReply checkpoint(std::uint64_t id, const proto::CheckpointRequest& request,
                                    const SendFn& send);

  // Stages one chunk; throws kcr::Error when it is refused.
  void put_file(const proto::PutFileRequest& request);

  // Restores a staged checkpoint as a running workload; on failure sends restore.log through
  // send and throws kcr::Error.
  proto::RestoreReply restore(std::uint64_t id, const proto::RestoreRequest& request,
                              const SendFn& send);

  // Removes a staging directory (no error when it does not exist), killing a
  // lazy-pages daemon still reading it.
  void drop_staging(const std::string& staging);

  // Removes every staging directory but those a lazily restored workload still reads:
  // called when a new host connects, since no host's uploads outlive its connection.
  // Returns how many it removed.
  int drop_abandoned_staging();

  // Waits for (or aborts) the page server of a lazy checkpoint.
  proto::LazyWaitReply lazy_wait(const proto::LazyWaitRequest& request);

  // Takes the exit of a CRIU process this class started in the background;
  // false when PID is not one of them.
  bool child_exited(pid_t pid, int status);

  // The data disks this guest has (data_disk.hpp), for the hello.
  const DataDisk& out_disk() const { return m_out_disk; }
  const DataDisk& in_disk() const { return m_in_disk; }

 private:
  std::string staging_dir(const std::string& staging) const;
  // Starts "criu lazy-pages" for a lazy restore and waits until it is ready.
  pid_t start_lazy_pages(const proto::RestoreRequest& request, const std::string& images_dir,
                         const std::string& work_dir);

  struct Upload {
    std::uint64_t size = 0;
    core::Checksum64 hash;
  };

  // A lazy dump whose CRIU still serves memory to the destination.
  struct LazyDump {
    pid_t pid = 0;
    std::string dir;
    std::string log_path;
    bool exited = false;
    int status = 0;
  };
  // A "criu lazy-pages" daemon feeding a lazily restored workload.
  struct LazyDaemon {
    pid_t pid = 0;
    std::string staging;
  };

  WorkloadTable& m_workloads;
  const CriuStatus& m_criu;
  DataDisk m_out_disk{"kcr-out", true};
  DataDisk m_in_disk{"kcr-in", false};
  std::optional<LazyDump> m_lazy_dump;
  std::vector<LazyDaemon> m_lazy_daemons;
  std::map<std::string, Upload> m_uploads;  // by file path, while a file is being staged
  std::uint64_t m_counter = 0;
};

}  // namespace kcr::agent
