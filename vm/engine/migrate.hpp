#pragma once

#include <string>
#include <vector>

#include "agent.pb.h"
#include "core/checkpoint_store.hpp"
#include "core/config.hpp"
#include "core/scenario.hpp"
#include "vm/engine/checkpoint.hpp"
#include "vm/engine/env.hpp"

namespace kcr::engine {

struct MigrateRequest {
  // The workload to move; both empty: a temporary VM from IMAGE (named TEMP_VM,
  // default migrate-PID) running SCENARIO, which is moved into a fresh VM, and
  // both VMs are stopped afterwards.
  std::string vm, workload;
  std::string scenario, image, temp_vm;
  std::string to;            // a running VM, or the name of a fresh one; empty: VM-mN
  std::string to_connect;    // a fresh VM's libvirt daemon (another host's); empty: the source's
  std::string name;          // the checkpoint in between; empty: migrate-WORKLOAD-TIMESTAMP
  unsigned pre_dumps = 0;    // pre-copy rounds
  bool lazy_pages = false;   // post-copy
  bool keep_source = false;  // a clone: the source runs on
  bool keep_checkpoint = false;
  bool force = false;  // across guests whose kernel or CRIU differ
  proto::CriuOptions options;
  core::MigrationLink link;  // addresses of the VM-to-VM link (post-copy)
};

struct MigrateResult {
  std::string workload, from, to;
  bool fresh_vm = false;     // the destination was booted for the migration
  int pid = 0;               // the workload's pid in the destination
  bool source_ended = true;  // false with keep_source
  const core::Scenario* scenario = nullptr;
  core::ProbeVerdict verdict;
  std::string mode;       // plain | pre-copy | post-copy
  double downtime_s = 0;  // from the freeze to running in the destination
  double lazy_s = 0;      // post-copy: until the last page arrived
  Timings timings;
  std::vector<core::PreDumpRound> pre_dumps;
  std::string checkpoint;             // its name when kept
  std::string checkpoint_on_host;     // kept on the destination's host too: where
  std::vector<std::string> warnings;  // the move succeeded, but...
  std::string temporary;              // --scenario: the scenario; both VMs were stopped
};

// Moves a workload into another VM, never losing it: the destination is
// booted and checked before anything is frozen, and any failure after the
// freeze takes one rollback path (the copy in the destination ended, the
// source resumed, the staging dropped, a fresh destination stopped, the
// checkpoint kept unless lazy) before kcr::Error says what became of each.
MigrateResult migrate(Env& env, const MigrateRequest& request);

}  // namespace kcr::engine
