#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent.pb.h"

namespace kcr::core {

// A built-in workload plus the probe that proves its state survived a
// checkpoint/restore (the ZDTM idea: set up state, check it afterwards).
struct Scenario {
  std::string name;
  std::string description;
  std::vector<std::string> argv;   // the workload, run by the agent
  std::vector<std::string> probe;  // run with kcr exec inside the workload
  proto::CriuOptions options;      // CRIU options the scenario needs
  // The counter's probe value to reach before the first checkpoint, so that
  // a counter restarted from zero cannot pass for one that survived.
  long long warmup = 0;
};

// What a probe saw before the checkpoint and after the restore, judged.
struct ProbeVerdict {
  bool survived = false;
  std::string before;  // short form for tables ("12", "ok 1a2b..")
  std::string after;
  std::string detail;  // why it did not survive
};

// The built-in scenarios: counter, membuf (10 MB buffer), tcp-listen,
// tcp-established.
const std::vector<Scenario>& scenarios();

// The scenario called NAME; throws kcr::Error (usage) listing the names.
const Scenario& find_scenario(const std::string& name);

// The scenario whose workload ARGV is, if any (for an existing workload).
const Scenario* scenario_for_argv(const std::vector<std::string>& argv);

// Judges a probe's output before the checkpoint and after the restore.
ProbeVerdict judge_probe(const Scenario& s, const std::string& before, const std::string& after);

}  // namespace kcr::core
