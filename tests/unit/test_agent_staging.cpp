#include <gtest/gtest.h>

#include "images/agent/link.hpp"
#include "images/agent/staging.hpp"

namespace kcr::agent {
namespace {

TEST(AgentStaging, ChunkBytesDefaultsAndCaps) {
  EXPECT_EQ(checkpoint_chunk_bytes(0), 1024u * 1024);
  EXPECT_EQ(checkpoint_chunk_bytes(65536), 65536u);
  EXPECT_EQ(checkpoint_chunk_bytes(4 * 1024 * 1024), 4u * 1024 * 1024);
  EXPECT_EQ(checkpoint_chunk_bytes(64 * 1024 * 1024), 4u * 1024 * 1024);
}

TEST(AgentStaging, AcceptsCheckpointPaths) {
  EXPECT_TRUE(is_valid_checkpoint_path("images/pages-1.img"));
  EXPECT_TRUE(is_valid_checkpoint_path("images/tmpfs-dev-30.tar.gz.img"));
  EXPECT_TRUE(is_valid_checkpoint_path("images/inventory.img"));
  EXPECT_TRUE(is_valid_checkpoint_path("images/.hidden"));
  EXPECT_TRUE(is_valid_checkpoint_path("dump.log"));
  EXPECT_TRUE(is_valid_checkpoint_path("stats-dump"));
  EXPECT_TRUE(is_valid_checkpoint_path("parents/1/images/pages-1.img"));
  EXPECT_TRUE(is_valid_checkpoint_path("parents/999/images/pagemap-1.img"));
}

TEST(AgentStaging, PreDumpRoundPathsAreStrict) {
  for (const char* path :
       {"parents/0/images/a", "parents/01/images/a", "parents/1000/images/a", "parents/1/dump.log",
        "parents//images/a", "parents/1/images/..", "parents/1/images/a/b", "parents/1/images/",
        "parents/x/images/a", "parents/1images/a", "parents/1/../images/a", "parents/"}) {
    EXPECT_FALSE(is_valid_checkpoint_path(path)) << path;
  }
}

TEST(AgentStaging, RejectsEscapesAndOtherFiles) {
  for (const char* path :
       {"", "images/", "images/..", "images/.", "images/../x", "images/a/b", "images//a",
        "/images/a", "../images/a", "images/a b", "images/a\\b", "images/\xc3\xa9", "restore.log",
        "work/dump.log", "dump.log/", "stats-dump2", "Images/a", "images", "etc/passwd"}) {
    EXPECT_FALSE(is_valid_checkpoint_path(path)) << path;
  }
  EXPECT_FALSE(is_valid_checkpoint_path("images/" + std::string(256, 'a')));
  EXPECT_TRUE(is_valid_checkpoint_path("images/" + std::string(255, 'a')));
  EXPECT_FALSE(is_valid_checkpoint_path(std::string("images/a\0b", 9)));
}

TEST(AgentLink, OnlyPlainIpv4AddressesWithAPrefix) {
  EXPECT_TRUE(is_valid_link_address("10.97.0.1/24"));
  EXPECT_TRUE(is_valid_link_address("192.168.100.200/16"));
  for (const char* bad : {"", "10.97.0.1", "10.97.0.1/24 ; reboot", "10.97.0/24", "a.b.c.d/24",
                          "10.97.0.1/24/8", "-10.97.0.1/24", "1000.1000.1000.1000/244"}) {
    EXPECT_FALSE(is_valid_link_address(bad)) << bad;
  }
}

TEST(AgentStaging, PagesImages) {
  EXPECT_TRUE(is_pages_image("pages-1.img"));
  EXPECT_TRUE(is_pages_image("pages-123.img"));
  EXPECT_FALSE(is_pages_image("pagemap-1.img"));
  EXPECT_FALSE(is_pages_image("pages-.img"));
  EXPECT_FALSE(is_pages_image("mm-1.img"));
  EXPECT_FALSE(is_pages_image("pages-1.img.tmp"));
}

TEST(AgentStaging, ParsesPidfiles) {
  EXPECT_EQ(parse_pidfile("185"), 185);
  EXPECT_EQ(parse_pidfile("185\n"), 185);
  EXPECT_EQ(parse_pidfile(""), 0);
  EXPECT_EQ(parse_pidfile("\n"), 0);
  EXPECT_EQ(parse_pidfile("0"), 0);
  EXPECT_EQ(parse_pidfile("1"), 0);  // never the agent itself
  EXPECT_EQ(parse_pidfile("-5"), 0);
  EXPECT_EQ(parse_pidfile("12a"), 0);
  EXPECT_EQ(parse_pidfile(" 12"), 0);
  EXPECT_EQ(parse_pidfile("12\n\n"), 0);
  EXPECT_EQ(parse_pidfile("99999999999"), 0);
}

TEST(AgentStaging, KeepsRoomFree) {
  constexpr std::uint64_t mib = 1024 * 1024;
  // 512 MiB filesystem: an eighth (64 MiB) stays free.
  EXPECT_TRUE(staging_fits(1 * mib, 400 * mib, 512 * mib));
  EXPECT_TRUE(staging_fits(336 * mib, 400 * mib, 512 * mib));
  EXPECT_FALSE(staging_fits(337 * mib, 400 * mib, 512 * mib));
  EXPECT_FALSE(staging_fits(1, 64 * mib, 512 * mib));
  // Small filesystems keep at least 16 MiB.
  EXPECT_FALSE(staging_fits(1, 16 * mib, 32 * mib));
  EXPECT_TRUE(staging_fits(1 * mib, 20 * mib, 32 * mib));
}

}  // namespace
}  // namespace kcr::agent
