#include "vm/engine/migrate.hpp"

#include <fmt/core.h>

#include <unistd.h>
#include <chrono>
#include <memory>

#include "core/checkpoint_archive.hpp"
#include "core/error.hpp"
#include "core/fault.hpp"
#include "core/files.hpp"
#include "core/format.hpp"
#include "core/names.hpp"
#include "vm/checkpoint.hpp"
#include "vm/engine/probe.hpp"
#include "vm/libvirt_remote.hpp"
#include "vm/rootfs.hpp"

namespace kcr::engine {

namespace {

using Clock = std::chrono::steady_clock;
using core::seconds_since;

constexpr std::chrono::minutes k_lazy_limit{10};

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
                  feature + (said.empty() ? "" : " (criu: " + said + ")"),
              hint);
}

// Refuses what cannot work before anything is touched.
void validate(const MigrateRequest& a, core::CheckpointStore& store, const std::string& cp_name) {
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
  if (a.lazy_pages) core::validate_migration_link(a.link);
  if (a.lazy_pages && !a.to_connect.empty() && !vm::libvirt_uri_is_local(a.to_connect)) {
    throw Error("--lazy-pages cannot reach a VM on another host (" + a.to_connect + ")",
                "the page server's link joins two VMs of one host; migrate to " + a.to_connect +
                    " without --lazy-pages (plain or --pre-dump)",
                ExitCode::usage);
  }
  core::validate_name("checkpoint name", cp_name);
  if (store.exists(cp_name)) {
    throw Error("checkpoint '" + cp_name + "' already exists",
                "choose another name with -o, or remove it with kcr checkpoints rm " + cp_name,
                ExitCode::usage);
  }
}

// One migration, phase by phase. Every failure after the freeze goes
// through roll_back(), the one place that undoes a migration.
class Migration {
 public:
  Migration(Env& env, const MigrateRequest& a)
      : m_env(env),
        m_a(a),
        m_store(env.cfg.data_dir),
        m_cp_name(a.name.empty() ? default_checkpoint_name(a.workload, "migrate-") : a.name),
        m_fresh(env.vms) {}

  MigrateResult run();

 private:
  void prepare();
  void open_destination();
  void dump();
  void restore();
  void finish_lazy();
  void end_source();
  MigrateResult result() const;
  void keep_on_destination_host(MigrateResult& out);
  // Undoes what the migration did: the copy in the destination ended (a
  // lazy restore lacks memory), the source given its workload back, the
  // staging dropped; a fresh destination is stopped by m_fresh. Returns what
  // became of the source and of the copy.
  std::pair<std::string, std::string> roll_back();
  std::string give_back_source();
  std::string end_copy();
  // A progress line for phase PHASE, with the time since the migration began.
  void say(const std::string& phase, const std::string& detail) const;

  Env& m_env;
  const MigrateRequest& m_a;
  core::CheckpointStore m_store;
  std::string m_cp_name;
  OwnedVm m_fresh;
  std::unique_ptr<vm::VmSession> m_src, m_dst;
  const core::Scenario* m_scenario = nullptr;
  proto::CriuOptions m_options;
  std::string m_before;
  vm::Staged m_staged{vm::new_staging_name(), {}};
  core::CheckpointManifest m_m;
  bool m_dumped = false;    // the source is stopped (or lazily held) from here on
  bool m_restored = false;  // a copy runs in the destination
  vm::RestoreResult m_r;
  Clock::time_point m_started = Clock::now();
  Clock::time_point m_frozen;
  double m_stored_s = 0, m_downtime_s = 0, m_lazy_s = 0;
  std::vector<std::string> m_warnings;
};

void Migration::say(const std::string& phase, const std::string& detail) const {
  m_env.say(fmt::format("[{:.1f} s] {}: {}", seconds_since(m_started), phase, detail));
}

