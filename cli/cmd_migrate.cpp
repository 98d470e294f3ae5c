#include <fmt/core.h>

#include <chrono>
#include <optional>

#include "cli/checkpoint_output.hpp"
#include "cli/context.hpp"
#include "cli/probe.hpp"
#include "core/checkpoint_store.hpp"
#include "core/error.hpp"
#include "core/names.hpp"
#include "core/scenario.hpp"
#include "core/time.hpp"
#include "vm/checkpoint.hpp"
#include "vm/vm.hpp"

namespace kcr::cli {

namespace {

using Clock = std::chrono::steady_clock;

// The migration link between source and destination (lazy-pages only).
constexpr const char* k_source_link = "10.97.0.1/24";
constexpr const char* k_page_server_address = "10.97.0.1";
constexpr const char* k_destination_link = "10.97.0.2/24";
constexpr unsigned k_page_server_port = 7077;
constexpr std::chrono::minutes k_lazy_limit{10};

struct MigrateArgs {
  std::string vm, workload, to, name;
  unsigned pre_dumps = 0;
  bool lazy_pages = false;
  bool keep_source = false;
  bool keep_checkpoint = false;
  bool force = false;
  CriuFlags flags;
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A destination VM that migrate booted itself: stopped again unless the
// migration succeeded (a failed migration must not leave a VM behind).
struct FreshVm {
  const core::Config& cfg;
  std::string name;
  bool keep = false;
  ~FreshVm() {
    if (name.empty() || keep) return;
    try {
      vm::stop_vm(cfg, name);
    } catch (const Error&) {
    }
  }
};

bool vm_exists(const core::Config& cfg, const std::string& name) {
  for (const auto& v : vm::list_vms(cfg)) {
    if (v.name == name) return v.state == "running";
  }
  return false;
}

// "demo-m1", "demo-m2", ...: the first name no VM has.
std::string fresh_vm_name(const core::Config& cfg, const std::string& source) {
  std::string base = source.substr(0, 56) + "-m";
  auto vms = vm::list_vms(cfg);
  for (unsigned i = 1;; ++i) {
    std::string name = base + std::to_string(i);
    bool taken = false;
    for (const auto& v : vms) taken = taken || v.name == name;
    if (!taken) return name;
  }
}

// Throws kcr::Error unless "criu check --feature FEATURE" passes in the guest.
void require_feature(vm::VmSession& session, const std::string& feature, const std::string& why,
                     const std::string& hint) {
  proto::Request req;
  req.mutable_check()->add_features(feature);
  auto resp = session.call(req, std::chrono::seconds(60));
  for (const auto& f : resp.check().features()) {
    if (f.name() == feature && f.ok()) return;
  }
  std::string said = resp.check().features_size() ? resp.check().features(0).output() : "";
  throw Error(why + ": the guest of VM '" + session.info().name + "' lacks CRIU feature " +
                  feature + (said.empty() ? "" : " (criu: " + sanitize(said) + ")"),
              hint);
}

// Post-copy: the workload runs in DST while its memory still comes from
// SRC's page server. Waits until all of it arrived and returns how long that
// took. When the source dies or CRIU fails, the copy in DST (missing memory)
// is killed and the error says what became of the source.
double finish_lazy(Context& ctx, vm::VmSession& src, vm::VmSession& dst,
                   const std::string& workload, const std::string& staging) {
  progress(ctx, "workload runs in VM '" + dst.info().name + "'; memory follows from VM '" +
                    src.info().name + "' on demand");
  auto start = Clock::now();
  std::string failure;
  bool source_alive = true;
  try {
    for (;;) {
      if (vm::lazy_finish(src, std::chrono::seconds(1))) return seconds_since(start);
      if (!dst.alive()) {
        failure = "VM '" + dst.info().name + "' died while memory was still being copied";
        break;
      }
      if (Clock::now() - start > k_lazy_limit) {
        failure = "the memory did not arrive within 10 minutes";
        break;
      }
    }
  } catch (const Error& e) {
    failure = e.what();
    source_alive = src.alive();
  }
  std::string source_state;
  if (!source_alive) {
    source_state = "VM '" + src.info().name + "' is gone, and the workload's memory with it";
  } else {
    try {
      // CRIU resumes the workload when its page server ends; it may have ended already.
      vm::lazy_finish(src, std::chrono::seconds(10), true);
    } catch (const Error&) {
    }
    try {
      vm::resume_workload(src, workload);
      source_state = "the workload runs on in VM '" + src.info().name + "'";
    } catch (const Error& e) {
      source_state =
          std::string("resuming it in VM '") + src.info().name + "' failed (" + e.what() + ")";
    }
  }
  // The copy in the destination lacks memory: it must not run on.
  std::string copy_state = "VM '" + dst.info().name + "' is gone, and the incomplete copy with it";
  if (dst.alive()) {
    copy_state = "the incomplete copy in VM '" + dst.info().name + "' was killed";
    try {
      vm::end_workload(dst, workload);
    } catch (const Error& e) {
      copy_state = "killing the incomplete copy in VM '" + dst.info().name + "' failed (" +
                   e.what() + "): kcr kill " + dst.info().name + " " + workload +
                   " --signal KILL --all";
    }
    vm::drop_staging(dst, staging);
  }
  throw Error("lazy migration of workload '" + workload + "' failed: " + failure,
              source_state + "; " + copy_state);
}

void migrate(Context& ctx, const MigrateArgs& a) {
  const auto& cfg = ctx.config();
  core::validate_name("VM name", a.vm);
  core::validate_name("workload name", a.workload);
  if (!a.to.empty()) core::validate_name("VM name", a.to);
  if (a.to == a.vm) {
    throw Error("cannot migrate workload '" + a.workload + "' into VM '" + a.vm +
                    "', where it already runs",
                "name another VM with --to, or leave --to out for a fresh VM; kcr cycle "
                "checkpoints and restores within one VM",
                ExitCode::usage);
  }
  if (a.lazy_pages && (a.keep_source || a.pre_dumps > 0)) {
    throw Error(std::string("--lazy-pages cannot be combined with ") +
                    (a.keep_source ? "--keep-source" : "--pre-dump"),
                "a lazy migration moves the workload and its memory follows on demand; use "
                "one mode at a time",
                ExitCode::usage);
  }
  std::string cp_name = a.name.empty() ? default_checkpoint_name(a.workload, "migrate-") : a.name;
  core::validate_name("checkpoint name", cp_name);
  core::CheckpointStore store(cfg.data_dir);
  if (store.exists(cp_name)) {
    throw Error("checkpoint '" + cp_name + "' already exists",
                "choose another name with -o, or remove it with kcr checkpoints rm " + cp_name,
                ExitCode::usage);
  }

  vm::VmSession src(cfg, a.vm);
  auto w = running_workload(src, a.workload);
  if (a.pre_dumps > 0) {
    require_feature(src, "mem_dirty_track", "--pre-dump needs memory tracking",
                    "boot a guest kernel with CONFIG_MEM_SOFT_DIRTY, or migrate without "
                    "--pre-dump");
  }
  const core::Scenario* scenario = core::scenario_for_argv({w.argv().begin(), w.argv().end()});
  proto::CriuOptions options = scenario ? scenario->options : proto::CriuOptions{};
  options.MergeFrom(a.flags.to_proto());
  if (a.keep_source) options.set_leave_running(true);

  // The destination: a running VM named by --to, or a fresh VM booted from
  // the source's image before anything is frozen.
  FreshVm fresh{cfg, ""};
  std::string dst_name = a.to;
  if (dst_name.empty() || !vm_exists(cfg, dst_name)) {
    if (dst_name.empty()) dst_name = fresh_vm_name(cfg, a.vm);
    fresh.name = dst_name;
    start_vm_from_image(ctx, dst_name, src.info().image, nullptr, src.info().memory_mib,
                        src.info().cpus, src.info().accel);
  }
  vm::VmSession dst(cfg, dst_name);
  auto diffs = vm::guest_differences(src.hello().criu_version(), src.hello().kernel_release(),
                                     dst.hello().criu_version(), dst.hello().kernel_release());
  if (!diffs.empty() && !a.force) {
    std::string what;
    for (const auto& d : diffs) what += (what.empty() ? "" : ", ") + d;
    throw Error(
        "VM '" + dst_name + "' runs a different guest than VM '" + a.vm + "' (" + what + ")",
        "migrate into a VM booted from the same guest image, or pass --force to try");
  }
  if (auto taken = find_workload(dst, a.workload)) {
    throw Error("VM '" + dst_name + "' already has a workload named '" + a.workload + "'",
                "kcr rm or kcr kill it there first, or migrate into another VM");
  }

  if (a.lazy_pages) {
    require_feature(dst, "uffd-noncoop", "--lazy-pages needs userfaultfd in the destination",
                    "boot a guest kernel with CONFIG_USERFAULTFD, or migrate without "
                    "--lazy-pages");
    vm::link_vms(src, k_source_link, dst, k_destination_link);
  }

  std::string before;
  if (scenario) before = await_probe(src, a.workload, *scenario, 0);

  vm::DumpPlan plan;
  plan.keep_stopped = true;
  plan.pre_dumps = a.pre_dumps;
  if (a.lazy_pages) plan.lazy_port = k_page_server_port;
  // Pre-copy sends each round to the destination while the workload runs:
  // after the freeze only the final dump's files travel.
  vm::Staged staged{vm::new_staging_name(), {}};
  bool staged_used = false;
  struct DropStaged {
    vm::VmSession& session;
    const std::string& staging;
    const bool& used;
    ~DropStaged() {
      if (!used) vm::drop_staging(session, staging);
    }
  } drop_staged{dst, staged.staging, staged_used};
  plan.on_pre_dump = [&](const core::PreDumpRound& r, const std::string& dir,
                         const std::vector<core::CheckpointFile>& files) {
    std::vector<core::CheckpointFile> images;
    for (const auto& f : files) {
      if (vm::is_image_file(f.path)) images.push_back(f);
    }
    auto t = Clock::now();
    vm::stage_files(dst, staged.staging, dir, images);
    for (const auto& f : images) staged.paths.insert(f.path);
    progress(ctx, fmt::format("pre-dump {}: {} pages ({}) in {} while it runs, sent to '{}' in {}",
                              r.round, r.pages_written, format_bytes(r.bytes),
                              format_seconds(r.total_ms / 1000.0), dst_name,
                              format_seconds(seconds_since(t))));
  };
  auto frozen = Clock::now();
  plan.on_freeze = [&] {
    progress(ctx, "checkpointing workload '" + a.workload + "' in VM '" + a.vm + "'");
    frozen = Clock::now();
  };
  if (a.pre_dumps > 0) progress(ctx, fmt::format("pre-copy: {} rounds", a.pre_dumps));
  auto m = vm::checkpoint_workload(cfg, src, a.workload, cp_name, options, plan);
  double checkpoint_s = seconds_since(frozen);
  // A lazy checkpoint holds no memory: it is useless once the migration ends.
  struct DropLazy {
    core::CheckpointStore& store;
    const core::CheckpointManifest& m;
    ~DropLazy() {
      if (!m.lazy_pages) return;
      try {
        store.remove(m.name);
      } catch (const Error&) {
      }
    }
  } drop_lazy{store, m};

  // The source stays stopped (or, with --keep-source, runs on) until the
  // destination runs: a failed restore resumes it and keeps the checkpoint.
  progress(ctx, "restoring it in VM '" + dst_name + "'");
  vm::RestoreResult r;
  try {
    staged_used = true;  // restore_checkpoint drops the staging area on failure
    vm::RestorePlan rplan;
    rplan.verify_first = false;
    rplan.staged = &staged;
    if (m.lazy_pages) {
      rplan.page_server_address = k_page_server_address;
      rplan.page_server_port = k_page_server_port;
    }
    r = vm::restore_checkpoint(cfg, dst, m, a.workload, {}, a.force, rplan);
  } catch (const Error& e) {
    std::string source_state = "it keeps running in VM '" + a.vm + "'";
    if (!a.keep_source) {
      try {
        // Ending a lazy dump's page server makes CRIU resume the workload.
        if (m.lazy_pages) vm::lazy_finish(src, std::chrono::seconds(10), true);
        vm::resume_workload(src, a.workload);
      } catch (const Error& resume_error) {
        source_state = std::string("resuming it in VM '") + a.vm + "' failed too (" +
                       resume_error.what() + "); kcr kill " + a.vm + " " + a.workload +
                       " --signal CONT --all retries";
      }
    }
    throw Error(
        std::string("migration of workload '") + a.workload + "' failed: " + e.what(),
        (e.hint().empty() ? "" : e.hint() + "\n") +
            "the source workload is not lost: " + source_state +
            (m.lazy_pages ? std::string()
                          : "; checkpoint '" + cp_name + "' stays in the store (kcr restore VM " +
                                cp_name + " uses it)"),
        e.code());
  }
  double downtime_s = seconds_since(frozen);
  double lazy_s = 0;
  if (m.lazy_pages) lazy_s = finish_lazy(ctx, src, dst, a.workload, staged.staging);
  fresh.keep = true;
  if (!a.keep_source) {
    // The workload runs in the destination now: a source that cannot be
    // ended is worth a warning, not a failed migration.
    try {
      vm::end_workload(src, a.workload);
    } catch (const Error& e) {
      progress(ctx, std::string("warning: could not end the source workload: ") + e.what() +
                        "; kcr kill " + a.vm + " " + a.workload + " --signal KILL --all");
    }
  }

  auto verdict = judge_restored(dst, a.workload, scenario, before);
  if (!a.keep_checkpoint) store.remove(cp_name);

  double dump_s = m.dump_ms / 1000.0;
  double transfer_s = checkpoint_s > dump_s ? checkpoint_s - dump_s : 0.0;
  double upload_s = r.upload_ms / 1000.0;
  double restore_s = r.total_ms > r.upload_ms ? (r.total_ms - r.upload_ms) / 1000.0 : 0.0;
  double frozen_s = m.stats ? m.stats->frozen_time / 1e6 : 0.0;

  if (ctx.json) {
    auto j = core::Json::object();
    j.set("ok", verdict.survived);
    j.set("workload", a.workload);
    j.set("from", a.vm);
    j.set("to", dst_name);
    j.set("fresh_vm", !fresh.name.empty());
    j.set("pid", r.workload.pid());
    j.set("source", a.keep_source ? "running" : "ended");
    j.set("scenario", scenario ? core::Json(scenario->name) : core::Json());
    set_verdict(j, verdict);
    j.set("mode", m.lazy_pages ? "post-copy" : (m.pre_dumps.empty() ? "plain" : "pre-copy"));
    j.set("downtime_seconds", downtime_s);
    j.set("lazy_seconds", lazy_s);
    j.set("dump_seconds", dump_s);
    j.set("frozen_seconds", frozen_s);
    j.set("transfer_seconds", transfer_s);
    j.set("upload_seconds", upload_s);
    j.set("restore_seconds", restore_s);
    j.set("criu_restore_seconds", r.restore_ms / 1000.0);
    j.set("image_bytes", m.image_bytes());
    j.set("pages_written", m.stats ? m.stats->pages_written : 0);
    auto rounds = core::Json::array();
    for (const auto& pr : m.pre_dumps) {
      auto rj = core::Json::object();
      rj.set("round", pr.round);
      rj.set("seconds", pr.total_ms / 1000.0);
      rj.set("criu_seconds", pr.dump_ms / 1000.0);
      rj.set("pages_written", pr.pages_written);
      rj.set("image_bytes", pr.bytes);
      rounds.push(rj);
    }
    j.set("pre_dumps", rounds);
    j.set("checkpoint", a.keep_checkpoint ? core::Json(cp_name) : core::Json());
    print_json(j);
  } else {
    fmt::print("workload '{}' migrated from VM '{}' to VM '{}' (guest pid {}), source {}\n",
               a.workload, a.vm, dst_name, r.workload.pid(),
               a.keep_source ? "left running" : "ended");
    std::vector<std::vector<std::string>> rows;
    for (const auto& pr : m.pre_dumps) {
      rows.push_back(
          {fmt::format("pre-dump {}", pr.round), format_seconds(pr.total_ms / 1000.0),
           fmt::format("{} pages, {} while it ran", pr.pages_written, format_bytes(pr.bytes))});
    }
    std::vector<std::vector<std::string>> phases = {
        {"dump", format_seconds(dump_s),
         m.lazy_pages
             ? fmt::format("CRIU in '{}', memory left behind its page server", a.vm)
             : fmt::format("CRIU in '{}', workload frozen {}, {} pages", a.vm,
                           format_seconds(frozen_s), m.stats ? m.stats->pages_written : 0)},
        {"transfer", format_seconds(transfer_s),
         fmt::format("{} of images to the host, the part left after the dump",
                     format_bytes(m.image_bytes()))},
        {"upload", format_seconds(upload_s), "host to '" + dst_name + "'"},
        {"restore", format_seconds(restore_s),
         fmt::format("CRIU in '{}' {}", dst_name, format_seconds(r.restore_ms / 1000.0))},
        {"downtime", format_seconds(downtime_s), "frozen in the source to running"}};
    if (m.lazy_pages) {
      phases.push_back({"memory", format_seconds(lazy_s),
                        "post-copy: pages on demand after the downtime, until all arrived"});
    }
    rows.insert(rows.end(), phases.begin(), phases.end());
    print_table({"phase", "time", "detail"}, rows);
    if (scenario) {
      fmt::print("state: {} -> {}: {}\n", sanitize(verdict.before), sanitize(verdict.after),
                 verdict.survived ? "survived" : "LOST (" + verdict.detail + ")");
    }
    if (a.keep_checkpoint) fmt::print("checkpoint '{}' kept in the store\n", cp_name);
  }
  if (!verdict.survived) ctx.exit_code = static_cast<int>(ExitCode::state_lost);
}

}  // namespace

void register_migrate_command(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<MigrateArgs>();
  auto* c = app.add_subcommand(
      "migrate", "Move a workload into another VM (a fresh one by default) and report downtime");
  c->add_option("vm", a->vm, "VM the workload runs in")->required();
  c->add_option("workload", a->workload, "Workload to move")->required();
  c->add_option("--to", a->to,
                "Destination VM: a running VM, or the name of a fresh VM to boot from the "
                "source's image (default SOURCE-mN)");
  c->add_option("--pre-dump", a->pre_dumps,
                "Pre-copy: N rounds of criu pre-dump while the workload runs, so the final "
                "dump (the downtime) carries only pages dirtied since")
      ->check(CLI::Range(0, 20));
  c->add_flag("--lazy-pages", a->lazy_pages,
              "Post-copy: restore before the memory moves; pages follow on demand from the "
              "source's page server over a link kcr sets up between the two VMs");
  c->add_flag("--keep-source", a->keep_source,
              "Leave the workload running in the source too (a clone, not a move)");
  c->add_option("-o,--name", a->name,
                "Name of the checkpoint in between (default "
                "migrate-WORKLOAD-TIMESTAMP)");
  c->add_flag("--keep-checkpoint", a->keep_checkpoint,
              "Keep the checkpoint in the store after a successful migration");
  c->add_flag("--force", a->force, "Migrate even when the two guests' kernel or CRIU differ");
  a->flags.add_to(c, CriuFlags::Use::migrate);
  add_json_flag(c, ctx);
  c->footer(
      "The workload is frozen in the source, checkpointed to the host, restored in the\n"
      "destination and only then ended in the source: a failed restore resumes it and\n"
      "keeps the checkpoint in the store. Downtime runs from the freeze to the moment\n"
      "the workload runs in the destination. A kcr-scenario workload is probed before\n"
      "and after; exit status 3 means its state did not survive. --pre-dump needs\n"
      "criu check --feature mem_dirty_track in the source guest; --lazy-pages needs\n"
      "uffd-noncoop in the destination.\n"
      "Examples:\n"
      "  kcr migrate demo counter\n"
      "  kcr migrate demo counter --to demo2 --json\n"
      "  kcr migrate demo big --pre-dump 2\n"
      "  kcr migrate demo big --lazy-pages\n"
      "  kcr migrate demo web --keep-source --tcp-established");
  c->callback([&ctx, a] { migrate(ctx, *a); });
}

}  // namespace kcr::cli
