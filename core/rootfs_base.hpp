#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

// A user's container root filesystem (`kcr run --rootfs PATH`) turned into one canonical tar that
// kcr streams into the guest, where GNU tar extracts it as the workload's root. PATH is not
// trusted: every entry is checked so that extracting the canonical tar stays inside the target
// directory and makes no device nodes.
namespace kcr::core {

struct RootfsLimits {
  std::uint64_t max_bytes = 16ULL << 30;  // file bytes in all
  std::uint64_t max_entries = 2'000'000;  // entries read in all, skipped ones included
  // Bytes of path names the checks keep in memory (every entry's path and its parents'), which
  // bounds what a hostile archive of deep, distinct paths can make kcr hold.
  std::uint64_t max_path_bytes = 1ULL << 30;
};

struct RootfsBase {
  std::string digest;    // "sha256:" + 64 lowercase hex: SHA-256 of the canonical tar's bytes
  std::string tar_path;  // STORE_DIR/<64 hex>.tar
  std::uint64_t tar_bytes = 0;
  std::uint64_t entries = 0;          // entries in the canonical tar
  std::uint64_t file_bytes = 0;       // bytes of regular files' content in it
  std::uint64_t skipped_devices = 0;  // device nodes under dev/ left out
};

// Called with the bytes of file content read so far; may be empty.
using RootfsProgress = std::function<void(std::uint64_t bytes_done)>;

// Reads PATH (a directory, or a tar archive, optionally gzip/zstd/xz/bzip2-compressed), checks
// every entry and writes the canonical tar into STORE_DIR (created 0700 if missing): first as
// STORE_DIR/.partial-<random>, fsync'd, renamed to <hex>.tar (an existing one of that digest is
// kept and the partial removed). On any error nothing is left in STORE_DIR. Throws kcr::Error
// naming PATH, the entry and what is wrong, with a hint saying what to do.
//
// The canonical tar (pax restricted, uncompressed) holds, in order, every entry but the root
// directory itself, each with only its relative path, type, permission bits (07777), numeric uid
// and gid, mtime (nanoseconds only where an entry needs a pax header anyway), size, and symlink or
// hardlink target; no xattrs (security.capability is not carried yet). A directory is walked
// without following any symbolic link, each directory's entries sorted by name bytes, parents
// before children, a file's further names becoming hard links to its first; a tar archive's
// entries keep the archive's order. The same input gives the same bytes and digest.
//
// Refused, naming the entry: an absolute path, a '..', '.' or empty component, a path over 4096
// or a component over 255 bytes; an entry below an earlier symlink or other non-directory; a path
// twice (unless both are directories); a hard link to anything but an earlier regular file; a
// device node outside dev/; more than LIMITS allow; no entries at all. Device nodes under dev/ are
// left out and counted (kcr gives every workload a minimal /dev of its own). A directory's
// sockets are left out; a tar that claims one is refused. FIFOs and symlinks with any target are
// kept (a target resolves inside the workload's root at run time; kcr never follows one).
RootfsBase import_rootfs_base(const std::string& path, const std::string& store_dir,
                              const RootfsLimits& limits = {}, const RootfsProgress& progress = {});

// True when TEXT is "sha256:" + 64 lowercase hex.
bool is_rootfs_digest(std::string_view text);

}  // namespace kcr::core