void Migration::prepare() {
  validate(m_a, m_store, m_cp_name);
  m_env.clean_store();
  m_src = m_env.vms.open(m_a.vm);
  auto w = running_workload(*m_src, m_a.workload);
  if (m_a.pre_dumps > 0) {
    require_feature(*m_src, "mem_dirty_track", "--pre-dump needs memory tracking",
                    "boot a guest kernel with CONFIG_MEM_SOFT_DIRTY, or migrate without "
                    "--pre-dump");
  }
  m_scenario = core::scenario_for_argv({w.argv().begin(), w.argv().end()});
  m_options = m_scenario ? m_scenario->options : proto::CriuOptions{};
  m_options.MergeFrom(m_a.options);
  if (m_a.keep_source) m_options.set_leave_running(true);
  open_destination();
  // A root filesystem's base goes into the destination while the workload still runs: after
  // the freeze only its changes travel.
  if (!w.rootfs_digest().empty()) {
    say("root filesystem", "putting its base into VM '" + m_dst->info().name + "'");
    vm::put_base(
        *m_dst, w.rootfs_digest(),
        vm::base_for_restore(m_env.cfg, w.rootfs_digest(), {}, "workload '" + m_a.workload + "'"),
        m_env.transfer);
  }
  if (m_a.lazy_pages) {
    require_feature(*m_dst, "uffd-noncoop", "--lazy-pages needs userfaultfd in the destination",
                    "boot a guest kernel with CONFIG_USERFAULTFD, or migrate without "
                    "--lazy-pages");
    vm::link_vms(*m_src, m_a.link.source, *m_dst, m_a.link.destination);
    core::fault_point("migrate.after-link");
  }
  if (m_scenario) m_before = await_probe(*m_src, m_a.workload, *m_scenario, 0);
}

// A running VM named by --to, or a fresh VM booted from the source's image
// before anything is frozen; refused when it could not take the workload.
void Migration::open_destination() {
  std::string dst_name = m_a.to;
  if (dst_name.empty() || !m_env.vms.running(dst_name)) {
    if (dst_name.empty()) dst_name = fresh_vm_name(m_env.vms, m_a.vm);
    const auto& s = m_src->info();
    say("boot", "starting destination VM '" + dst_name + "'");
    // --to-connect: a libvirt daemon, so the libvirt backend, and the config's accelerator
    // (the source's may be KVM, which that host may lack).
    const bool there = !m_a.to_connect.empty();
    m_fresh.start({dst_name, s.image, s.memory_mib, s.cpus, there ? std::string() : s.accel,
                   there ? std::string("libvirt") : s.backend, there ? m_a.to_connect : s.connect});
  }
  m_dst = m_env.vms.open(dst_name);
  if (!m_a.to_connect.empty() && m_dst->info().connect != m_a.to_connect) {
    const auto& i = m_dst->info();
    throw Error("VM '" + dst_name + "' runs on " +
                    (i.connect.empty() ? "this host's QEMU backend" : i.connect) + ", not on " +
                    m_a.to_connect,
                "leave --to-connect out to migrate into it, or name a new VM with --to for kcr "
                "to boot on " +
                    m_a.to_connect,
                ExitCode::usage);
  }
  auto diffs =
      vm::guest_differences(m_src->hello().criu_version(), m_src->hello().kernel_release(),
                            m_dst->hello().criu_version(), m_dst->hello().kernel_release());
  if (!diffs.empty() && !m_a.force) {
    std::string what;
    for (const auto& d : diffs) what += (what.empty() ? "" : ", ") + d;
    throw Error(
        "VM '" + dst_name + "' runs a different guest than VM '" + m_a.vm + "' (" + what + ")",
        "migrate into a VM booted from the same guest image, or pass --force to try");
  }
  // An exited one (a failed migration's killed copy) is replaced, as the agent allows.
  if (auto there = find_workload(*m_dst, m_a.workload); there && there->state() != "exited") {
    throw Error("VM '" + dst_name + "' already has a workload named '" + m_a.workload + "'",
                "kcr kill it there first, or migrate into another VM");
  }
}

