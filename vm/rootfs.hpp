#pragma once

// The host's side of a workload's own root filesystem (kcr run --rootfs): the store of bases
// (each the canonical tar core/rootfs_base.hpp makes, named by its digest) and putting a base
// into a VM. ARCHITECTURE.md, "A workload's root filesystem".

#include <string>

#include "core/config.hpp"
#include "core/rootfs_base.hpp"
#include "core/transfer_progress.hpp"
#include "vm/vm.hpp"

namespace kcr::vm {

// Where the host keeps bases: DATA_DIR/rootfs/HEX.tar.
std::string rootfs_store_dir(const core::Config& cfg);

// Reads the user's root filesystem PATH (a directory or a tar archive) into the store,
// reporting the bytes read to ON_TRANSFER.
core::RootfsBase import_rootfs(const core::Config& cfg, const std::string& path,
                               const core::OnTransfer& on_transfer = {});

// The base a checkpoint made with DIGEST needs, from the store; with ROOTFS_PATH (restore
// --rootfs) from there, refused unless its digest is DIGEST. Throws kcr::Error naming OWNER
// ("checkpoint 'c1'") and both digests, or saying how to give the base when the store has none.
std::string base_for_restore(const core::Config& cfg, const std::string& digest,
                             const std::string& rootfs_path, const std::string& owner,
                             const core::OnTransfer& on_transfer = {});

// Puts the base DIGEST (its canonical tar at TAR_PATH) into the session's VM unless it is there
// already, reporting the bytes sent to ON_TRANSFER. Throws kcr::Error.
void put_base(VmSession& session, const std::string& digest, const std::string& tar_path,
              const core::OnTransfer& on_transfer = {});

}  // namespace kcr::vm
