#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "core/checksum64.hpp"
#include "core/criu_stats.hpp"
#include "core/sha256.hpp"
#include "core/unique_fd.hpp"

namespace kcr::core {

// Bumped when the on-disk layout changes; restore refuses newer formats.
inline constexpr int k_checkpoint_format_version = 1;

struct CheckpointFile {
  std::string path;  // relative: "images/pages-1.img", "dump.log", "stats-dump"
  uint64_t size = 0;
  std::string sha256;  // hex
};

// One round of pre-copy (criu pre-dump while the workload ran). Its files
// are stored under parents/ROUND/.
struct PreDumpRound {
  unsigned round = 0;
  uint64_t dump_ms = 0;   // criu pre-dump in the guest
  uint64_t total_ms = 0;  // including the transfer to the host
  uint64_t pages_written = 0;
  uint64_t bytes = 0;  // image bytes of the round
};

// Everything kcr knows about one checkpoint; stored as manifest.yaml.
struct CheckpointManifest {
  int format_version = k_checkpoint_format_version;
  std::string name;
  std::string created;
  std::string kcr_version;
  std::string criu_version;
  std::string kernel_release;
  std::string image;
  std::string image_hash;
  std::string vm;
  std::string workload;
  std::vector<std::string> argv;
  int pid = 0;
  // The base of the workload's own root filesystem ("sha256:HEX", kcr run --rootfs); empty:
  // it ran on the guest's. Its changes are images/rootfs-diff.tar.
  std::string rootfs_digest;
  proto::CriuOptions options;
  std::vector<CheckpointFile> files;
  std::optional<CriuDumpStats> stats;
  uint64_t dump_ms = 0;   // criu dump in the guest
  uint64_t total_ms = 0;  // kcr checkpoint, request to renamed directory
  // How the final dump's images left the guest: "disk" (its data disk, vm/data_disk.hpp) or
  // "port" (the agent's virtio-serial port); empty in checkpoints of older kcr and imports.
  std::string channel;
  // Pre-copy rounds before the final dump, in order (round K is parent of
  // round K+1; the last is the final dump's parent).
  std::vector<PreDumpRound> pre_dumps;
  // Made by a lazy (post-copy) migration: the memory was served from the
  // source, never stored, so the checkpoint cannot be restored on its own.
  bool lazy_pages = false;

  // Bytes of CRIU image files of the final dump (images/*).
  uint64_t image_bytes() const;
};

// True when PATH may name a file of a checkpoint: "images/NAME" or one of
// dump.log, stats-dump, restore.log, each optionally under "parents/K/" (a
// pre-dump round, K in 1..999); NAME is [A-Za-z0-9._-], no leading dot.
bool is_valid_checkpoint_path(const std::string& path);

// The dump (0: the final one, K: pre-dump round K) and CRIU image name of a
// valid checkpoint path under images/ or parents/K/images/; nullopt for any
// other file.
std::optional<std::pair<unsigned, std::string>> image_of_path(const std::string& path);

// Manifest <-> YAML. Parsing throws kcr::Error naming what is wrong.
std::string manifest_to_yaml(const CheckpointManifest& m);
CheckpointManifest manifest_from_yaml(const std::string& text, const std::string& source);

// Checkpoints on the host: DATA_DIR/checkpoints/NAME/{manifest.yaml, images/,
// dump.log, stats-dump}. A checkpoint directory exists only complete: it is
// written under a ".partial-" name and renamed into place.
// The file in every checkpoint directory that lists the others, with their sizes and digests.
inline constexpr const char* k_manifest = "manifest.yaml";

class CheckpointStore {
 public:
  explicit CheckpointStore(std::string data_dir);

  std::string root() const { return m_root; }
  std::string dir(const std::string& name) const { return m_root + "/" + name; }
  bool exists(const std::string& name) const;

  // Loads NAME's manifest; throws kcr::Error with a hint when there is none.
  CheckpointManifest load(const std::string& name) const;
  std::vector<CheckpointManifest> list() const;

  // Re-hashes every file and compares with the manifest, then checks the
  // CRIU images' magics and framing; throws kcr::Error naming the first file
  // that is missing, resized, altered or not a CRIU image of its kind.
  void verify(const CheckpointManifest& m) const;

  void remove(const std::string& name);

  // Removes what a kcr that died mid-checkpoint left: every ".partial-*"
  // directory whose writer no longer holds its lock. Returns their names.
  std::vector<std::string> clean_abandoned() const;

  // Keeps a CRIU log of a failed operation under DATA_DIR/logs and returns
  // its path.
  std::string keep_log(const std::string& label, const std::string& content) const;

 private:
  std::string m_data_dir;
  std::string m_root;
};

// Receives one checkpoint's files as the agent streams them. Nothing is
// visible in the store until commit(); destroying an uncommitted writer
// removes everything it wrote.
class CheckpointWriter {
 public:
  // Throws when NAME is invalid or already taken. MAX_BYTES bounds what the
  // guest may send in all (a checkpoint cannot outgrow the guest's memory).
  CheckpointWriter(const CheckpointStore& store, const std::string& name,
                   uint64_t max_bytes = UINT64_MAX);
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Appends DATA at OFFSET of PATH. Offsets must be contiguous; offset 0 on
  // a file already started rewrites it. Every path and size is checked: the
  // guest is not trusted.
  void write_chunk(const std::string& path, uint64_t offset, const std::string& data);

  // Closes PATH and checks it against the guest's size and digest (CHECKSUM64
  // when given, else SHA256).
  void file_done(const std::string& path, uint64_t size, const std::string& sha256,
                 const std::string& checksum64 = {});

  // Contents of a small completed file (e.g. dump.log); empty when absent.
  std::string read_small(const std::string& path, std::size_t max_bytes = 16 << 20) const;

  // Checks that M.files matches what was received exactly, fsyncs, writes
  // the manifest and renames the directory into place.
  void commit(CheckpointManifest m);

  uint64_t bytes_received() const { return m_bytes; }

  // The directory being written (completed files can be read from it).
  const std::string& dir() const { return m_tmp; }

  // The completed files with the SHA-256 the host computed, by path.
  std::vector<CheckpointFile> received_files() const;

 private:
  struct OpenFile {
    UniqueFd fd;
    uint64_t size = 0;
    Sha256 hash;
    Checksum64 checksum;
    std::optional<CheckpointFile> done;
  };

  const CheckpointStore& m_store;
  std::string m_name;
  std::string m_tmp;
  UniqueFd m_lock;  // held while writing: clean_abandoned() skips a live writer
  std::map<std::string, OpenFile> m_files;
  uint64_t m_bytes = 0;
  uint64_t m_max_bytes;
  bool m_committed = false;
};

}  // namespace kcr::core
