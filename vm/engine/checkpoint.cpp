#include "vm/engine/checkpoint.hpp"

#include "core/error.hpp"
#include "core/names.hpp"
#include "core/time.hpp"

namespace kcr::engine {

std::string default_checkpoint_name(const std::string& workload, const std::string& prefix) {
  std::string stamp;
  for (char c : core::now_iso8601()) {  // 2026-11-25T06:53:02Z
    if (c != '-' && c != ':' && c != 'Z') stamp += c == 'T' ? '-' : c;
  }
  return prefix + workload.substr(0, 40) + "-" + stamp;
}

void Env::clean_store() const {
  for (const auto& name : core::CheckpointStore(cfg.data_dir).clean_abandoned()) {
    say("removed " + name + ", a checkpoint a killed kcr left unfinished");
  }
}

core::CheckpointManifest checkpoint(Env& env, const CheckpointRequest& request) {
  env.clean_store();
  core::validate_name("workload name", request.workload);
  std::string name =
      request.name.empty() ? default_checkpoint_name(request.workload) : request.name;
  core::validate_name("checkpoint name", name);
  auto session = env.vms.open(request.vm);
  env.say("checkpointing workload '" + request.workload + "' of VM '" + request.vm + "'");
  vm::DumpPlan plan;
  plan.transfer = request.transfer;
  plan.on_transfer = env.transfer;
  return vm::checkpoint_workload(env.cfg, *session, request.workload, name, request.options, plan);
}

RestoreOutcome restore(Env& env, const RestoreRequest& request) {
  env.clean_store();
  core::CheckpointStore store(env.cfg.data_dir);
  RestoreOutcome out;
  out.manifest = store.load(request.checkpoint);
  auto session = env.vms.open(request.vm);
  env.say("restoring checkpoint '" + out.manifest.name + "' into VM '" + request.vm + "'");
  vm::RestorePlan plan;
  plan.on_transfer = env.transfer;
  plan.rootfs_path = request.rootfs;
  out.restore = vm::restore_checkpoint(env.cfg, *session, out.manifest, request.name,
                                       request.options, request.force, plan);
  return out;
}

Timings timings_of(const core::CheckpointManifest& m, const vm::RestoreResult& r,
                   std::optional<double> stored_s) {
  Timings t;
  t.dump = m.dump_ms / 1000.0;
  t.checkpoint = stored_s ? *stored_s : m.total_ms / 1000.0;
  t.transfer = t.checkpoint > t.dump ? t.checkpoint - t.dump : 0.0;
  t.upload = r.upload_ms / 1000.0;
  t.restore = r.total_ms > r.upload_ms ? (r.total_ms - r.upload_ms) / 1000.0 : 0.0;
  t.restore_total = r.total_ms / 1000.0;
  t.criu_restore = r.restore_ms / 1000.0;
  t.frozen = m.stats ? m.stats->frozen_time / 1e6 : 0.0;
  t.image_bytes = m.image_bytes();
  t.pages_written = m.stats ? m.stats->pages_written : 0;
  return t;
}

}  // namespace kcr::engine
