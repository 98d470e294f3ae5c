#include "cli/checkpoint_output.hpp"
#include "cli/context.hpp"
#include "core/error.hpp"
#include "core/scenario.hpp"
#include "vm/engine/cycle.hpp"

namespace kcr::cli {

namespace {

void print_cycle(Context& ctx, const engine::CycleResult& c) {
  if (ctx.json) {
    auto rows = core::Json::array();
    for (const auto& r : c.rounds) {
      auto j = core::Json::object();
      j.set("cycle", r.cycle);
      set_verdict(j, r.verdict);
      j.set("dump_seconds", r.timings.dump);
      j.set("transfer_seconds", r.timings.transfer);
      j.set("checkpoint_seconds", r.timings.checkpoint);
      j.set("restore_seconds", r.timings.restore_total);
      j.set("criu_restore_seconds", r.timings.criu_restore);
      j.set("image_bytes", r.timings.image_bytes);
      j.set("checkpoint", r.kept.empty() ? core::Json() : core::Json(r.kept));
      j.set("statistics", podman_dump_stats(r.manifest));
      j.set("agent_fds", r.health.agent_fds);
      j.set("guest_processes", r.health.guest_processes);
      j.set("host_rss_kib", r.health.host_rss_kib);
      rows.push(j);
    }
    auto j = core::Json::object();
    j.set("ok", c.ok);
    j.set("vm", c.vm);
    j.set("workload", c.workload);
    j.set("scenario", c.scenario ? core::Json(c.scenario->name) : core::Json());
    j.set("cycles", rows);
    return print_json(j);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : c.rounds) {
    rows.push_back({std::to_string(r.cycle), sanitize(r.verdict.before), sanitize(r.verdict.after),
                    format_seconds(r.timings.dump), format_seconds(r.timings.transfer),
                    format_seconds(r.timings.restore_total), format_bytes(r.timings.image_bytes),
                    r.verdict.survived ? "yes" : "NO"});
  }
  print_table({"cycle", "at_checkpoint", "after_restore", "dump", "transfer", "restore", "image",
               "survived"},
              rows);
}

}  // namespace

void register_cycle_command(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<engine::CycleRequest>();
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
  c->callback([&ctx, a] {
    auto result = engine::cycle(ctx.engine(), *a);
    print_cycle(ctx, result);
    if (!result.ok) ctx.exit_code = static_cast<int>(ExitCode::state_lost);
  });
}

}  // namespace kcr::cli
