#include <gtest/gtest.h>

#include <string>

#include "core/checksum64.hpp"

using kcr::core::Checksum64;

namespace {

std::string once(const std::string& s) {
  Checksum64 c;
  c.update(s);
  return c.hex_digest();
}

}  // namespace

TEST(Checksum64, AnySplitGivesTheSameDigest) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7 + 3);
  std::string whole = once(data);
  EXPECT_EQ(whole.size(), 16u);
  for (std::size_t a = 0; a < 40; ++a) {
    for (std::size_t b = a; b < 60; b += 7) {
      Checksum64 c;
      c.update(data.substr(0, a));
      c.update(data.substr(a, b - a));
      c.update(data.substr(b));
      EXPECT_EQ(c.hex_digest(), whole) << a << " " << b;
    }
  }
}

TEST(Checksum64, SeesEveryByteAndTheLength) {
  std::string data(4096, 'x');
  std::string base = once(data);
  for (std::size_t i : {0u, 1u, 7u, 8u, 4095u}) {
    std::string changed = data;
    changed[i] ^= 1;
    EXPECT_NE(once(changed), base) << i;
  }
  EXPECT_NE(once(std::string(8, '\0')), once(std::string(16, '\0')));
  EXPECT_NE(once(""), once(std::string(1, '\0')));
  // hex_digest does not disturb the state
  Checksum64 c;
  c.update("abc");
  auto first = c.hex_digest();
  EXPECT_EQ(c.hex_digest(), first);
}
