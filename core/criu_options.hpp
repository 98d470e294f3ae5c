#pragma once

#include <string>
#include <vector>

#include "agent.pb.h"

namespace kcr::core {

// The one place that spells CRIU's flags: every kcr/runc-style option maps to
// exactly one CRIU flag here. Nothing else in kcr builds CRIU command lines.

struct CriuDumpTarget {
  int pid = 0;             // outer PID of the workload's init
  std::string images_dir;  // -D
  std::string work_dir;    // -W (logs, stats-dump)
  std::string log_file = "dump.log";
  bool pre_dump = false;  // "criu pre-dump": memory only, the tree keeps running
  // Memory tracking for pre-copy: the parent round's images, relative to
  // images_dir (empty: none).
  bool track_mem = false;
  std::string prev_images_dir;
  // Post-copy: serve the memory on this port instead of writing it; CRIU
  // writes a byte to STATUS_FD once the images are written.
  unsigned lazy_port = 0;
  int status_fd = -1;
  // Mounts CRIU records as external (--external mnt[PATH]:KEY, KEY from
  // external_mount_key): restore bind-mounts the guest's own PATH there.
  std::vector<std::string> external_mounts;
};

// The mounts a workload in a user namespace of its own cannot have mounted again by CRIU's
// restore (sysfs needs a network namespace the user namespace owns, devtmpfs is never
// mountable there, cgroup2 needs a cgroup namespace it owns, devpts's gid=5 is no id of
// its): the dump records them as external and the restore binds the guest's own.
inline const std::vector<std::string> k_userns_external_mounts = {"/sys", "/sys/fs/cgroup", "/dev",
                                                                  "/dev/pts"};

// "/sys/fs/cgroup" -> "kcr-sys-fs-cgroup": the key an external mount goes by in an image.
std::string external_mount_key(const std::string& path);

// "criu lazy-pages": the destination's daemon that fetches pages from the
// source's page server and feeds a lazy restore through userfaultfd.
struct CriuLazyPagesTarget {
  std::string images_dir;
  std::string work_dir;  // shared with the restore (its lazy-pages.socket)
  std::string address;   // the source's page server
  unsigned port = 0;
  int status_fd = -1;
  std::string log_file = "lazy-pages.log";
};

struct CriuRestoreTarget {
  std::string images_dir;
  std::string work_dir;
  std::string pid_file;  // --pidfile (must not exist yet)
  std::string log_file = "restore.log";
  bool lazy_pages = false;  // memory from a running "criu lazy-pages"
  // External mounts the image may name (CriuDumpTarget::external_mounts): the mount dumped
  // at PATH is bound from SOURCE (--external mnt[KEY]:SOURCE); a key the image does not name
  // is unused.
  struct ExternalMount {
    std::string path, source;
  };
  std::vector<ExternalMount> external_mounts;
  // --mntns-compat-mode: the image has a user namespace (userns-N.img), and CRIU 3.17's
  // default mount engine cannot bind the root into a mount namespace that one owns ("mnt:
  // Unable to mount /proc/self/fd/N: Invalid argument").
  bool mntns_compat = false;
  std::string root = "/";  // --root: what the workload's root mount is bound from
  // --cgroup-root: the cgroup the dumped tree's root cgroup is restored as
  // (the workload's own, made with its limits first); empty: as dumped.
  std::string cgroup_root;
};

// argv for "criu dump", or "criu pre-dump" (argv[0] = CRIU). Throws kcr::Error for an invalid
// manage_cgroups_mode.
std::vector<std::string> criu_dump_argv(const std::string& criu, const CriuDumpTarget& target,
                                        const proto::CriuOptions& options);

// argv for "criu restore", detached, restoring the mount namespace at --root /.
std::vector<std::string> criu_restore_argv(const std::string& criu, const CriuRestoreTarget& target,
                                           const proto::CriuOptions& options);

// argv for "criu lazy-pages --page-server".
std::vector<std::string> criu_lazy_pages_argv(const std::string& criu,
                                              const CriuLazyPagesTarget& target);

// argv for "criu check", or with FEATURE "criu check --feature FEATURE" (CRIU judges one feature
// per run). Throws kcr::Error unless FEATURE is empty or 1 to 32 of [a-z0-9_-].
std::vector<std::string> criu_check_argv(const std::string& criu, const std::string& feature = {});

// argv for "criu --version".
std::vector<std::string> criu_version_argv(const std::string& criu);

// X of the "Version: X" line of "criu --version" output; empty when there is none.
std::string parse_criu_version(const std::string& output);

// Throws kcr::Error (usage) unless MODE is "", soft, full, strict or ignore.
void validate_manage_cgroups_mode(const std::string& mode);

// The "Error (...)" lines of a CRIU log, at most MAX_LINES of them, last ones
// kept; when there are none, the last few lines of the log.
std::string criu_log_errors(const std::string& log, std::size_t max_lines = 12);

}  // namespace kcr::core