void Migration::dump() {
  vm::DumpPlan plan;
  plan.keep_stopped = true;
  plan.pre_dumps = m_a.pre_dumps;
  if (m_a.lazy_pages) plan.lazy_port = m_a.link.port;
  // Pre-copy sends each round to the destination while the workload runs:
  // after the freeze only the final dump's files travel.
  plan.on_pre_dump = [&](const core::PreDumpRound& r, const std::string& dir,
                         const std::vector<core::CheckpointFile>& files) {
    std::vector<core::CheckpointFile> images;
    for (const auto& f : files) {
      if (vm::is_image_file(f.path)) images.push_back(f);
    }
    auto t = Clock::now();
    const std::string round = fmt::format("pre-dump {} of {}", r.round, m_a.pre_dumps);
    vm::stage_files(*m_dst, m_staged.staging, dir, images, m_env.transfer,
                    round + " to VM '" + m_dst->info().name + "'");
    for (const auto& f : images) m_staged.paths.insert(f.path);
    core::fault_point("migrate.after-pre-dump");
    say(round, fmt::format("{} pages ({}) in {} while it runs, sent to '{}' in {}", r.pages_written,
                           core::format_bytes(r.bytes), core::format_seconds(r.total_ms / 1000.0),
                           m_dst->info().name, core::format_seconds(seconds_since(t))));
  };
  m_frozen = Clock::now();
  plan.on_freeze = [&] {
    say("freeze", "checkpointing workload '" + m_a.workload + "' in VM '" + m_a.vm + "'");
    m_frozen = Clock::now();
  };
  plan.on_transfer = m_env.transfer;
  if (m_a.pre_dumps > 0) {
    say("pre-copy", fmt::format("{} rounds while the workload runs", m_a.pre_dumps));
  }
  // checkpoint_workload resumes the workload itself when it fails.
  m_m = vm::checkpoint_workload(m_env.cfg, *m_src, m_a.workload, m_cp_name, m_options, plan);
  m_dumped = true;
  m_stored_s = seconds_since(m_frozen);
  say("dump and transfer",
      fmt::format("{} on the host, CRIU dump {}", core::format_bytes(m_m.image_bytes()),
                  core::format_seconds(m_m.dump_ms / 1000.0)));
  core::fault_point("migrate.after-dump");
}

void Migration::restore() {
  say("restore", "restoring it in VM '" + m_dst->info().name + "'");
  vm::RestorePlan rplan;
  rplan.on_transfer = m_env.transfer;
  rplan.verify_first = false;  // just received and hashed
  rplan.staged = &m_staged;
  if (m_m.lazy_pages) {
    rplan.page_server_address = m_a.link.source_host();
    rplan.page_server_port = m_a.link.port;
  }
  m_r = vm::restore_checkpoint(m_env.cfg, *m_dst, m_m, m_a.workload, {}, m_a.force, rplan);
  m_restored = true;
  m_downtime_s = seconds_since(m_frozen);
  say("resume", fmt::format("the workload runs in VM '{}' (downtime {})", m_dst->info().name,
                            core::format_seconds(m_downtime_s)));
}

// Post-copy: the workload runs in the destination while its memory still
// comes from the source's page server; waits until all of it arrived.
void Migration::finish_lazy() {
  say("memory", "the workload runs in VM '" + m_dst->info().name + "'; memory follows from VM '" +
                    m_a.vm + "' on demand");
  auto start = Clock::now();
  for (;;) {
    core::fault_point("migrate.during-memory");
    if (vm::lazy_finish(*m_src, std::chrono::seconds(1))) break;
    if (!m_dst->alive()) {
      throw Error("VM '" + m_dst->info().name + "' died while memory was still being copied");
    }
    if (Clock::now() - start > k_lazy_limit) {
      throw Error("the memory did not arrive within 10 minutes");
    }
  }
  m_lazy_s = seconds_since(start);
  say("memory", "all of it arrived in " + core::format_seconds(m_lazy_s));
}

