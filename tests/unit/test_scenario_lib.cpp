#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "images/scenario/scenario.hpp"

namespace kcr::scenario {

TEST(ScenarioSize, ParsesBinaryUnits) {
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("512K"), 512u * 1024);
  EXPECT_EQ(parse_size("10M"), 10u * 1024 * 1024);
  EXPECT_EQ(parse_size("10m"), 10u * 1024 * 1024);
  EXPECT_EQ(parse_size("10MiB"), 10u * 1024 * 1024);
  EXPECT_EQ(parse_size("10MB"), 10u * 1024 * 1024);
  EXPECT_EQ(parse_size("1G"), uint64_t{1} << 30);
  EXPECT_EQ(parse_size("2T"), uint64_t{2} << 40);
  EXPECT_EQ(parse_size("100B"), 100u);
}

TEST(ScenarioSize, RejectsGarbageZeroAndOverflow) {
  for (const char* bad : {"", "M", "0", "0M", "-1", "1.5G", "10X", "10 M", " 10M", "10MiBs", "10iB",
                          "1Gi", "99999999999999999999", "20000000000T"}) {
    EXPECT_FALSE(parse_size(bad).has_value()) << bad;
  }
  EXPECT_EQ(parse_size("16777215T"), uint64_t{16777215} << 40);
  EXPECT_FALSE(parse_size("16777216T").has_value());
}

