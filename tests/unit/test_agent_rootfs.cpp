#include <gtest/gtest.h>

#include <sys/mount.h>

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
  EXPECT_FALSE(saved->readonly);
  EXPECT_TRUE(saved->readonly_binds.empty());
  write(t.path() + "/" + k_rootfs_file,
        "digest " + digest + "\nhostname web\nreadonly 1\nreadonly-bind /shared\n");
  saved = read_rootfs_file(t.path());
  EXPECT_TRUE(saved->readonly);
  EXPECT_EQ(saved->readonly_binds, std::vector<std::string>{"/shared"});
  for (std::string bad : {std::string("hostname web\n"), "digest " + digest + "\n",
                          "digest " + digest + "\nhostname web\nreadonly-bind ../x\n",
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

namespace {

google::protobuf::RepeatedPtrField<std::string> options(std::initializer_list<const char*> list) {
  google::protobuf::RepeatedPtrField<std::string> out;
  for (const char* o : list) *out.Add() = o;
  return out;
}

}  // namespace

// An OCI mount's options: flags become flags, the rest the filesystem's data; what would
// change propagation (kcr makes every mount private) or bind is refused.
TEST(AgentRootfs, MountOptionsSplitIntoFlagsAndData) {
  auto o = parse_mount_options(options({"nosuid", "nodev", "mode=1777", "size=8m", "rw", "ro"}));
  EXPECT_EQ(o.flags, static_cast<unsigned long>(MS_NOSUID | MS_NODEV | MS_RDONLY));
  EXPECT_EQ(o.data, "mode=1777,size=8m");
  EXPECT_EQ(parse_mount_options(options({})).data, "");
  for (const char* bad : {"rbind", "bind", "rshared", "private", "rslave", "a,b", ""}) {
    EXPECT_THROW(parse_mount_options(options({bad})), kcr::Error) << bad;
  }
}

TEST(AgentRootfs, OnlyCleanDestinationsOfKnownTypesAreTaken) {
  kcr::proto::RunRequest r;
  r.set_readonly_root(true);
  auto* m = r.add_mounts();
  m->set_destination("/scratch");
  m->set_type("tmpfs");
  WorkloadRoot root;
  take_mounts(r, root);
  EXPECT_TRUE(root.readonly);
  ASSERT_EQ(root.mounts.size(), 1u);
  for (const char* bad : {"scratch", "/", "/a/../b", "/a//b", "/a/", "/a/./b", "/.."}) {
    WorkloadRoot other;
    m->set_destination(bad);
    EXPECT_THROW(take_mounts(r, other), kcr::Error) << bad;
  }
  m->set_destination("/x");
  m->set_type("ext4");
  WorkloadRoot other;
  EXPECT_THROW(take_mounts(r, other), kcr::Error);

  // A bind's source is a path inside the same root, clean, not the root itself.
  m->set_type("bind");
  m->set_source("/srv/data");
  WorkloadRoot bound;
  take_mounts(r, bound);
  EXPECT_EQ(bound.mounts.at(0).source(), "/srv/data");
  for (const char* bad : {"", "/", "srv", "/srv/../..", "/srv//x"}) {
    WorkloadRoot refused;
    m->set_source(bad);
    EXPECT_THROW(take_mounts(r, refused), kcr::Error) << bad;
  }
}