void Migration::end_source() {
  if (m_a.keep_source) return;
  // The workload runs in the destination now: a source that cannot be
  // ended is worth a warning, not a failed migration.
  try {
    vm::end_workload(*m_src, m_a.workload);
  } catch (const Error& e) {
    m_warnings.push_back(std::string("could not end the source workload: ") + e.what() +
                         "; kcr kill " + m_a.vm + " " + m_a.workload + " --signal KILL --all");
  }
}

std::string Migration::give_back_source() {
  const std::string& vm = m_a.vm;
  if (m_a.keep_source) return "it keeps running in VM '" + vm + "'";
  if (!m_src->alive()) {
    return "VM '" + vm + "' is gone" +
           (m_m.lazy_pages ? ", and the workload's memory with it" : "");
  }
  try {
    // Ending a lazy dump's page server makes CRIU resume the workload; it
    // may have ended already.
    if (m_m.lazy_pages) {
      try {
        vm::lazy_finish(*m_src, std::chrono::seconds(10), true);
      } catch (const Error&) {
      }
    }
    vm::resume_workload(*m_src, m_a.workload);
    return m_m.lazy_pages ? "the workload runs on in VM '" + vm + "'"
                          : "it keeps running in VM '" + vm + "'";
  } catch (const Error& e) {
    return std::string("resuming it in VM '") + vm + "' failed (" + e.what() + "); kcr kill " + vm +
           " " + m_a.workload + " --signal CONT --all retries";
  }
}

std::string Migration::end_copy() {
  const std::string& dst = m_dst->info().name;
  if (!m_dst->alive()) return "VM '" + dst + "' is gone, and the incomplete copy with it";
  vm::drop_staging(*m_dst, m_staged.staging);
  try {
    vm::end_workload(*m_dst, m_a.workload);
    return "the incomplete copy in VM '" + dst + "' was killed";
  } catch (const Error& e) {
    return "killing the incomplete copy in VM '" + dst + "' failed (" + e.what() + "): kcr kill " +
           dst + " " + m_a.workload + " --signal KILL --all";
  }
}

std::pair<std::string, std::string> Migration::roll_back() {
  std::string copy;
  if (m_restored) {
    copy = end_copy();
  } else if (m_dst && m_dst->alive()) {
    vm::drop_staging(*m_dst, m_staged.staging);
  }
  std::string source = m_dumped ? give_back_source() : std::string();
  // A lazy checkpoint holds no memory: useless once the migration ended.
  if (m_dumped && m_m.lazy_pages) {
    try {
      m_store.remove(m_m.name);
    } catch (const Error&) {
    }
  }
  return {source, copy};
}

MigrateResult Migration::run() {
  try {
    prepare();
    dump();
  } catch (const Error&) {
    roll_back();  // nothing frozen yet: the staging and a fresh destination go
    throw;
  }
  try {
    restore();
  } catch (const Error& e) {
    auto [source, copy] = roll_back();
    throw Error("migration of workload '" + m_a.workload + "' failed: " + e.what(),
                (e.hint().empty() ? "" : e.hint() + "\n") +
                    "the source workload is not lost: " + source +
                    (m_m.lazy_pages
                         ? std::string()
                         : "; checkpoint '" + m_cp_name + "' stays in the store (kcr restore VM " +
                               m_cp_name + " uses it)"),
                e.code());
  }
  if (m_m.lazy_pages) {
    try {
      finish_lazy();
    } catch (const Error& e) {
      auto [source, copy] = roll_back();
      throw Error("lazy migration of workload '" + m_a.workload + "' failed: " + e.what(),
                  source + "; " + copy);
    }
    m_store.remove(m_m.name);
  }
  m_fresh.keep();
  core::fault_point("migrate.before-ending-source");
  end_source();
  MigrateResult out = result();
  out.verdict = judge_restored(*m_dst, m_a.workload, m_scenario, m_before, m_env.settle);
  if (!m_a.keep_checkpoint && !m_m.lazy_pages) m_store.remove(m_cp_name);
  if (!out.checkpoint.empty()) keep_on_destination_host(out);
  return out;
}

