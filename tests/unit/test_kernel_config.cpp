#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "core/error.hpp"
#include "core/files.hpp"
#include "images/kernel_build.hpp"
#include "images/kernel_config.hpp"

namespace kcr::images {

namespace {

// Real configs: Debian 12's cloud kernel, the same with CONFIG_CHECKPOINT_RESTORE unset
// and CONFIG_VIRTIO_CONSOLE deleted, and the kernel kcr built from linux-source-6.1.
const std::string k_debian = std::string(KCR_TEST_DATA) + "/debian-cloud-6.1.0-56.config";
const std::string k_broken = std::string(KCR_TEST_DATA) + "/broken-no-checkpoint-restore.config";
const std::string k_source = std::string(KCR_TEST_DATA) + "/kcr-source-6.1.192.config";

KernelConfig load(const std::string& path) {
  return parse_kernel_config(core::read_file(path), path);
}

const FragmentOption* find_option(const std::string& name) {
  const auto& f = kcr_kernel_fragment();
  auto it = std::find_if(f.begin(), f.end(), [&](const auto& o) { return o.name == name; });
  return it == f.end() ? nullptr : &*it;
}

const OptionCheck& status_of(const KernelCheck& check, const std::string& name) {
  auto it = std::find_if(check.options.begin(), check.options.end(),
                         [&](const auto& c) { return c.option.name == name; });
  if (it == check.options.end()) throw std::runtime_error(name + " was not checked");
  return *it;
}

std::vector<std::string> names(const std::vector<OptionCheck>& checks) {
  std::vector<std::string> out;
  for (const auto& c : checks) out.push_back(c.option.name);
  return out;
}

}  // namespace

TEST(KernelFragment, EmbeddedFragmentHasGuestMdOptionsAndMigrationNeeds) {
  // guest.md's measured set, what had to be added after the first try, and what
  // kcr migrate --lazy-pages / --pre-dump and the nftables lock need.
  for (const char* name :
       {"CONFIG_CHECKPOINT_RESTORE", "CONFIG_PVH", "CONFIG_PCI", "CONFIG_HUGETLBFS", "CONFIG_AUDIT",
        "CONFIG_IA32_EMULATION", "CONFIG_VIRTIO_CONSOLE", "CONFIG_VIRTIO_MMIO", "CONFIG_TIME_NS",
        "CONFIG_USERFAULTFD", "CONFIG_MEM_SOFT_DIRTY", "CONFIG_VIRTIO_NET", "CONFIG_NF_TABLES",
        "CONFIG_NFT_CT", "CONFIG_NFT_REJECT_INET", "CONFIG_PACKET_DIAG"}) {
    const FragmentOption* o = find_option(name);
    ASSERT_NE(o, nullptr) << name;
    EXPECT_EQ(o->need, Need::required) << name;
    EXPECT_EQ(o->value, "y") << name;
    EXPECT_FALSE(o->needed_by.empty()) << name;
  }
  const FragmentOption* modules = find_option("CONFIG_MODULES");
  ASSERT_NE(modules, nullptr);
  EXPECT_EQ(modules->need, Need::build_choice);
  EXPECT_EQ(modules->value, "n");
  EXPECT_EQ(find_option("CONFIG_KERNEL_LZ4")->need, Need::recommended);
}

TEST(KernelFragment, EveryModuleOfTheDebianImageIsBuiltIntoTheSourceKernel) {
  // images/image.cpp's k_guest_modules and the option that provides each one.
  const std::vector<std::pair<const char*, const char*>> provided_by = {
      {"virtio_mmio", "CONFIG_VIRTIO_MMIO"},
      {"virtio_console", "CONFIG_VIRTIO_CONSOLE"},
      {"virtio_net", "CONFIG_VIRTIO_NET"},
      {"vmw_vsock_virtio_transport", "CONFIG_VIRTIO_VSOCKETS"},
      {"unix_diag", "CONFIG_UNIX_DIAG"},
      {"inet_diag", "CONFIG_INET_DIAG"},
      {"tcp_diag", "CONFIG_INET_TCP_DIAG"},
      {"udp_diag", "CONFIG_INET_UDP_DIAG"},
      {"af_packet_diag", "CONFIG_PACKET_DIAG"},
      {"netlink_diag", "CONFIG_NETLINK_DIAG"},
      {"nf_tables", "CONFIG_NF_TABLES"},
      {"nft_ct", "CONFIG_NFT_CT"},
      {"nft_reject_inet", "CONFIG_NFT_REJECT_INET"},
      {"overlay", "CONFIG_OVERLAY_FS"},
      {"tun", "CONFIG_TUN"},
      {"veth", "CONFIG_VETH"}};
  for (const auto& [module, option] : provided_by) {
    const FragmentOption* o = find_option(option);
    ASSERT_NE(o, nullptr) << module;
    EXPECT_EQ(o->value, "y") << module;
  }
}

TEST(KernelFragment, ParsesGroupsAndRefusesOptionsWithoutOne) {
  auto f = parse_kernel_fragment(
      "# intro\n\n# needed by: A\nCONFIG_A=y\n# recommended for: B\nCONFIG_B=y\n"
      "# build choice: C\n# CONFIG_C is not set\nCONFIG_D=\"x y\"\n",
      "frag");
  ASSERT_EQ(f.size(), 4u);
  EXPECT_EQ(f[0].needed_by, "A");
  EXPECT_EQ(f[1].need, Need::recommended);
  EXPECT_EQ(f[2].name, "CONFIG_C");
  EXPECT_EQ(f[2].value, "n");
  EXPECT_EQ(f[3].value, "\"x y\"");
  EXPECT_EQ(f[3].need, Need::build_choice);
  EXPECT_THROW(parse_kernel_fragment("CONFIG_A=y\n", "frag"), Error);
  EXPECT_THROW(parse_kernel_fragment("# needed by: A\nA=y\n", "frag"), Error);
}

TEST(KernelConfigParse, ReadsDebiansCloudConfig) {
  KernelConfig c = load(k_debian);
  EXPECT_GT(c.size(), 1000u);
  EXPECT_EQ(c.at("CONFIG_CHECKPOINT_RESTORE"), "y");
  EXPECT_EQ(c.at("CONFIG_VIRTIO_CONSOLE"), "m");
  EXPECT_EQ(c.at("CONFIG_LOCALVERSION"), "\"\"");
  EXPECT_EQ(c.count("CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES"), 0u);  // "is not set"
}

TEST(KernelConfigParse, RejectsWhatIsNotAConfigAndNamesTheLine) {
  try {
    parse_kernel_config("CONFIG_A=y\nhello world\n", "some.file");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("some.file:2"), std::string::npos) << e.what();
  }
}

