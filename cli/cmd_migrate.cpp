#include <fmt/core.h>

#include "cli/checkpoint_output.hpp"
#include "cli/context.hpp"
#include "core/error.hpp"
#include "vm/engine/migrate.hpp"

namespace kcr::cli {

namespace {

struct MigrateArgs {
  engine::MigrateRequest request;
  CriuFlags flags;
};

core::Json migrate_json(const engine::MigrateResult& r) {
  const auto& t = r.timings;
  auto j = core::Json::object();
  j.set("ok", r.verdict.survived);
  j.set("workload", r.workload);
  j.set("from", r.from);
  j.set("to", r.to);
  j.set("fresh_vm", r.fresh_vm);
  j.set("temporary_vms", !r.temporary.empty());
  j.set("pid", r.pid);
  j.set("source", r.source_ended ? "ended" : "running");
  j.set("scenario", r.scenario ? core::Json(r.scenario->name) : core::Json());
  set_verdict(j, r.verdict);
  j.set("mode", r.mode);
  j.set("downtime_seconds", r.downtime_s);
  j.set("lazy_seconds", r.lazy_s);
  j.set("dump_seconds", t.dump);
  j.set("frozen_seconds", t.frozen);
  j.set("transfer_seconds", t.transfer);
  j.set("upload_seconds", t.upload);
  j.set("restore_seconds", t.restore);
  j.set("criu_restore_seconds", t.criu_restore);
  j.set("image_bytes", t.image_bytes);
  j.set("pages_written", t.pages_written);
  auto rounds = core::Json::array();
  for (const auto& pr : r.pre_dumps) {
    auto rj = core::Json::object();
    rj.set("round", pr.round);
    rj.set("seconds", pr.total_ms / 1000.0);
    rj.set("criu_seconds", pr.dump_ms / 1000.0);
    rj.set("pages_written", pr.pages_written);
    rj.set("image_bytes", pr.bytes);
    rounds.push(rj);
  }
  j.set("pre_dumps", rounds);
  j.set("checkpoint", r.checkpoint.empty() ? core::Json() : core::Json(r.checkpoint));
  j.set("checkpoint_on_host",
        r.checkpoint_on_host.empty() ? core::Json() : core::Json(r.checkpoint_on_host));
  return j;
}

void print_migrate(const engine::MigrateResult& r) {
  const auto& t = r.timings;
  fmt::print("workload '{}' migrated from VM '{}' to VM '{}' (guest pid {}), source {}\n",
             r.workload, r.from, r.to, r.pid, r.source_ended ? "ended" : "left running");
  std::vector<std::vector<std::string>> rows;
  for (const auto& pr : r.pre_dumps) {
    rows.push_back(
        {fmt::format("pre-dump {}", pr.round), format_seconds(pr.total_ms / 1000.0),
         fmt::format("{} pages, {} while it ran", pr.pages_written, format_bytes(pr.bytes))});
  }
  bool lazy = r.mode == "post-copy";
  rows.push_back({"dump", format_seconds(t.dump),
                  lazy ? fmt::format("CRIU in '{}', memory left behind its page server", r.from)
                       : fmt::format("CRIU in '{}', workload frozen {}, {} pages", r.from,
                                     format_seconds(t.frozen), t.pages_written)});
  rows.push_back({"transfer", format_seconds(t.transfer),
                  fmt::format("{} of images to the host, the part left after the dump",
                              format_bytes(t.image_bytes))});
  rows.push_back({"upload", format_seconds(t.upload), "host to '" + r.to + "'"});
  rows.push_back({"restore", format_seconds(t.restore),
                  fmt::format("CRIU in '{}' {}", r.to, format_seconds(t.criu_restore))});
  rows.push_back({"downtime", format_seconds(r.downtime_s), "frozen in the source to running"});
  if (lazy) {
    rows.push_back({"memory", format_seconds(r.lazy_s),
                    "post-copy: pages on demand after the downtime, until all arrived"});
  }
  print_table({"phase", "time", "detail"}, rows);
  if (r.scenario) {
    fmt::print("state: {} -> {}: {}\n", sanitize(r.verdict.before), sanitize(r.verdict.after),
               r.verdict.survived ? "survived" : "LOST (" + r.verdict.detail + ")");
  }
  if (!r.checkpoint.empty()) fmt::print("checkpoint '{}' kept in the store\n", r.checkpoint);
  if (!r.checkpoint_on_host.empty()) {
    fmt::print("and on the host of VM '{}': {}\n", r.to, r.checkpoint_on_host);
  }
  if (!r.temporary.empty()) fmt::print("temporary VMs '{}' and '{}' stopped\n", r.from, r.to);
}

void migrate(Context& ctx, MigrateArgs& a) {
  if (a.request.scenario.empty() && (a.request.vm.empty() || a.request.workload.empty())) {
    throw Error("kcr migrate needs VM and WORKLOAD, or --scenario NAME",
                "kcr migrate demo counter, or kcr migrate --scenario counter", ExitCode::usage);
  }
  if (!a.request.scenario.empty() && !a.request.vm.empty()) {
    throw Error("--scenario boots its own VM; leave VM and WORKLOAD out", {}, ExitCode::usage);
  }
  a.request.options = a.flags.to_proto();
  a.request.link = ctx.config().migration_link;
  auto r = engine::migrate(ctx.engine(), a.request);
  for (const auto& w : r.warnings) progress(ctx, "warning: " + w);
  if (ctx.json) {
    print_json(migrate_json(r));
  } else {
    print_migrate(r);
  }
  if (!r.verdict.survived) ctx.exit_code = static_cast<int>(ExitCode::state_lost);
}

}  // namespace

void register_migrate_command(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<MigrateArgs>();
  auto* c = app.add_subcommand(
      "migrate", "Move a workload into another VM (a fresh one by default) and report downtime");
  c->add_option("vm", a->request.vm, "VM the workload runs in");
  c->add_option("workload", a->request.workload, "Workload to move");
  c->add_option("--scenario", a->request.scenario,
                "Instead of VM and WORKLOAD: boot a temporary VM running this built-in "
                "scenario (kcr scenarios ls), move it into a fresh VM, probe it, stop both");
  c->add_option("--image", a->request.image,
                "Guest image of the temporary VMs (with --scenario; default: config, "
                "'default')");
  c->add_option("--to", a->request.to,
                "Destination VM: a running VM, or the name of a fresh VM to boot from the "
                "source's image (default SOURCE-mN)");
  c->add_option("--to-connect", a->request.to_connect,
                "Boot the fresh destination VM on this libvirt daemon (another host's: "
                "qemu+ssh://host2/system, qemu+tcp://host2/system), with the libvirt backend; "
                "default: where the source runs");
  c->add_option("--pre-dump", a->request.pre_dumps,
                "Pre-copy: N rounds of criu pre-dump while the workload runs, so the final "
                "dump (the downtime) carries only pages dirtied since")
      ->check(CLI::Range(0, 20));
  c->add_flag("--lazy-pages", a->request.lazy_pages,
              "Post-copy: restore before the memory moves; pages follow on demand from the "
              "source's page server over a link kcr sets up between the two VMs (addresses: "
              "migration_link in the config file)");
  c->add_flag("--keep-source", a->request.keep_source,
              "Leave the workload running in the source too (a clone, not a move)");
  c->add_option("-o,--name", a->request.name,
                "Name of the checkpoint in between (default "
                "migrate-WORKLOAD-TIMESTAMP)");
  c->add_flag("--keep-checkpoint", a->request.keep_checkpoint,
              "Keep the checkpoint in the store after a successful migration (and, for a "
              "destination on another host, as volume checkpoint-NAME.tar.zst of that "
              "host's kcr pool)");
  c->add_flag("--force", a->request.force,
              "Migrate even when the two guests' kernel or CRIU differ");
  a->flags.add_to(c, CriuFlags::Use::migrate);
  add_json_flag(c, ctx);
  c->footer(
      "The workload is frozen in the source, checkpointed to the host, restored in the\n"
      "destination and only then ended in the source: a failed restore resumes it and\n"
      "keeps the checkpoint in the store. Downtime runs from the freeze to the moment\n"
      "the workload runs in the destination. A kcr-scenario workload is probed before\n"
      "and after; exit status 3 means its state did not survive. --pre-dump needs\n"
      "criu check --feature mem_dirty_track in the source guest; --lazy-pages needs\n"
      "uffd-noncoop in the destination. With --to-connect the checkpoint travels to the\n"
      "other host's VM through its libvirt daemon; nothing else runs there.\n"
      "Examples:\n"
      "  kcr migrate demo counter\n"
      "  kcr migrate demo counter --to demo2 --json\n"
      "  kcr migrate demo big --pre-dump 2\n"
      "  kcr migrate demo big --lazy-pages\n"
      "  kcr migrate demo web --to B --to-connect qemu+ssh://host2/system\n"
      "  kcr migrate demo web --keep-source --tcp-established\n"
      "  kcr migrate --scenario tcp-established --pre-dump 2");
  c->callback([&ctx, a] { migrate(ctx, *a); });
}

}  // namespace kcr::cli
