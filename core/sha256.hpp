#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kcr::core {

// Streaming SHA-256 (FIPS 180-4): update() any number of times, then hex_digest() once.
class Sha256 {
 public:
  Sha256();

  // Feeds DATA into the digest.
  void update(std::string_view data);
  void update(const void* data, std::size_t size);

  // Finishes the digest and returns its 32 bytes; the object must not be updated afterwards.
  std::array<uint8_t, 32> digest();

  // Finishes the digest and returns it as 64 lowercase hex characters.
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> m_state;
  std::array<uint8_t, 64> m_buffer{};
  std::size_t m_buffered = 0;
  uint64_t m_total_bytes = 0;
};

// Returns the SHA-256 of DATA as 64 lowercase hex characters.
std::string sha256_hex(std::string_view data);

// Returns the SHA-256 of the file at PATH as hex; throws kcr::Error when it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace kcr::core
