#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kcr::core {

// A fast, non-cryptographic 64-bit checksum for data in transit between the
// agent and the host. Under software emulation the guest computes SHA-256 at
// ~45 MB/s, which halved checkpoint throughput; this costs one multiply per
// 8 bytes. The store still records SHA-256, computed on the host.
class Checksum64 {
 public:
  // Feeds DATA; may be called with any split of the input.
  void update(const void* data, std::size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }

  // The checksum of everything fed so far, as 16 lowercase hex digits. Does
  // not change the state.
  std::string hex_digest() const;

 private:
  void mix(uint64_t word);

  uint64_t m_state = 0x9e3779b97f4a7c15ull;
  uint64_t m_length = 0;
  unsigned char m_tail[8] = {};
  std::size_t m_tail_size = 0;
};

// Checksum64 of a whole file; throws kcr::Error when it cannot be read.
std::string checksum64_file_hex(const std::string& path);

}  // namespace kcr::core
