#pragma once

// CRIU image files built in tests from the messages kcr reads
// (core/protocol/criu_images.proto): magics, then size-prefixed entries.

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "core/criu_image.hpp"
#include "criu_images.pb.h"

namespace kcr::test {

inline std::string u32_bytes(uint32_t v) {
  std::string s(4, '\0');
  std::memcpy(s.data(), &v, 4);
  return s;
}

// An image of MAGIC holding ENTRIES (serialized messages); HEAD is the magic
// before it (common; 0 for none, as inventory.img has).
inline std::string criu_image(uint32_t magic, const std::vector<std::string>& entries,
                              uint32_t head = core::k_criu_common_magic) {
  std::string out = head ? u32_bytes(head) : std::string();
  out += u32_bytes(magic);
  for (const auto& e : entries) out += u32_bytes(static_cast<uint32_t>(e.size())) + e;
  return out;
}

inline constexpr uint32_t k_inventory_magic = 0x58313116;
inline constexpr uint32_t k_pstree_magic = 0x50273030;
inline constexpr uint32_t k_core_magic = 0x55053847;
inline constexpr uint32_t k_ids_magic = 0x54432030;
inline constexpr uint32_t k_mm_magic = 0x57492820;
inline constexpr uint32_t k_pagemap_magic = 0x56084025;
inline constexpr uint32_t k_fdinfo_magic = 0x56213732;
inline constexpr uint32_t k_files_magic = 0x56303138;
inline constexpr uint32_t k_fs_magic = 0x51403912;
inline constexpr uint32_t k_mnts_magic = 0x55563928;

// inventory.img of images v1.1 (img_version 2).
inline std::string inventory_image() {
  criu::InventoryEntry e;
  e.set_img_version(2);
  e.set_fdinfo_per_id(true);
  return criu_image(k_inventory_magic, {e.SerializeAsString()}, 0);
}

// pstree.img with one process of PID.
inline std::string pstree_image(uint32_t pid = 1) {
  criu::PstreeEntry e;
  e.set_pid(pid);
  e.set_pgid(pid);
  e.set_sid(pid);
  e.add_threads(pid);
  return criu_image(k_pstree_magic, {e.SerializeAsString()});
}

}  // namespace kcr::test
