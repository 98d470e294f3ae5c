#include <gtest/gtest.h>

#include <fstream>

#include "core/error.hpp"
#include "images/agent/rootfs.hpp"
#include "temp_dir.hpp"

using namespace kcr::agent;
using kcr::test::TempDir;

namespace {

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

}  // namespace

TEST(AgentRootfs, BaseDigestsAreSha256InLowercaseHexOnly) {
  EXPECT_TRUE(is_base_digest("sha256:" + std::string(64, 'a')));
  EXPECT_TRUE(
      is_base_digest("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(is_base_digest("sha256:" + std::string(63, 'a')));
  EXPECT_FALSE(is_base_digest("sha256:" + std::string(65, 'a')));
  EXPECT_FALSE(is_base_digest("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(is_base_digest("sha256:" + std::string(62, 'a') + "/."));
  EXPECT_FALSE(is_base_digest(std::string(71, 'a')));
  EXPECT_FALSE(is_base_digest(""));
}

// What a dump wrote comes back; a file the checkpoint holds damaged is refused, not guessed at.
TEST(AgentRootfs, TheSavedRootFileNamesDigestAndHostname) {
  TempDir t;
  EXPECT_FALSE(read_rootfs_file(t.path()).has_value());
  const std::string digest = "sha256:" + std::string(64, 'b');
  write(t.path() + "/" + k_rootfs_file, "digest " + digest + "\nhostname web\n");
  auto saved = read_rootfs_file(t.path());
  ASSERT_TRUE(saved.has_value());
  EXPECT_EQ(saved->digest, digest);
  EXPECT_EQ(saved->hostname, "web");
  for (std::string bad : {std::string("hostname web\n"), "digest " + digest + "\n",
                          std::string("digest sha256:../../x\nhostname web\n"),
                          "digest " + digest + "\nhostname " + std::string(65, 'h') + "\n"}) {
    write(t.path() + "/" + k_rootfs_file, bad);
    EXPECT_THROW(read_rootfs_file(t.path()), kcr::Error) << bad;
  }
}

// The root and exactly the three /etc binds are external, each mapped back from the new root.
TEST(AgentRootfs, ExternalMountsAreTheRootAndTheThreeEtcFiles) {
  EXPECT_EQ(rootfs_external_mounts(),
            (std::vector<std::string>{"/", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}));
  WorkloadRoot root;
  root.merged = "/run/kcr-roots/w/merged";
  root.etc = "/run/kcr-roots/w/etc";
  auto sources = rootfs_external_sources(root);
  ASSERT_EQ(sources.size(), rootfs_external_mounts().size());
  for (std::size_t i = 0; i < sources.size(); ++i) {
    EXPECT_EQ(sources[i].first, rootfs_external_mounts()[i]);
  }
  EXPECT_EQ(sources[0].second, root.merged);
  EXPECT_EQ(sources[2].second, "/run/kcr-roots/w/etc/hostname");
}
