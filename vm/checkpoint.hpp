#pragma once

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "core/checkpoint_store.hpp"
#include "core/config.hpp"
#include "core/criu_stats.hpp"
#include "core/transfer_progress.hpp"
#include "vm/vm.hpp"

namespace kcr::vm {

// When checkpoint files travel to the host: while CRIU writes them (the
// default), or only after CRIU finished (to measure CRIU alone).
enum class Transfer { during_dump, after_dump };

// How checkpoint_workload runs, beyond the CRIU options.
struct DumpPlan {
  Transfer transfer = Transfer::during_dump;
  // Without leave_running: leave the stopped workload to the caller instead
  // of killing it once the checkpoint is stored (migrate ends it only when
  // the destination runs, and resumes it otherwise).
  bool keep_stopped = false;
  // Pre-copy: rounds of "criu pre-dump" with memory tracking while the
  // workload runs, each stored under parents/K/; the final dump then writes
  // only the pages dirtied since the last round.
  unsigned pre_dumps = 0;
  // After each round, with the directory its files are in (the checkpoint
  // being written) and the round's files.
  std::function<void(const core::PreDumpRound&, const std::string& dir,
                     const std::vector<core::CheckpointFile>& files)>
      on_pre_dump;
  std::function<void()> on_freeze;  // just before the final dump freezes the workload
  // Post-copy: the final dump leaves the memory behind CRIU's page server on
  // this port (the checkpoint is then marked lazy: it cannot be restored
  // once that server is gone). lazy_finish() waits for the server.
  unsigned lazy_port = 0;
  // Reports the bytes received from the guest, for each round and the final dump.
  core::OnTransfer on_transfer;
};

// Waits up to TIMEOUT for the page server of a lazy checkpoint to have sent
// everything (true) or not yet (false); ABORT kills it (CRIU then resumes
// the source workload). Throws kcr::Error when CRIU failed.
bool lazy_finish(VmSession& session, std::chrono::milliseconds timeout, bool abort = false);

// Joins two VMs' migration links (the virtio-net device every VM has) and
// gives their guests ADDRESS_A and ADDRESS_B ("10.97.0.1/24").
void link_vms(VmSession& a, const std::string& address_a, VmSession& b,
              const std::string& address_b);

// Checkpoints WORKLOAD of the session's VM into the store as NAME. The files
// stream to the host while CRIU dumps; the checkpoint appears in the store
// only complete and verified. Without leave_running the workload is gone
// afterwards; if anything fails before the checkpoint is committed it keeps
// running (CRIU leaves it stopped until kcr decides).
core::CheckpointManifest checkpoint_workload(const core::Config& cfg, VmSession& session,
                                             const std::string& workload, const std::string& name,
                                             const proto::CriuOptions& options,
                                             const DumpPlan& plan = {});

// Resumes a workload a checkpoint left stopped (SIGCONT to every task).
void resume_workload(VmSession& session, const std::string& workload);

// Kills every task of a workload and waits until the agent reaped it.
void end_workload(VmSession& session, const std::string& workload);

struct RestoreResult {
  proto::Workload workload;  // running again, new PID
  uint64_t restore_ms = 0;   // criu restore in the guest
  uint64_t upload_ms = 0;    // host -> guest transfer
  uint64_t total_ms = 0;
  std::optional<core::CriuRestoreStats> stats;
  std::string channel;  // how the images went in: "disk" or "port" (stage_files)
};

// Files already staged in a VM for a restore to come: pre-copy sends each
// round to the destination while the workload still runs.
struct Staged {
  std::string staging;          // the agent's staging name
  std::set<std::string> paths;  // checkpoint paths already there
};

// A fresh staging name.
std::string new_staging_name();

// Sends FILES (paths relative to DIR) into the VM's staging area STAGING,
// each checked there against its checksum, reporting the bytes sent as PHASE
// to ON_TRANSFER; throws kcr::Error on failure.
std::string stage_files(VmSession& session, const std::string& staging, const std::string& dir,
                        const std::vector<core::CheckpointFile>& files,
                        const core::OnTransfer& on_transfer = {}, const std::string& phase = {});

// Removes a staging area (errors ignored: the VM may be gone).
void drop_staging(VmSession& session, const std::string& staging);

// True for a CRIU image file of a checkpoint (images/ or parents/K/images/).
bool is_image_file(const std::string& path);

// How restore_checkpoint runs, beyond the CRIU options.
struct RestorePlan {
  // Re-hash every file first (migrate restores what it has just received
  // and hashed, and skips this).
  bool verify_first = true;
  const Staged* staged = nullptr;  // files already in the VM
  // Post-copy: memory comes from this page server (a lazy checkpoint).
  std::string page_server_address;
  unsigned page_server_port = 0;
  // Reports the bytes uploaded into the VM.
  core::OnTransfer on_transfer;
  // A checkpoint with a root filesystem of its own: its base from this directory or tar
  // (kcr restore --rootfs) instead of the host's store; refused unless it is the same.
  std::string rootfs_path;
};

// Restores checkpoint M into the session's VM as NEW_NAME (M's workload name
// when empty). Verifies every digest before sending anything (see PLAN),
// skips the files already staged, refuses a VM whose kernel or CRIU differs from the
// checkpoint's unless FORCE, and never modifies the checkpoint.
RestoreResult restore_checkpoint(const core::Config& cfg, VmSession& session,
                                 const core::CheckpointManifest& m, const std::string& new_name,
                                 const proto::CriuOptions& extra_options, bool force,
                                 const RestorePlan& plan = {});

// Throws kcr::Error explaining why checkpoint M cannot be restored in a guest
// that said HELLO, unless FORCE.
void check_compatible(const core::CheckpointManifest& m, const proto::Hello& hello, bool force);

// The differences between two guests that matter to CRIU ("CRIU 3.17.1 vs
// 3.19", "kernel A vs B"); empty when a checkpoint of one restores in the other.
std::vector<std::string> guest_differences(const std::string& criu_a, const std::string& kernel_a,
                                           const std::string& criu_b, const std::string& kernel_b);

}  // namespace kcr::vm
