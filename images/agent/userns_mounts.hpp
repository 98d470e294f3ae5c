#pragma once

// What CRIU 3.17 needs to dump and restore a workload in a user namespace of its own
// (kcr run --uidmap): which mounts are external, where the restore binds them from, and the
// root it binds (ARCHITECTURE.md, "A workload's user namespace is made in two steps").

#include <sys/types.h>
#include <string>
#include <vector>

#include "core/criu_options.hpp"

namespace kcr::agent {

// Whether process PID is in another user namespace than the agent's.
bool in_own_user_namespace(pid_t pid);

// Whether CRIU's images in DIR hold a user namespace (a userns-N.img).
bool has_user_namespace_image(const std::string& dir);

// Each of core::k_userns_external_mounts with the source a restore binds it from, mounted
// once: sysfs, cgroup2 and devtmpfs of their own in /run/kcr-ext, where the restoring CRIU,
// root of that user namespace and not of the guest, can reach them. Not the guest's /sys and
// /dev: in the mount namespace the restored user namespace owns, the mounts below them are
// locked to them, and the kernel refuses to bind a mount without its locked children.
// /dev/pts has no mount below it: the guest's own is bound.
std::vector<core::CriuRestoreTarget::ExternalMount> userns_external_sources();

// The guest's root filesystem bound alone (no mount below it) at /run/kcr-root, made once: the
// root a restore of a workload in a user namespace binds recursively (--mntns-compat-mode),
// which with --root / would bring the agent's /run, /tmp and /dev/shm into the workload.
std::string bare_root();

}  // namespace kcr::agent
