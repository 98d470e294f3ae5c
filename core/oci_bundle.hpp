#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

// An OCI runtime bundle (a directory with config.json and a root file system, as runc takes it)
// read into what kcr run honours. Strict: a field kcr cannot honour is an error naming it, never
// ignored; only "annotations", opaque by the spec, is accepted and dropped.
namespace kcr::core {

// The largest config.json read_oci_bundle reads (runc spec writes a few KiB).
inline constexpr std::size_t kMaxOciConfigBytes = std::size_t{1} << 20;

struct OciMount {
  std::string destination;  // absolute, inside the container
  std::string type;         // bind, tmpfs, proc, sysfs, devpts or mqueue; "bind" whenever the
                            // options hold bind or rbind, whatever the type said
  std::string source;       // a bind mount's: absolute, relative ones resolved against the bundle
                            // and made lexically normal; others' as written (may be empty)
  std::vector<std::string> options;  // as written
};

struct OciBundle {
  std::string dir;        // the bundle directory, absolute
  std::string root_path;  // root.path resolved against dir, absolute, lexically normal
  bool root_readonly = false;
  std::vector<std::string> args, env;  // args: not empty; env: each KEY=VALUE
  std::string cwd = "/";               // absolute
  std::uint32_t uid = 0, gid = 0;
  std::vector<std::uint32_t> additional_gids;
  std::string hostname;  // empty: none set (a set one needs the uts namespace)
  std::vector<OciMount> mounts;
  std::vector<std::string> namespaces;  // types, in order, each once: "pid", "mount", "ipc",
                                        // "uts", "network", "cgroup", "user"
  std::uint64_t memory_limit = 0;       // linux.resources.memory.limit in bytes, 0: none
  std::int64_t pids_limit = 0;          // linux.resources.pids.limit, 0: none
};

// Reads DIR/config.json (refusing one over kMaxOciConfigBytes before reading it), validates it
// and checks that its root.path is a directory. Throws kcr::Error (ExitCode::usage) saying what
// is wrong with the bundle; one whose file cannot be read, with the system's reason.
OciBundle read_oci_bundle(const std::string& dir);

// The same from TEXT, the content of DIR/config.json: DIR (made absolute) is only for resolving
// root.path and bind mount sources; nothing on disk is looked at. Throws kcr::Error
// (ExitCode::usage) naming the field by its dotted path: "config.json: process.user.uid must be
// a number". Fields of an object are checked in the order the document has them.
OciBundle parse_oci_config(std::string_view text, const std::string& dir);

}  // namespace kcr::core
