#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

using EVP_MD_CTX = struct evp_md_ctx_st;

namespace kcr::core {

// Streaming SHA-256, OpenSSL's: update() any number of times, then hex_digest() once. The host
// only: the guest's agent checks transfers with core::Checksum64 (SHA-256 is too slow under
// TCG) and is linked without libcrypto.
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
  struct CtxFree {
    void operator()(EVP_MD_CTX* ctx) const;
  };
  std::unique_ptr<EVP_MD_CTX, CtxFree> m_ctx;
};

// Returns the SHA-256 of DATA as 64 lowercase hex characters.
std::string sha256_hex(std::string_view data);

// Returns the SHA-256 of the file at PATH as hex; throws kcr::Error when it cannot be read.
std::string sha256_file_hex(const std::string& path);

}  // namespace kcr::core
