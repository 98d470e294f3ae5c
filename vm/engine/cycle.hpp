#pragma once

#include <string>
#include <vector>

#include "core/checkpoint_store.hpp"
#include "core/scenario.hpp"
#include "vm/engine/checkpoint.hpp"
#include "vm/engine/env.hpp"
#include "vm/engine/probe.hpp"

namespace kcr::engine {

struct CycleRequest {
  // A running workload to cycle; both empty: a temporary VM from IMAGE
  // running SCENARIO, torn down afterwards.
  std::string vm, workload;
  std::string image;
  std::string scenario = "counter";
  std::string temp_vm;  // the temporary VM's name; empty: cycle-PID
  unsigned count = 3;
  bool keep = false;  // keep each round's checkpoint in the store
};

struct CycleRound {
  unsigned cycle = 0;
  core::ProbeVerdict verdict;
  Timings timings;
  core::CheckpointManifest manifest;
  std::string kept;  // the checkpoint's name when kept
  Health health;     // after the round: for leak watching over many rounds
};

struct CycleResult {
  bool ok = true;  // every round's state survived
  std::string vm, workload;
  const core::Scenario* scenario = nullptr;  // the workload's probe, if it has one
  std::vector<CycleRound> rounds;
};

// Checkpoints, kills and restores a workload COUNT times, judging after each
// restore that its state survived. Throws kcr::Error when a round cannot run
// at all (a failed checkpoint or restore); lost state is a result, not an error.
CycleResult cycle(Env& env, const CycleRequest& request);

}  // namespace kcr::engine
