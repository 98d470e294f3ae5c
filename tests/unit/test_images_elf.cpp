#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "core/error.hpp"
#include "images/elf.hpp"
#include "images/initramfs.hpp"
#include "images/libraries.hpp"
#include "images/modules.hpp"
#include "test_images_util.hpp"

namespace kcr::images {

TEST(ElfDeps, HostLsNeedsLibcAndTheLoader) {
  ElfDeps deps = read_host_elf_deps("/bin/ls");
  EXPECT_EQ(deps.interp, "/lib64/ld-linux-x86-64.so.2");
  EXPECT_NE(std::find(deps.needed.begin(), deps.needed.end(), "libc.so.6"), deps.needed.end());
}

TEST(ElfDeps, RejectsNonElfWithClearError) {
  try {
    parse_elf_deps("#!/bin/sh\necho hi\n", "script.sh");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "script.sh: not an ELF file");
  }
  EXPECT_THROW(parse_elf_deps(std::string_view("\x7f"
                                               "ELF\x02\x01",
                                               6),
                              "short"),
               Error);
}

TEST(Modinfo, ParsesNameAndDepends) {
  std::string ko = test::make_ko({"license=GPL", "depends=virtio,virtio-ring", "retpoline=Y",
                                  "name=virtio_net", "vermagic=6.1.0 SMP"});
  ModInfo info = parse_modinfo(ko, "virtio_net.ko");
  EXPECT_EQ(info.name, "virtio_net");
  EXPECT_EQ(info.depends, (std::vector<std::string>{"virtio", "virtio_ring"}));
}

TEST(Modinfo, EmptyDependsAndMissingSection) {
  ModInfo info = parse_modinfo(test::make_ko({"depends=", "name=tun"}), "tun.ko");
  EXPECT_EQ(info.name, "tun");
  EXPECT_TRUE(info.depends.empty());
  EXPECT_THROW(parse_modinfo(test::make_elf_with_section(".text", "abc"), "x.ko"), Error);
  EXPECT_THROW(parse_modinfo("not elf", "x.ko"), Error);
}

TEST(OrderModules, DependenciesComeFirst) {
  std::map<std::string, std::vector<std::string>> deps = {
      {"virtio_net", {"net_failover", "virtio"}},
      {"net_failover", {"failover"}},
      {"failover", {}},
      {"virtio", {"virtio_ring"}},
      {"virtio_ring", {}},
      {"virtio_mmio", {"virtio", "virtio_ring"}},
  };
  auto order = order_modules({"virtio_mmio", "virtio_net"}, deps);
  EXPECT_EQ(order, (std::vector<std::string>{"virtio_ring", "virtio", "virtio_mmio", "failover",
                                             "net_failover", "virtio_net"}));
}

TEST(OrderModules, DashAndUnderscoreAreTheSame) {
  std::map<std::string, std::vector<std::string>> deps = {{"af_packet_diag", {"inet-diag"}},
                                                          {"inet_diag", {}}};
  EXPECT_EQ(order_modules({"af-packet-diag"}, deps),
            (std::vector<std::string>{"inet_diag", "af_packet_diag"}));
  EXPECT_EQ(module_name_from_path("kernel/net/packet/af-packet_diag.ko"), "af_packet_diag");
}

TEST(OrderModules, MissingDependencyIsNamed) {
  std::map<std::string, std::vector<std::string>> deps = {{"nft_ct", {"nf_conntrack"}}};
  try {
    order_modules({"nft_ct"}, deps);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'nf_conntrack' (needed by 'nft_ct')"), std::string::npos)
        << e.what();
  }
}

TEST(OrderModules, CycleIsDetected) {
  std::map<std::string, std::vector<std::string>> deps = {{"a", {"b"}}, {"b", {"c"}}, {"c", {"a"}}};
  try {
    order_modules({"a"}, deps);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a -> b -> c -> a"), std::string::npos) << e.what();
  }
}

TEST(LibraryClosure, FollowsNeededTransitivelyWithFakeResolver) {
  std::map<std::string, ElfDeps> files = {
      {"/usr/bin/app", {"/lib64/ld.so", {"libA.so.1", "libc.so.6"}, {}}},
      {"/usr/bin/tool", {"/lib64/ld.so", {"libc.so.6"}, {}}},
      {"/lib/libA.so.1", {"", {"libB.so.2"}, {}}},
      {"/lib/libB.so.2", {"", {"libc.so.6"}, {}}},
      {"/lib/libc.so.6", {"", {"ld.so"}, {}}},
      {"/lib64/ld.so", {"", {}, {}}},
  };
  auto read = [&](const std::string& p) { return files.at(p); };
  auto resolve = [](const std::string& soname, const std::vector<std::string>&,
                    const std::string&) -> std::optional<std::string> {
    if (soname == "ld.so") return "/lib64/ld.so";
    if (soname == "libmissing.so") return std::nullopt;
    return "/lib/" + soname;
  };
  auto libs = library_closure({"/usr/bin/app", "/usr/bin/tool"}, read, resolve);
  EXPECT_EQ(libs, (std::vector<std::string>{"/lib/libA.so.1", "/lib/libB.so.2", "/lib/libc.so.6",
                                            "/lib64/ld.so"}));
  files["/usr/bin/bad"] = {"", {"libmissing.so"}, {}};
  try {
    library_closure({"/usr/bin/bad"}, read, resolve);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("libmissing.so (needed by /usr/bin/bad)"),
              std::string::npos);
  }
}

TEST(LibraryClosure, RealHostLs) {
  auto libs = library_closure({"/bin/ls"}, read_host_elf_deps, resolve_host_library);
  EXPECT_NE(std::find(libs.begin(), libs.end(), "/lib64/ld-linux-x86-64.so.2"), libs.end());
  bool has_libc = std::any_of(libs.begin(), libs.end(),
                              [](const std::string& l) { return l.ends_with("/libc.so.6"); });
  EXPECT_TRUE(has_libc);
}

}  // namespace kcr::images
