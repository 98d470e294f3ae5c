#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "core/scenario_registry.hpp"

namespace kcr::core {

// A built-in workload plus the probe that proves its state survived a
// checkpoint/restore (the ZDTM idea: set up state, check it afterwards).
struct Scenario {
  std::string name;
  std::string description;
  std::vector<std::string> argv;   // the workload, run by the agent
  std::vector<std::string> probe;  // run with kcr exec inside the workload
  proto::CriuOptions options;      // CRIU options the scenario needs
  std::string criu;                // the same, as the registry spells them
  std::string judge;               // how judge_probe() reads the probe (ScenarioSpec::judge)
  std::string namespaces;          // ScenarioSpec::namespaces
  proto::RunRequest run;           // the run options the workload needs (uid_map, cgroupns)
  unsigned modes = k_all_modes;    // the suite modes it runs in
  std::string xfail;               // a known limit's reason, for XFAIL_MODES
  unsigned xfail_modes = 0;
  // The counter's probe value to reach before the first checkpoint, so that
  // a counter restarted from zero cannot pass for one that survived.
  long long warmup = 0;

  bool supports(SuiteModeBit m) const { return (modes & m) != 0; }
  bool expected_to_fail(SuiteModeBit m) const { return !xfail.empty() && (xfail_modes & m); }
};

// What a probe saw before the checkpoint and after the restore, judged.
struct ProbeVerdict {
  bool survived = false;
  std::string before;  // short form for tables ("12", "ok 1a2b..")
  std::string after;
  std::string detail;  // why it did not survive
};

// The built-in scenarios, from the registry (core/scenario_registry.cpp).
const std::vector<Scenario>& scenarios();

// The scenario registry entry SPEC as a Scenario; throws kcr::Error on an entry
// the host cannot read (an unknown CRIU option word, say).
Scenario scenario_from_spec(const ScenarioSpec& spec);

// "cycle,migrate" -> bits; throws kcr::Error (usage) naming an unknown word.
unsigned parse_modes(const std::string& list);
// The bits as words, in registry order: "cycle migrate pre-dump lazy restart".
std::vector<std::string> mode_words(unsigned modes);

// The scenario called NAME; throws kcr::Error (usage) listing the names.
const Scenario& find_scenario(const std::string& name);

// The scenario whose workload ARGV is, if any (for an existing workload).
const Scenario* scenario_for_argv(const std::vector<std::string>& argv);

// Judges a probe's output before the checkpoint and after the restore.
ProbeVerdict judge_probe(const Scenario& s, const std::string& before, const std::string& after);

}  // namespace kcr::core
