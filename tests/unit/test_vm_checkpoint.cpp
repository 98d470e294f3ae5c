#include <gtest/gtest.h>

#include "core/error.hpp"
#include "vm/checkpoint.hpp"
#include "vm/data_disk.hpp"

using namespace kcr::vm;

TEST(GuestDifferences, SameGuestHasNone) {
  EXPECT_TRUE(guest_differences("3.17.1", "6.1.0-56-cloud-amd64", "3.17.1", "6.1.0-56-cloud-amd64")
                  .empty());
  // An old checkpoint that recorded nothing is not refused for it.
  EXPECT_TRUE(guest_differences("", "", "3.17.1", "6.1.192-kcr").empty());
}

TEST(GuestDifferences, NamesEachDifference) {
  auto d = guest_differences("3.17.1", "6.1.0-56-cloud-amd64", "3.19", "6.1.192-kcr");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], "CRIU 3.17.1 vs 3.19");
  EXPECT_EQ(d[1], "kernel 6.1.0-56-cloud-amd64 vs 6.1.192-kcr");
}

TEST(CheckCompatible, RefusesAnotherKernelUnlessForced) {
  kcr::core::CheckpointManifest m;
  m.name = "c1";
  m.criu_version = "3.17.1";
  m.kernel_release = "6.1.0-56-cloud-amd64";
  kcr::proto::Hello same;
  same.set_criu_version("3.17.1");
  same.set_kernel_release("6.1.0-56-cloud-amd64");
  EXPECT_NO_THROW(check_compatible(m, same, false));
  kcr::proto::Hello other = same;
  other.set_kernel_release("6.1.192-kcr");
  try {
    check_compatible(m, other, false);
    FAIL() << "a different kernel was accepted";
  } catch (const kcr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("kernel 6.1.0-56-cloud-amd64 vs 6.1.192-kcr"),
              std::string::npos);
    EXPECT_NE(e.hint().find("--force"), std::string::npos);
  }
  EXPECT_NO_THROW(check_compatible(m, other, true));
}

TEST(IsImageFile, ImagesAndPreDumpRoundsOnly) {
  EXPECT_TRUE(is_image_file("images/pages-1.img"));
  EXPECT_TRUE(is_image_file("parents/2/images/pagemap-1.img"));
  EXPECT_FALSE(is_image_file("dump.log"));
  EXPECT_FALSE(is_image_file("parents/2/dump.log"));
  EXPECT_FALSE(is_image_file("stats-dump"));
}

TEST(DataDiskRange, InsideTheDiskAndNotTooLongOnly) {
  using kcr::vm::disk_range_fits;
  EXPECT_TRUE(disk_range_fits(0, 4096, 8192, 1 << 20));
  EXPECT_TRUE(disk_range_fits(4096, 4096, 8192, 1 << 20));
  EXPECT_TRUE(disk_range_fits(8192, 0, 8192, 1 << 20));
  EXPECT_FALSE(disk_range_fits(4097, 4096, 8192, 1 << 20));
  EXPECT_FALSE(disk_range_fits(8193, 0, 8192, 1 << 20));
  EXPECT_FALSE(disk_range_fits(0, 8192, 8192, 4096));  // longer than one chunk may be
  // No wrap-around: an offset near 2^64 with a length that overflows the sum.
  EXPECT_FALSE(disk_range_fits(UINT64_MAX - 10, 100, 8192, 1 << 20));
  EXPECT_FALSE(disk_range_fits(4096, UINT64_MAX, 8192, UINT64_MAX));
}
