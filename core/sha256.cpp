#include "core/sha256.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace kcr::core {

// OpenSSL's SHA-256 (libcrypto): it uses the CPU's SHA instructions where there are some,
// ~6x the hand-written one this replaced on these machines (393 against 61 MB/s).
Sha256::Sha256() : m_ctx(EVP_MD_CTX_new()) {
  if (!m_ctx || EVP_DigestInit_ex(m_ctx.get(), EVP_sha256(), nullptr) != 1) {
    throw Error("cannot start a SHA-256 digest (OpenSSL)");
  }
}

void Sha256::CtxFree::operator()(EVP_MD_CTX* ctx) const {
  EVP_MD_CTX_free(ctx);
}

void Sha256::update(std::string_view data) {
  update(data.data(), data.size());
}

void Sha256::update(const void* data, std::size_t size) {
  if (EVP_DigestUpdate(m_ctx.get(), data, size) != 1) throw Error("SHA-256 update failed");
}

std::array<uint8_t, 32> Sha256::digest() {
  std::array<uint8_t, 32> out{};
  unsigned len = 0;
  if (EVP_DigestFinal_ex(m_ctx.get(), out.data(), &len) != 1 || len != out.size()) {
    throw Error("SHA-256 final failed");
  }
  return out;
}

std::string Sha256::hex_digest() {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t byte : digest()) {
    hex += k_hex[byte >> 4];
    hex += k_hex[byte & 0xf];
  }
  return hex;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.hex_digest();
}

std::string sha256_file_hex(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("cannot open " + path);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cannot read " + path);
    if (n == 0) break;
    h.update(buf.data(), static_cast<std::size_t>(n));
  }
  return h.hex_digest();
}

}  // namespace kcr::core