TEST(KernelCheck, DebiansCloudKernelHasEverythingRequiredSomeAsModules) {
  KernelCheck check = check_kernel_config(load(k_debian), kcr_kernel_fragment());
  EXPECT_TRUE(check.ok()) << describe_missing(check);
  EXPECT_EQ(status_of(check, "CONFIG_CHECKPOINT_RESTORE").status, OptionStatus::builtin);
  EXPECT_EQ(status_of(check, "CONFIG_VIRTIO_CONSOLE").status, OptionStatus::module);
  EXPECT_EQ(describe_status(status_of(check, "CONFIG_VIRTIO_CONSOLE")), "module");
  // Recommended only: missing is reported, not fatal.
  const OptionCheck& idle = status_of(check, "CONFIG_NO_HZ_IDLE");
  EXPECT_EQ(idle.status, OptionStatus::missing);
  EXPECT_EQ(idle.option.need, Need::recommended);
  // Build choices of the source kernel are not checked elsewhere.
  EXPECT_THROW(status_of(check, "CONFIG_MODULES"), std::runtime_error);
}

TEST(KernelCheck, BrokenConfigNamesEachMissingOptionAndWhatNeedsIt) {
  KernelCheck check = check_kernel_config(load(k_broken), kcr_kernel_fragment());
  EXPECT_FALSE(check.ok());
  EXPECT_EQ(names(check.missing_required()),
            (std::vector<std::string>{"CONFIG_VIRTIO_CONSOLE", "CONFIG_CHECKPOINT_RESTORE"}));
  std::string text = describe_missing(check);
  EXPECT_NE(text.find("CONFIG_CHECKPOINT_RESTORE (needed by: criu dump/restore"), std::string::npos)
      << text;
  EXPECT_NE(text.find("CONFIG_VIRTIO_CONSOLE (needed by: the agent channel"), std::string::npos)
      << text;
}

TEST(KernelCheck, SourceKernelHasEverythingBuiltInAndKeptEveryFragmentOption) {
  KernelConfig c = load(k_source);
  KernelCheck check = check_kernel_config(c, kcr_kernel_fragment());
  EXPECT_TRUE(check.ok()) << describe_missing(check);
  for (const auto& o : check.options) {
    EXPECT_EQ(o.status, OptionStatus::builtin) << o.option.name << ": " << describe_status(o);
  }
  EXPECT_TRUE(dropped_options(c, kcr_kernel_fragment()).empty());
  EXPECT_EQ(c.count("CONFIG_MODULES"), 0u);
}

TEST(KernelCheck, WrongValuesAndDroppedOptions) {
  auto fragment = parse_kernel_fragment(
      "# needed by: X\nCONFIG_A=y\nCONFIG_N=\"4\"\n# build choice: Y\n# CONFIG_M is not set\n",
      "frag");
  KernelConfig c = {{"CONFIG_A", "y"}, {"CONFIG_N", "\"8\""}, {"CONFIG_M", "y"}};
  KernelCheck check = check_kernel_config(c, fragment);
  ASSERT_EQ(check.options.size(), 2u);
  EXPECT_EQ(check.options[1].status, OptionStatus::wrong_value);
  EXPECT_EQ(describe_status(check.options[1]), "is \"8\", needs \"4\"");
  EXPECT_FALSE(check.ok());
  auto dropped = dropped_options(c, fragment);
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_EQ(dropped[0].name, "CONFIG_N");
  EXPECT_EQ(dropped[1].name, "CONFIG_M");
  c.erase("CONFIG_M");
  c["CONFIG_N"] = "\"4\"";
  EXPECT_TRUE(dropped_options(c, fragment).empty());
}

TEST(SourceKernelKey, FollowsSourceVersionAndFragment) {
  std::string key = source_kernel_key("6.1.192-2", "# needed by: A\nCONFIG_A=y\n");
  EXPECT_TRUE(key.starts_with("6.1.192-2-")) << key;
  EXPECT_EQ(key.size(), std::string("6.1.192-2-").size() + 12);
  EXPECT_EQ(key, source_kernel_key("6.1.192-2", "# needed by: A\nCONFIG_A=y\n"));
  EXPECT_NE(key, source_kernel_key("6.1.192-3", "# needed by: A\nCONFIG_A=y\n"));
  EXPECT_NE(key, source_kernel_key("6.1.192-2", "# needed by: A\nCONFIG_A=m\n"));
  EXPECT_TRUE(source_kernel_key("1:6.1~rc1/x", "").starts_with("1_6.1_rc1_x-"));
}

}  // namespace kcr::images
