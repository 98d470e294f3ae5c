#include "vm/engine/archive.hpp"

#include "core/error.hpp"
#include "core/format.hpp"

namespace kcr::engine {

std::string archive_progress_line(const std::string& what, uint64_t done, uint64_t total) {
  return what + ": " + core::format_bytes(done) + " of " + core::format_bytes(total);
}

CheckpointExported checkpoint_and_export(Env& env, const CheckpointRequest& request,
                                         const ExportRequest& to) {
  CheckpointExported out;
  out.manifest = checkpoint(env, request);
  env.say("exporting checkpoint '" + out.manifest.name + "' to " + to.file);
  std::string what = "exporting '" + out.manifest.name + "'";
  try {
    out.archive = core::export_checkpoint(
        core::CheckpointStore(env.cfg.data_dir), out.manifest.name, to.file, to.compression,
        [&](uint64_t done, uint64_t total) { env.say(archive_progress_line(what, done, total)); });
  } catch (const Error& e) {
    throw e.with_context("checkpoint '" + out.manifest.name +
                         "' is stored, but exporting it failed");
  }
  return out;
}

RestoreOutcome import_and_restore(Env& env, RestoreRequest request, const std::string& file) {
  core::CheckpointStore store(env.cfg.data_dir);
  core::ImportOptions options;
  options.fresh_name_if_taken = true;
  env.say("importing " + file);
  auto m = core::import_checkpoint(store, file, options, [&](uint64_t done, uint64_t total) {
    env.say(archive_progress_line("importing " + file, done, total));
  });
  request.checkpoint = m.name;
  try {
    return restore(env, request);
  } catch (const Error& e) {
    throw e.with_context("the archive was imported as checkpoint '" + m.name +
                         "' (kept), but restoring it failed");
  }
}

}  // namespace kcr::engine
