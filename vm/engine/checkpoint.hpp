#pragma once

#include <optional>
#include <string>

#include "agent.pb.h"
#include "core/checkpoint_store.hpp"
#include "vm/checkpoint.hpp"
#include "vm/engine/env.hpp"

namespace kcr::engine {

// The default name of a checkpoint of WORKLOAD: "WORKLOAD-20261125-065302"
// (PREFIX first when given, e.g. "migrate-").
std::string default_checkpoint_name(const std::string& workload, const std::string& prefix = {});

struct CheckpointRequest {
  std::string vm, workload;
  std::string name;  // empty: default_checkpoint_name
  proto::CriuOptions options;
  vm::Transfer transfer = vm::Transfer::during_dump;
};

// Checkpoints a workload into the store; the checkpoint exists complete and
// verified, or not at all and the workload runs on.
core::CheckpointManifest checkpoint(Env& env, const CheckpointRequest& request);

struct RestoreRequest {
  std::string vm, checkpoint;
  std::string name;  // the workload's name after restore; empty: as checkpointed
  proto::CriuOptions options;
  bool force = false;
  // The root filesystem the workload ran on (a directory or tar), when the host's store has
  // not its base (a checkpoint imported from another host); refused unless the same.
  std::string rootfs;
};

struct RestoreOutcome {
  core::CheckpointManifest manifest;
  vm::RestoreResult restore;
};

// Restores a stored checkpoint into a VM; the checkpoint is never modified.
RestoreOutcome restore(Env& env, const RestoreRequest& request);

// Where the time of one checkpoint and its restore went, in seconds.
struct Timings {
  double dump = 0;           // criu dump in the guest
  double transfer = 0;       // images to the host, the part left after the dump
  double checkpoint = 0;     // the whole checkpoint (dump and transfer)
  double upload = 0;         // host to the restoring guest
  double restore = 0;        // restore without the upload
  double restore_total = 0;  // the whole restore, upload included
  double criu_restore = 0;   // criu restore in the guest
  double frozen = 0;         // CRIU's frozen time
  uint64_t image_bytes = 0;
  uint64_t pages_written = 0;
};

// The timings of checkpoint M restored as R. STORED_S: from the freeze to
// the checkpoint stored, when measured (pre-copy rounds are not in it);
// otherwise the checkpoint's own total.
Timings timings_of(const core::CheckpointManifest& m, const vm::RestoreResult& r,
                   std::optional<double> stored_s = {});

}  // namespace kcr::engine
