#include "vm/engine/cycle.hpp"

#include <unistd.h>

#include <random>

#include "core/error.hpp"
#include "core/fault.hpp"
#include "core/names.hpp"
#include "vm/engine/probe.hpp"

namespace kcr::engine {

namespace {

// One checkpoint -> restore -> judge round.
CycleRound run_round(Env& env, vm::VmSession& session, const CycleRequest& a, const CycleResult& c,
                     const proto::CriuOptions& options, const std::string& cp_name, unsigned i) {
  std::string before;
  if (c.scenario) {
    auto b = run_probe(session, c.workload, *c.scenario);
    if (!b) throw Error("cycle " + std::to_string(i) + ": the probe failed before the checkpoint");
    before = *b;
  }
  CycleRound round;
  round.cycle = i;
  vm::DumpPlan dump_plan;
  dump_plan.on_transfer = env.transfer;
  round.manifest =
      vm::checkpoint_workload(env.cfg, session, c.workload, cp_name, options, dump_plan);
  auto gone = find_workload(session, c.workload);
  if (gone && gone->state() != "exited") {
    throw Error("cycle " + std::to_string(i) + ": the workload still runs after the checkpoint");
  }
  core::fault_point("cycle.between-checkpoint-and-restore");
  vm::RestorePlan restore_plan;
  restore_plan.on_transfer = env.transfer;
  auto r =
      vm::restore_checkpoint(env.cfg, session, round.manifest, c.workload, {}, false, restore_plan);
  round.verdict = judge_restored(session, c.workload, c.scenario, before, env.settle);
  round.timings = timings_of(round.manifest, r);
  if (a.keep) {
    round.kept = cp_name;
  } else {
    core::CheckpointStore(env.cfg.data_dir).remove(cp_name);
  }
  round.health = health(session);
  if (!round.verdict.survived) env.say("cycle " + std::to_string(i) + ": " + round.verdict.detail);
  return round;
}

}  // namespace

CycleResult cycle(Env& env, const CycleRequest& a) {
  if (!a.vm.empty() && !a.image.empty()) {
    throw Error("--image is for the temporary VM; --vm names a running one", {}, ExitCode::usage);
  }
  if (a.vm.empty() != a.workload.empty()) {
    throw Error("--vm and --workload go together", "give both, or neither for a temporary VM",
                ExitCode::usage);
  }
  env.clean_store();
  CycleResult c;
  c.vm = a.vm;
  c.workload = a.workload;
  OwnedVm temp(env.vms);
  if (c.vm.empty()) {
    c.scenario = &core::find_scenario(a.scenario);
    c.vm = a.temp_vm.empty() ? "cycle-" + std::to_string(::getpid()) : a.temp_vm;
    c.workload = c.scenario->name;
    env.say("starting temporary VM '" + c.vm + "'");
    StartSpec spec;
    spec.name = c.vm;
    spec.image = a.image;
    temp.start(spec);
  }
  auto session = env.vms.open(c.vm);
  if (!a.workload.empty()) {
    core::validate_name("workload name", c.workload);
    auto w = running_workload(*session, c.workload);
    c.scenario = core::scenario_for_argv({w.argv().begin(), w.argv().end()});
  } else {
    env.say("starting scenario '" + c.scenario->name + "': " + c.scenario->description);
    start_scenario(*session, *c.scenario);
  }
  proto::CriuOptions options = c.scenario ? c.scenario->options : proto::CriuOptions{};
  // Wait until the workload's state can be read before the first checkpoint.
  if (c.scenario) {
    await_probe(*session, c.workload, *c.scenario, a.workload.empty() ? c.scenario->warmup : 0);
  }
  std::random_device rd;
  std::string prefix = "cycle-" + std::to_string(rd() % 1000000);
  for (unsigned i = 1; i <= a.count; ++i) {
    c.rounds.push_back(
        run_round(env, *session, a, c, options, prefix + "-" + std::to_string(i), i));
    c.ok = c.ok && c.rounds.back().verdict.survived;
  }
  return c;
}

}  // namespace kcr::engine