TEST(ScenarioNumbers, ParseU64AndHex) {
  EXPECT_EQ(parse_u64("0"), 0u);
  EXPECT_EQ(parse_u64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(parse_u64("18446744073709551616").has_value());
  EXPECT_FALSE(parse_u64("+1").has_value());
  EXPECT_FALSE(parse_u64("").has_value());
  EXPECT_EQ(hex64(0x0123456789abcdefULL), "0123456789abcdef");
  EXPECT_EQ(parse_hex64("0123456789ABCDEF"), 0x0123456789abcdefULL);
  EXPECT_FALSE(parse_hex64("123").has_value());
  EXPECT_FALSE(parse_hex64("0123456789abcdeg").has_value());
  auto ns = parse_number_and_sum("10485760 00000000deadbeef\n");
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(ns->number, 10485760u);
  EXPECT_EQ(ns->sum, 0xdeadbeefu);
  EXPECT_FALSE(parse_number_and_sum("10485760").has_value());
  EXPECT_FALSE(parse_number_and_sum("x 00000000deadbeef").has_value());
}

TEST(ScenarioChecksum, IsDeterministicAndIndependentOfAlignment) {
  std::vector<unsigned char> a(100'003), b(100'003 + 8);
  fill_pattern(a.data(), a.size(), 42);
  fill_pattern(b.data() + 3, a.size(), 42);  // same bytes at an odd address
  ASSERT_EQ(std::memcmp(a.data(), b.data() + 3, a.size()), 0);
  EXPECT_EQ(checksum(a.data(), a.size()), checksum(b.data() + 3, a.size()));
  EXPECT_EQ(checksum(a.data(), a.size()), checksum(a.data(), a.size()));
  // Pinned value: the checksum is written by one binary and compared by another, so it must
  // not change between builds.
  // (For inputs without a 4-byte tail it is XXH64 with seed 0.)
  EXPECT_EQ(hex64(checksum("", 0)), "ef46db3751d8e999");
  EXPECT_EQ(hex64(checksum("abc", 3)), "44bc2cf5ad770999");
  std::vector<unsigned char> pinned(1000);
  fill_pattern(pinned.data(), pinned.size(), 1);
  EXPECT_EQ(hex64(checksum(pinned.data(), pinned.size())), "0e2924669b15033a");
  std::vector<unsigned char> c(a.size());
  fill_pattern(c.data(), c.size(), 43);
  EXPECT_NE(checksum(a.data(), a.size()), checksum(c.data(), c.size()));
}

TEST(ScenarioChecksum, EveryByteCounts) {
  // Flipping one bit anywhere, in the 32-byte stripes, the word tail or the byte tail,
  // changes the checksum; so do the length and the byte order.
  for (std::size_t n : {1u, 7u, 8u, 31u, 32u, 33u, 64u, 77u, 4096u}) {
    std::vector<unsigned char> buf(n);
    fill_pattern(buf.data(), n, 7);
    const uint64_t base = checksum(buf.data(), n);
    std::set<uint64_t> seen = {base};
    for (std::size_t i = 0; i < n; ++i) {
      for (int bit : {0, 7}) {
        buf[i] ^= static_cast<unsigned char>(1 << bit);
        uint64_t changed = checksum(buf.data(), n);
        EXPECT_NE(changed, base) << "n=" << n << " byte " << i << " bit " << bit;
        seen.insert(changed);
        buf[i] ^= static_cast<unsigned char>(1 << bit);
      }
    }
    EXPECT_EQ(seen.size(), 1 + 2 * n) << "collisions for n=" << n;
    EXPECT_EQ(checksum(buf.data(), n), base);
  }
  std::vector<unsigned char> zeros(64, 0);
  EXPECT_NE(checksum(zeros.data(), 63), checksum(zeros.data(), 64));
  const unsigned char ab[] = {1, 2}, ba[] = {2, 1};
  EXPECT_NE(checksum(ab, 2), checksum(ba, 2));
}

TEST(ScenarioPattern, SameSeedSameBytesAndFillsTheTail) {
  std::vector<unsigned char> a(1001, 0), b(1001, 0xff);
  fill_pattern(a.data(), a.size(), 123);
  fill_pattern(b.data(), b.size(), 123);
  EXPECT_EQ(a, b);
  // A prefix of a longer fill is the shorter fill (the pattern is one stream).
  std::vector<unsigned char> c(1000);
  fill_pattern(c.data(), c.size(), 123);
  EXPECT_EQ(std::memcmp(a.data(), c.data(), c.size()), 0);
  // Seed 0 still gives a non-zero pattern (xorshift would be stuck at 0).
  std::vector<unsigned char> z(64, 0);
  fill_pattern(z.data(), z.size(), 0);
  EXPECT_NE(z, std::vector<unsigned char>(64, 0));
}

TEST(ScenarioPairState, ParsesAndFormats) {
  auto ok = parse_pair_state(format_pair_state(17, 0) + "\n");
  EXPECT_TRUE(ok.received);
  EXPECT_TRUE(ok.healthy());
  EXPECT_EQ(ok.count, 17u);
  auto errs = parse_pair_state("received 5 errors 2");
  EXPECT_TRUE(errs.received);
  EXPECT_FALSE(errs.healthy());
  EXPECT_EQ(errs.errors, 2u);
  EXPECT_FALSE(parse_pair_state("broken server: eof after 3 numbers").healthy());
  EXPECT_FALSE(parse_pair_state("waiting for the connection").healthy());
  EXPECT_FALSE(parse_pair_state("received x errors 0").healthy());
  EXPECT_FALSE(parse_pair_state("").healthy());
}

TEST(ScenarioPacer, TicksEvenlyAndClampsJumps) {
  const int64_t ms = 1'000'000, interval = 100 * ms;
  Pacer p(interval);
  EXPECT_EQ(p.delay(1000 * ms), interval);    // first tick: a full interval
  EXPECT_EQ(p.delay(1110 * ms), 90 * ms);     // 10 ms of work: sleep the rest
  EXPECT_EQ(p.delay(1350 * ms), 0);           // late by < 4 intervals: catch up
  EXPECT_EQ(p.delay(1355 * ms), 45 * ms);     // ...on schedule (deadline 1400)
  EXPECT_EQ(p.delay(90'000 * ms), interval);  // frozen for minutes: no burst
  EXPECT_EQ(p.delay(90'100 * ms), interval);  // on schedule again
  EXPECT_EQ(p.delay(5 * ms), interval);       // clock went backwards: restart
  EXPECT_EQ(p.delay(105 * ms), interval);
}

}  // namespace kcr::scenario
