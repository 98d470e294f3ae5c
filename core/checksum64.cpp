#include "core/checksum64.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace kcr::core {

namespace {

constexpr uint64_t k_p1 = 0x9e3779b185ebca87ull;
constexpr uint64_t k_p2 = 0xc2b2ae3d27d4eb4full;

uint64_t rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

}  // namespace

void Checksum64::mix(uint64_t word) {
  m_state = rotl(m_state ^ (word * k_p2), 31) * k_p1;
}

void Checksum64::update(const void* data, std::size_t size) {
  auto p = static_cast<const unsigned char*>(data);
  m_length += size;
  if (m_tail_size > 0) {
    while (m_tail_size < 8 && size > 0) {
      m_tail[m_tail_size++] = *p++;
      --size;
    }
    if (m_tail_size < 8) return;
    uint64_t w;
    std::memcpy(&w, m_tail, 8);
    mix(w);
    m_tail_size = 0;
  }
  while (size >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    mix(w);
    p += 8;
    size -= 8;
  }
  std::memcpy(m_tail, p, size);
  m_tail_size = size;
}

std::string Checksum64::hex_digest() const {
  uint64_t h = m_state;
  uint64_t tail = 0;
  std::memcpy(&tail, m_tail, m_tail_size);
  h = rotl(h ^ (tail * k_p2), 31) * k_p1;
  h ^= m_length * k_p1;
  h ^= h >> 33;
  h *= k_p2;
  h ^= h >> 29;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string checksum64_file_hex(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("open " + path);
  Checksum64 c;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read " + path);
    }
    if (n == 0) break;
    c.update(buf.data(), static_cast<std::size_t>(n));
  }
  return c.hex_digest();
}

}  // namespace kcr::core
