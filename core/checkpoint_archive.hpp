#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/checkpoint_store.hpp"

namespace kcr::core {

// A checkpoint as one tar file, laid out like podman's exported checkpoints:
//   config.dump            kcr's manifest.yaml (YAML), always the first entry
//   spec.dump              the workload (name, argv, pid, VM, image) as JSON
//   checkpoint/...         the CRIU images of the final dump
//   dump.log, stats-dump   CRIU's log and statistics of the final dump
//   parents/K/checkpoint/..., parents/K/dump.log   pre-dump round K
inline constexpr const char* k_archive_config = "config.dump";
inline constexpr const char* k_archive_spec = "spec.dump";

// The archive entry that holds store path PATH ("images/x" -> "checkpoint/x",
// "manifest.yaml" -> "config.dump", logs keep their names). PATH must be
// manifest.yaml or satisfy is_valid_checkpoint_path.
std::string archive_name_of(const std::string& store_path);
// The inverse: the store path entry NAME holds, or nullopt when NAME is not a
// file a checkpoint archive may hold (spec.dump included: it is not stored).
std::optional<std::string> store_path_of(const std::string& archive_name);

enum class Compression { zstd, gzip, none };

// "zstd", "gzip", "none"; throws kcr::Error (usage) for anything else.
Compression compression_named(const std::string& name);
std::string compression_name(Compression c);
// What FILE's suffix asks for: .tar.zst/.tar.zstd, .tar.gz/.tgz, .tar;
// nullopt for any other name.
std::optional<Compression> compression_for_path(const std::string& file);

// Called at most once a second while an archive is written or read: bytes of
// checkpoint files done so far, and in all.
using ArchiveProgress = std::function<void(uint64_t done, uint64_t total)>;

// What one archive holds or received.
struct ArchiveSummary {
  std::string path;
  Compression compression = Compression::none;
  uint64_t files = 0;          // checkpoint files (config.dump and spec.dump not counted)
  uint64_t content_bytes = 0;  // their bytes
  uint64_t archive_bytes = 0;  // the archive file's size
};

// The most an imported archive may hold in all, whatever its manifest says.
inline constexpr uint64_t k_archive_max_bytes = uint64_t{64} << 30;

// Writes checkpoint NAME of STORE to FILE, streaming (bounded buffers), each
// file re-hashed against the manifest on the way. FILE appears only complete;
// on any failure nothing is left at FILE.
ArchiveSummary export_checkpoint(const CheckpointStore& store, const std::string& name,
                                 const std::string& file, Compression compression,
                                 const ArchiveProgress& progress = {});

struct ImportOptions {
  std::string name;  // the checkpoint's name in the store; empty: the archive's
  // When NAME is empty and the archive's name is taken, pick NAME-imported[-N]
  // instead of refusing.
  bool fresh_name_if_taken = false;
  uint64_t max_bytes = k_archive_max_bytes;
};

// Reads the archive FILE (any compression libarchive knows) into STORE
// through a CheckpointWriter: the archive is not trusted. Every entry must be
// a regular file the manifest lists (or one of the known directories), with
// its size and sha256; anything else is refused naming the entry, and then
// nothing is left in the store. Returns the stored manifest.
CheckpointManifest import_checkpoint(const CheckpointStore& store, const std::string& file,
                                     const ImportOptions& options = {},
                                     const ArchiveProgress& progress = {});

// Called with each checked file of an archive as it streams: DATA with its
// bytes in order (store PATH, offset), then DONE once its size and digest
// matched the manifest.
struct ArchiveVisitor {
  std::function<void(const std::string& path, uint64_t offset, const std::string& bytes)> data;
  std::function<void(const CheckpointFile& file)> done;
};

// Reads the archive FILE with every check import makes, handing its files to
// VISITOR; throws kcr::Error naming the first bad entry. Returns the manifest.
CheckpointManifest read_archive(const std::string& file, const ArchiveVisitor& visitor,
                                const ArchiveProgress& progress = {},
                                uint64_t max_bytes = k_archive_max_bytes);

// Checks the archive FILE as import would, without writing anything; throws
// kcr::Error naming the first bad entry. CRIU images are checked too: their
// magics, and the framing of the kinds read entry by entry. Returns the
// archive's manifest.
CheckpointManifest verify_archive(const std::string& file, const ArchiveProgress& progress = {},
                                  uint64_t max_bytes = k_archive_max_bytes);

}  // namespace kcr::core
