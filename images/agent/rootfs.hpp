#pragma once

// A workload with a root filesystem of its own (kcr run --rootfs): its base, put into the guest
// once per VM by the host, and the workload's root, an overlay whose upper layer is its own.
// ARCHITECTURE.md, "A workload's root filesystem".

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent.pb.h"
#include "core/checksum64.hpp"
#include "core/unique_fd.hpp"

namespace kcr::agent {

// Where bases are extracted (one directory per digest) and workloads' roots are made (one
// directory per workload: upper, work, merged, etc).
inline constexpr const char* k_bases_dir = "/run/kcr-bases";
inline constexpr const char* k_roots_dir = "/run/kcr-roots";
// The static init copied into each such workload's /run (workload_init.hpp), and the path it
// has there.
inline constexpr const char* k_guest_init_binary = "/usr/lib/kcr/kcr-init";
inline constexpr const char* k_rootfs_init_path = "/run/kcr/init";

// Files a checkpoint of such a workload carries in its images directory, beside CRIU's: its
// base's digest and hostname, the upper layer (whiteouts and opaque directories included) and
// the three files kcr bind-mounts into it.
inline constexpr const char* k_rootfs_file = "kcr-rootfs.txt";
inline constexpr const char* k_rootfs_diff = "rootfs-diff.tar";

// True for "sha256:" + 64 lowercase hex digits.
bool is_base_digest(std::string_view digest);

// Takes a base's tar stream chunk by chunk into a GNU tar extracting it
// (proto::PutBaseRequest); one upload at a time.
class BaseUploads {
 public:
  BaseUploads() = default;
  ~BaseUploads() { abort(); }
  BaseUploads(const BaseUploads&) = delete;
  BaseUploads& operator=(const BaseUploads&) = delete;

  proto::PutBaseReply put(const proto::PutBaseRequest& request);

  // Drops an upload in progress (its host went away or it failed).
  void abort();

 private:
  struct Upload {
    std::string digest;
    std::string partial;  // the directory it is extracted into until complete
    std::string log;      // tar's output
    pid_t tar = 0;
    UniqueFd pipe;
    std::uint64_t offset = 0;
    std::uint64_t total = 0;
    core::Checksum64 sum;
  };
  std::optional<Upload> m_upload;
};

// A workload's root, made by the agent in its own mount namespace before the workload is
// cloned, and entered by the clone (enter_root).
struct WorkloadRoot {
  std::string name;
  std::string digest;
  std::string hostname;
  std::string dir;        // k_roots_dir/NAME
  std::string upper;      // DIR/upper: the workload's changes
  std::string merged;     // DIR/merged: the overlay of the base and upper
  std::string etc;        // DIR/etc: hosts, hostname, resolv.conf, bind-mounted into it
  bool readonly = false;  // read-only to the workload (OCI root.readonly)
  std::vector<proto::RunMount> mounts;  // more mounts inside it (an OCI bundle's)
  // Its read-only bind mounts: CRIU restores them writable, the agent makes them so again.
  std::vector<std::string> readonly_binds;
};

// Mount flags and the filesystem's data string of OCI/mount(8) OPTIONS ("ro", "nosuid",
// "size=64m", ...). Throws kcr::Error on an option that is a flag of bind mounts only.
struct MountOptions {
  unsigned long flags = 0;
  std::string data;
};
MountOptions parse_mount_options(const google::protobuf::RepeatedPtrField<std::string>& options);

// Makes NAME's root over the base DIGEST (which must be in the guest): when FROM_IMAGES is set
// (a restore), the upper layer and the /etc files come from the checkpoint's images there.
// Throws kcr::Error; leaves nothing behind on failure.
WorkloadRoot prepare_root(const std::string& name, const std::string& digest,
                          const std::string& hostname, const std::string& from_images = {});

// Checks REQUEST's mounts (each destination absolute and clean, each type one kcr makes) and
// fills ROOT's mounts and readonly from it; throws kcr::Error naming the mount.
void take_mounts(const proto::RunRequest& request, WorkloadRoot& root);

// Unmounts and removes NAME's root, if any; never throws.
void remove_root(const std::string& name);

// Removes a workload's root (remove_root) when it goes out of scope with a name.
struct RootGuard {
  std::string name;
  RootGuard() = default;
  RootGuard(const RootGuard&) = delete;
  RootGuard& operator=(const RootGuard&) = delete;
  ~RootGuard() {
    if (!name.empty()) remove_root(name);
  }
};

// In the cloned workload (new mount and PID namespaces): makes its mounts private, mounts a
// private /run (with /run/kcr/init), a minimal /dev, /dev/pts, /dev/shm, /proc and a read-only
// /sys inside ROOT, binds the three /etc files, and pivots into it. Every path inside the root
// is opened without following its links. Throws kcr::Error.
void enter_root(const WorkloadRoot& root);

// The mounts a checkpoint of such a workload declares external (its root and the three /etc
// binds), each mapped back at restore.
const std::vector<std::string>& rootfs_external_mounts();

// Where a restore of ROOT binds each of rootfs_external_mounts() from.
std::vector<std::pair<std::string, std::string>> rootfs_external_sources(const WorkloadRoot& root);

// At a checkpoint (the tree stopped): writes k_rootfs_file, the /etc files and k_rootfs_diff
// into IMAGES_DIR. Throws kcr::Error.
void save_root(const WorkloadRoot& root, const std::string& images_dir);

// What k_rootfs_file in IMAGES_DIR says: the base's digest and the hostname; nullopt without
// one. Throws kcr::Error when it is malformed.
struct SavedRoot {
  std::string digest;
  std::string hostname;
  bool readonly = false;
  std::vector<std::string> readonly_binds;
};
std::optional<SavedRoot> read_rootfs_file(const std::string& images_dir);

// After a restore of a workload whose root or bind mounts were read-only: makes them so again
// in the mount namespace of PID (CRIU restores into a writable root and leaves it, and binds
// of it, writable). Throws kcr::Error.
void make_readonly_again(pid_t pid, const SavedRoot& saved);

}  // namespace kcr::agent
