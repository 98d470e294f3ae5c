#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/transfer_progress.hpp"
#include "vm/vm.hpp"

namespace kcr::vm {

// One side of kcr cp: a path on the host, or VM:WORKLOAD:PATH (PATH
// absolute, in the workload's root), as podman cp writes CONTAINER:PATH.
struct CopyPlace {
  std::string vm, workload, path;  // vm empty: PATH is on the host
  bool in_workload() const { return !vm.empty(); }
};

// Parses SPEC; throws kcr::Error (usage) naming what is wrong.
CopyPlace parse_copy_place(const std::string& spec);

// True when REL, a path the guest sent under a copied directory, may be
// created on the host: relative, each component non-empty and neither "."
// nor "..", no NUL, at most 4096 bytes ("" is the copied path itself).
bool is_safe_relative_path(const std::string& rel);

// The most kcr cp moves in one call, either way.
inline constexpr uint64_t k_copy_max_bytes = uint64_t{16} << 30;

struct CopyResult {
  std::string target;  // where it landed: a host path or PATH in the workload
  uint64_t files = 0, directories = 0, links = 0, skipped = 0, bytes = 0;
};

// Copies host SOURCE (a file, link or directory tree, links copied as
// links) into WORKLOAD at PATH: into PATH when it is a directory there, else
// as PATH. Each file appears whole (written beside it, renamed into place).
CopyResult copy_into_workload(VmSession& session, const std::string& source,
                              const std::string& workload, const std::string& path,
                              const core::OnTransfer& progress = {});

// Copies PATH of WORKLOAD to host DEST (into DEST when it is a directory).
// The guest is not trusted: every name, size and link it sends is checked,
// set-id bits are dropped, nothing is written outside the target, and the
// target appears only complete.
CopyResult copy_from_workload(VmSession& session, const std::string& workload,
                              const std::string& path, const std::string& dest,
                              const core::OnTransfer& progress = {});

}  // namespace kcr::vm
