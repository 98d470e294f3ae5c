#include <fmt/core.h>

#include "cli/checkpoint_output.hpp"
#include "cli/context.hpp"
#include "core/checkpoint_store.hpp"
#include "core/criu_options.hpp"
#include "core/error.hpp"
#include "vm/engine/checkpoint.hpp"

namespace kcr::cli {

namespace {

struct CheckpointArgs {
  std::string vm, workload, name;
  bool print_stats = false;
  bool transfer_after_dump = false;
  CriuFlags flags;
};

void checkpoint(Context& ctx, const CheckpointArgs& a) {
  engine::CheckpointRequest req;
  req.vm = a.vm;
  req.workload = a.workload;
  req.name = a.name;
  req.options = a.flags.to_proto();
  req.transfer = a.transfer_after_dump ? vm::Transfer::after_dump : vm::Transfer::during_dump;
  auto m = engine::checkpoint(ctx.engine(), req);
  if (ctx.json) return print_json(manifest_json(m, core::CheckpointStore(ctx.config().data_dir)));
  fmt::print("checkpoint '{}': {} in {} (CRIU dump {}), workload {}\n", m.name,
             format_bytes(m.image_bytes()), format_seconds(m.total_ms / 1000.0),
             format_seconds(m.dump_ms / 1000.0),
             req.options.leave_running() ? "left running" : "stopped");
  if (a.print_stats) print_json(podman_dump_stats(m));
}

struct RestoreArgs {
  std::string vm, checkpoint, name;
  bool print_stats = false;
  bool force = false;
  CriuFlags flags;
};

void restore(Context& ctx, const RestoreArgs& a) {
  auto out =
      engine::restore(ctx.engine(), {a.vm, a.checkpoint, a.name, a.flags.to_proto(), a.force});
  const auto& m = out.manifest;
  const auto& r = out.restore;
  if (ctx.json) return print_json(restore_json(m, r));
  fmt::print(
      "workload '{}' restored in VM '{}' from checkpoint '{}' (guest pid {}) in {} (CRIU restore "
      "{})\n",
      sanitize(r.workload.name()), a.vm, m.name, r.workload.pid(),
      format_seconds(r.total_ms / 1000.0), format_seconds(r.restore_ms / 1000.0));
  if (a.print_stats) print_json(podman_restore_stats(r));
}

void list(Context& ctx) {
  ctx.engine().clean_store();
  core::CheckpointStore store(ctx.config().data_dir);
  auto all = store.list();
  if (ctx.json) {
    auto arr = core::Json::array();
    for (const auto& m : all) arr.push(manifest_json(m, store));
    return print_json(arr);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : all) {
    rows.push_back(
        {m.name, m.vm, m.workload, format_bytes(m.image_bytes()), m.criu_version, m.created});
  }
  print_table({"NAME", "VM", "WORKLOAD", "SIZE", "CRIU", "CREATED"}, rows);
}

void show(Context& ctx, const std::string& name) {
  core::CheckpointStore store(ctx.config().data_dir);
  auto m = store.load(name);
  if (ctx.json) return print_json(manifest_json(m, store));
  fmt::print("name:        {}\n", m.name);
  fmt::print("created:     {}\n", m.created);
  fmt::print("directory:   {}\n", store.dir(m.name));
  fmt::print("source:      workload '{}' (pid {}) in VM '{}'\n", m.workload, m.pid, m.vm);
  std::string argv;
  for (const auto& s : m.argv) argv += (argv.empty() ? "" : " ") + s;
  fmt::print("command:     {}\n", sanitize(argv));
  fmt::print("guest:       kernel {}, CRIU {}, image {} ({})\n", m.kernel_release, m.criu_version,
             m.image, m.image_hash.substr(0, 12));
  fmt::print("kcr:         {} (format {})\n", m.kcr_version, m.format_version);
  fmt::print("size:        {} of CRIU images in {} files\n", format_bytes(m.image_bytes()),
             m.files.size());
  fmt::print("timings:     checkpoint {}, CRIU dump {}\n", format_seconds(m.total_ms / 1000.0),
             format_seconds(m.dump_ms / 1000.0));
  if (m.stats) {
    fmt::print(
        "CRIU stats:  frozen {} us, memdump {} us, memwrite {} us, pages scanned {}, written {}\n",
        m.stats->frozen_time, m.stats->memdump_time, m.stats->memwrite_time, m.stats->pages_scanned,
        m.stats->pages_written);
  }
  for (const auto& r : m.pre_dumps) {
    fmt::print("pre-dump {}:  {} pages, {} of images, CRIU {} (parents/{}/)\n", r.round,
               r.pages_written, format_bytes(r.bytes), format_seconds(r.dump_ms / 1000.0), r.round);
  }
  fmt::print("options:     {}\n", CriuFlags::describe(m.options));
}

void verify(Context& ctx, const std::string& name) {
  core::CheckpointStore store(ctx.config().data_dir);
  auto m = store.load(name);
  store.verify(m);
  if (ctx.json) {
    auto j = core::Json::object();
    j.set("name", name);
    j.set("ok", true);
    j.set("files", m.files.size());
    return print_json(j);
  }
  fmt::print("checkpoint '{}' is complete: {} files match their sha256 digests\n", name,
             m.files.size());
}

}  // namespace

void register_checkpoint_commands(CLI::App& app, Context& ctx) {
  auto ca = std::make_shared<CheckpointArgs>();
  auto* c = app.add_subcommand(
      "checkpoint", "Checkpoint a workload with CRIU in its VM and store it on the host");
  c->add_option("vm", ca->vm, "VM")->required();
  c->add_option("workload", ca->workload, "Workload to checkpoint")->required();
  c->add_option("-o,--name", ca->name, "Checkpoint name (default WORKLOAD-TIMESTAMP)");
  ca->flags.add_to(c, CriuFlags::Use::dump);
  c->add_flag("--print-stats", ca->print_stats,
              "Print CRIU's statistics as JSON, in podman's names");
  c->add_flag("--transfer-after-dump", ca->transfer_after_dump,
              "Send the images only once CRIU finished (slower; scripts/bench times CRIU alone)");
  add_json_flag(c, ctx);
  c->footer(
      "Without --leave-running the workload is gone once the checkpoint is stored; if anything\n"
      "fails before that, it keeps running and nothing is stored.\n"
      "Example:\n  kcr checkpoint demo counter -o counter-1 --leave-running");
  c->callback([&ctx, ca] { checkpoint(ctx, *ca); });

  auto ra = std::make_shared<RestoreArgs>();
  auto* r = app.add_subcommand("restore", "Restore a stored checkpoint into a VM");
  r->add_option("vm", ra->vm, "VM to restore into")->required();
  r->add_option("checkpoint", ra->checkpoint, "Checkpoint name (kcr checkpoints ls)")->required();
  r->add_option("--name", ra->name, "Workload name after restore (default: the checkpointed name)");
  ra->flags.add_to(r, CriuFlags::Use::restore);
  r->add_flag("--force", ra->force,
              "Restore even if the VM's kernel or CRIU differs from the checkpoint's");
  r->add_flag("--print-stats", ra->print_stats,
              "Print CRIU's statistics as JSON, in podman's names");
  add_json_flag(r, ctx);
  r->footer(
      "Every file's digest is checked before anything is sent; a failed restore leaves the\n"
      "checkpoint untouched. Options the checkpoint was made with apply again.\n"
      "Example:\n  kcr restore demo counter-1 --name counter2");
  r->callback([&ctx, ra] { restore(ctx, *ra); });

  auto* cps = app.add_subcommand("checkpoints", "List, show, verify and remove stored checkpoints");
  cps->require_subcommand(1);
  auto* ls = cps->add_subcommand("ls", "List checkpoints");
  add_json_flag(ls, ctx);
  ls->footer("Example:\n  kcr checkpoints ls --json");
  ls->callback([&ctx] { list(ctx); });
  auto show_name = std::make_shared<std::string>();
  auto* sh = cps->add_subcommand("show", "Show one checkpoint's manifest");
  sh->add_option("name", *show_name, "Checkpoint")->required();
  add_json_flag(sh, ctx);
  sh->footer("Example:\n  kcr checkpoints show counter-1");
  sh->callback([&ctx, show_name] { show(ctx, *show_name); });
  auto verify_name = std::make_shared<std::string>();
  auto* v = cps->add_subcommand("verify", "Re-check every file of a checkpoint against its digest");
  v->add_option("name", *verify_name, "Checkpoint")->required();
  add_json_flag(v, ctx);
  v->footer("Exits 1 naming the first damaged file.\nExample:\n  kcr checkpoints verify counter-1");
  v->callback([&ctx, verify_name] { verify(ctx, *verify_name); });
  auto rm_names = std::make_shared<std::vector<std::string>>();
  auto* rm = cps->add_subcommand("rm", "Remove checkpoints");
  rm->add_option("names", *rm_names, "Checkpoints")->required();
  rm->footer("Example:\n  kcr checkpoints rm counter-1 counter-2");
  rm->callback([&ctx, rm_names] {
    core::CheckpointStore store(ctx.config().data_dir);
    for (const auto& n : *rm_names) {
      store.remove(n);
      if (!ctx.quiet) fmt::print("checkpoint '{}' removed\n", n);
    }
  });
  cps->footer("Example:\n  kcr checkpoints ls\n  kcr checkpoints show counter-1");
}

}  // namespace kcr::cli