// A destination on another host keeps the checkpoint there too, as an archive kcr
// checkpoints import takes; the migration succeeded whatever becomes of that copy.
void Migration::keep_on_destination_host(MigrateResult& out) {
  const std::string volume = "checkpoint-" + m_cp_name + ".tar.zst";
  try {
    out.checkpoint_on_host =
        m_dst->backend().keep_on_vm_host(m_dst->info(), volume, [&](const std::string& file) {
          say("keep",
              "archiving checkpoint '" + m_cp_name + "' for the host of VM '" + out.to + "'");
          core::export_checkpoint(m_store, m_cp_name, file, core::Compression::zstd);
        });
  } catch (const std::exception& e) {
    out.warnings.push_back("checkpoint '" + m_cp_name +
                           "' is kept in this host's store only: " + e.what());
  }
}

MigrateResult Migration::result() const {
  MigrateResult out;
  out.workload = m_a.workload;
  out.from = m_a.vm;
  out.to = m_dst->info().name;
  out.fresh_vm = m_fresh.owns();
  out.pid = m_r.workload.pid();
  out.source_ended = !m_a.keep_source;
  out.scenario = m_scenario;
  out.mode = m_m.lazy_pages ? "post-copy" : (m_m.pre_dumps.empty() ? "plain" : "pre-copy");
  out.downtime_s = m_downtime_s;
  out.lazy_s = m_lazy_s;
  out.timings = timings_of(m_m, m_r, m_stored_s);
  out.pre_dumps = m_m.pre_dumps;
  out.checkpoint = m_a.keep_checkpoint && !m_m.lazy_pages ? m_cp_name : "";
  out.warnings = m_warnings;
  return out;
}

}  // namespace

// kcr migrate --scenario: the scenario in a temporary source VM, moved into a
// fresh VM; both stopped at the end, whatever happened.
MigrateResult migrate_scenario(Env& env, const MigrateRequest& request) {
  if (!request.to.empty()) {
    throw Error("--to is for migrating a running workload; --scenario moves into a fresh VM", {},
                ExitCode::usage);
  }
  const auto& s = core::find_scenario(request.scenario);
  MigrateRequest r = request;
  r.vm = request.temp_vm.empty() ? "migrate-" + std::to_string(::getpid()) : request.temp_vm;
  r.workload = s.name;
  r.to = r.vm + "-m1";
  // Named after the temporary VM: suite cases of one scenario run at the same time.
  if (r.name.empty()) r.name = r.vm + "-" + s.name;
  r.options.MergeFrom(s.options);
  env.clean_store();
  OwnedVm src(env.vms);
  env.say("starting temporary VM '" + r.vm + "'");
  StartSpec spec;
  spec.name = r.vm;
  spec.image = request.image;
  src.start(spec);
  {
    auto session = env.vms.open(r.vm);
    env.say("starting scenario '" + s.name + "': " + s.description);
    start_scenario(*session, s);
    await_probe(*session, s.name, s, s.warmup);
  }
  struct StopDestination {
    Env& env;
    std::string name;
    ~StopDestination() {
      try {
        if (env.vms.running(name)) env.vms.stop(name);
      } catch (...) {
      }
    }
  } dst{env, r.to};
  auto result = Migration(env, r).run();
  result.temporary = s.name;
  return result;
}

MigrateResult migrate(Env& env, const MigrateRequest& request) {
  if (request.vm.empty() && request.workload.empty() && !request.scenario.empty()) {
    return migrate_scenario(env, request);
  }
  if (!request.scenario.empty() || !request.image.empty()) {
    throw Error(
        "--scenario and --image are for a temporary VM; VM and WORKLOAD name a running "
        "one",
        "give one or the other", ExitCode::usage);
  }
  return Migration(env, request).run();
}

}  // namespace kcr::engine
