#pragma once

#include <string>

#include "core/checkpoint_archive.hpp"
#include "vm/engine/checkpoint.hpp"
#include "vm/engine/env.hpp"

namespace kcr::engine {

struct ExportRequest {
  std::string file;
  core::Compression compression = core::Compression::zstd;
};

struct CheckpointExported {
  core::CheckpointManifest manifest;
  core::ArchiveSummary archive;
};

// checkpoint(), then the stored checkpoint exported to an archive (podman's
// --export); the checkpoint stays in the store. A failed export keeps the
// checkpoint and says so.
CheckpointExported checkpoint_and_export(Env& env, const CheckpointRequest& request,
                                         const ExportRequest& to);

// Imports the archive FILE under a fresh name (the archive's checkpoint name,
// or NAME-imported[-N] when taken), then restore()s it (podman's --import);
// REQUEST.checkpoint is ignored. A failed restore keeps the imported
// checkpoint and names it.
RestoreOutcome import_and_restore(Env& env, RestoreRequest request, const std::string& file);

// "exporting 'c1': 120.0 MiB of 1.0 GiB" for a progress line.
std::string archive_progress_line(const std::string& what, uint64_t done, uint64_t total);

}  // namespace kcr::engine
