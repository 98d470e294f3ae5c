#include <fmt/core.h>
#include <unistd.h>

#include <random>

#include "cli/checkpoint_output.hpp"
#include "cli/context.hpp"
#include "cli/probe.hpp"
#include "core/error.hpp"
#include "core/names.hpp"
#include "core/scenario.hpp"
#include "vm/checkpoint.hpp"
#include "vm/vm.hpp"

namespace kcr::cli {

namespace {

struct CycleArgs {
  std::string vm, workload, image, scenario = "counter";
  unsigned count = 3;
  bool keep = false;
};

// Stops the temporary VM however the cycle ends.
struct TempVm {
  Context& ctx;
  std::string name;
  ~TempVm() {
    if (name.empty()) return;
    try {
      vm::stop_vm(ctx.config(), name);
    } catch (const Error&) {
    }
  }
};

void cycle(Context& ctx, const CycleArgs& a) {
  const auto& cfg = ctx.config();
  if (!a.vm.empty() && !a.image.empty()) {
    throw Error("--image is for the temporary VM; --vm names a running one", {}, ExitCode::usage);
  }
  if (a.vm.empty() != a.workload.empty()) {
    throw Error("--vm and --workload go together", "give both, or neither for a temporary VM",
                ExitCode::usage);
  }
  std::string vm_name = a.vm;
  std::string workload = a.workload;
  const core::Scenario* scenario = nullptr;
  TempVm temp{ctx, ""};
  if (vm_name.empty()) {
    scenario = &core::find_scenario(a.scenario);
    vm_name = "cycle-" + std::to_string(::getpid());
    workload = scenario->name;
    progress(ctx, "starting temporary VM '" + vm_name + "'");
    temp.name = vm_name;
    start_vm_from_image(ctx, vm_name, a.image, nullptr);
  }

  vm::VmSession session(cfg, vm_name);
  if (!a.workload.empty()) {
    core::validate_name("workload name", workload);
    auto w = running_workload(session, workload);
    scenario = core::scenario_for_argv({w.argv().begin(), w.argv().end()});
  } else {
    progress(ctx, "starting scenario '" + scenario->name + "': " + scenario->description);
    proto::Request req;
    auto* r = req.mutable_run();
    r->set_name(workload);
    for (const auto& s : scenario->argv) r->add_argv(s);
    session.call(req);
  }
  proto::CriuOptions options = scenario ? scenario->options : proto::CriuOptions{};

  // Wait until the workload's state can be read before the first checkpoint.
  if (scenario)
    await_probe(session, workload, *scenario, a.workload.empty() ? scenario->warmup : 0);

  core::CheckpointStore store(cfg.data_dir);
  std::random_device rd;
  std::string prefix = "cycle-" + std::to_string(rd() % 1000000);
  bool all_ok = true;
  auto rows_json = core::Json::array();
  std::vector<std::vector<std::string>> rows;
  for (unsigned i = 1; i <= a.count; ++i) {
    std::string before;
    if (scenario) {
      auto b = run_probe(session, workload, *scenario);
      if (!b)
        throw Error("cycle " + std::to_string(i) + ": the probe failed before the checkpoint");
      before = *b;
    }
    std::string cp_name = prefix + "-" + std::to_string(i);
    auto m = vm::checkpoint_workload(cfg, session, workload, cp_name, options);
    auto gone = find_workload(session, workload);
    if (gone && gone->state() == "running") {
      throw Error("cycle " + std::to_string(i) + ": the workload still runs after the checkpoint");
    }
    auto r = vm::restore_checkpoint(cfg, session, m, workload, {}, false);

    auto verdict = judge_restored(session, workload, scenario, before);
    all_ok = all_ok && verdict.survived;
    if (!a.keep) store.remove(cp_name);

    double dump_s = m.dump_ms / 1000.0;
    double transfer_s = m.total_ms > m.dump_ms ? (m.total_ms - m.dump_ms) / 1000.0 : 0.0;
    double restore_s = r.total_ms / 1000.0;
    rows.push_back({std::to_string(i), sanitize(verdict.before), sanitize(verdict.after),
                    format_seconds(dump_s), format_seconds(transfer_s), format_seconds(restore_s),
                    format_bytes(m.image_bytes()), verdict.survived ? "yes" : "NO"});
    auto j = core::Json::object();
    j.set("cycle", i);
    set_verdict(j, verdict);
    j.set("dump_seconds", dump_s);
    j.set("transfer_seconds", transfer_s);
    j.set("checkpoint_seconds", m.total_ms / 1000.0);
    j.set("restore_seconds", restore_s);
    j.set("criu_restore_seconds", r.restore_ms / 1000.0);
    j.set("image_bytes", m.image_bytes());
    j.set("checkpoint", a.keep ? core::Json(cp_name) : core::Json());
    j.set("statistics", podman_dump_stats(m));
    rows_json.push(j);
    if (!verdict.survived) progress(ctx, "cycle " + std::to_string(i) + ": " + verdict.detail);
  }

  if (ctx.json) {
    auto j = core::Json::object();
    j.set("ok", all_ok);
    j.set("vm", vm_name);
    j.set("workload", workload);
    j.set("scenario", scenario ? core::Json(scenario->name) : core::Json());
    j.set("cycles", rows_json);
    print_json(j);
  } else {
    print_table({"cycle", "at_checkpoint", "after_restore", "dump", "transfer", "restore", "image",
                 "survived"},
                rows);
  }
  if (!all_ok) ctx.exit_code = static_cast<int>(ExitCode::state_lost);
}

}  // namespace

void register_cycle_command(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<CycleArgs>();
  auto* c = app.add_subcommand(
      "cycle", "Checkpoint, kill and restore a workload N times and prove its state survived");
  c->add_option("--vm", a->vm, "Use this VM (with --workload) instead of a temporary one");
  c->add_option("--workload", a->workload, "Use this running workload");
  c->add_option("--image", a->image,
                "Guest image of the temporary VM (default: config, 'default')");
  std::string names;
  for (const auto& s : core::scenarios()) names += "\n  " + s.name + ": " + s.description;
  c->add_option("--scenario", a->scenario,
                "Built-in workload for a temporary VM (default counter)");
  c->add_option("-n,--count", a->count, "Number of cycles (default 3)")->check(CLI::Range(1, 1000));
  c->add_flag("--keep", a->keep, "Keep each cycle's checkpoint in the store");
  add_json_flag(c, ctx);
  c->footer(
      "Without --vm it boots a temporary VM from the default image, starts the scenario,\n"
      "cycles it and tears the VM down. Exits 3 when a cycle lost state. A workload of\n"
      "yours (--vm, --workload) survives a cycle when it runs again, or by its scenario's\n"
      "probe when it runs kcr-scenario.\nScenarios:" +
      names +
      "\nExamples:\n  kcr cycle\n  kcr cycle --scenario membuf --count 5 --json\n"
      "  kcr cycle --vm demo --workload counter\n  kcr cycle --image source");
  c->callback([&ctx, a] { cycle(ctx, *a); });
}

}  // namespace kcr::cli
