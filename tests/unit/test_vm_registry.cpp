#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "core/files.hpp"
#include "fakes.hpp"
#include "temp_dir.hpp"
#include "vm/accel.hpp"
#include "vm/vm.hpp"

namespace fs = std::filesystem;
using namespace kcr;

namespace {

// A config whose state and cache live in a fresh temporary directory, and a
// KVM device that opens (/dev/null stands in for /dev/kvm).
struct Host {
  test::TempDir tmp;
  std::string root = tmp.path();
  core::Config cfg;
  Host() {
    cfg.state_dir = root + "/state";
    cfg.cache_dir = root + "/cache";
    cfg.data_dir = root + "/data";
    fs::create_directories(cfg.cache_dir);
    ::setenv("KCR_KVM_DEVICE", "/dev/null", 1);
  }
  ~Host() { ::unsetenv("KCR_KVM_DEVICE"); }
  vm::VmStartOptions options(const std::string& name, const std::string& accel = "auto") {
    vm::VmStartOptions o;
    o.name = name;
    o.accel = accel;
    return o;
  }
};

bool any_contains(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines) {
    if (l.find(needle) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST(KvmFallback, AbortingKvmFallsBackToTcgSayingWhyAndRemembers) {
  Host h;
  test::FakeBackend b;
  b.launch_outcome[vm::Accel::kvm] =
      "QEMU failed to start: qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69";
  std::vector<std::string> said;
  auto info = vm::start_vm(h.cfg, b, h.options("a"), nullptr,
                           [&](const std::string& l) { said.push_back(l); });
  EXPECT_EQ(info.accel, "tcg");
  EXPECT_EQ(b.launches, (std::vector<std::string>{"a kvm", "a tcg"}));
  EXPECT_TRUE(any_contains(said,
                           "KVM does not work on this host (QEMU failed to start: "
                           "qemu-system-x86_64: error: failed to set MSR 0x10a"))
      << (said.empty() ? "" : said.back());
  EXPECT_TRUE(any_contains(said, "falling back to TCG"));
  // The verdict is remembered: the next boot does not pay the probe.
  std::vector<std::string> said2;
  auto info2 = vm::start_vm(h.cfg, b, h.options("b"), nullptr,
                            [&](const std::string& l) { said2.push_back(l); });
  EXPECT_EQ(info2.accel, "tcg");
  EXPECT_EQ(b.launches.back(), "b tcg");
  EXPECT_EQ(b.launches.size(), 3u);
  EXPECT_TRUE(any_contains(said2, "using TCG (verdict remembered in"));
  EXPECT_TRUE(fs::exists(h.cfg.cache_dir + "/kvm-verdicts.yaml"));
  EXPECT_NE(core::read_file(h.cfg.cache_dir + "/kvm-verdicts.yaml").find("fake 1.0"),
            std::string::npos);
}

TEST(KvmFallback, GuestThatNeverAnswersUnderKvmFallsBackToTcg) {
  Host h;
  test::FakeBackend b;
  b.launch_outcome[vm::Accel::kvm] = "hang";
  auto info = vm::start_vm(h.cfg, b, h.options("a"), nullptr);
  EXPECT_EQ(info.accel, "tcg");
  EXPECT_EQ(b.launches, (std::vector<std::string>{"a kvm", "a tcg"}));
  EXPECT_TRUE(b.alive(info));
}

TEST(KvmFallback, WorkingKvmIsUsedAndRemembered) {
  Host h;
  test::FakeBackend b;
  auto info = vm::start_vm(h.cfg, b, h.options("a"), nullptr);
  EXPECT_EQ(info.accel, "kvm");
  vm::KvmVerdicts v(h.cfg.cache_dir + "/kvm-verdicts.yaml");
  auto key = "fake | fake 1.0 | host kernel " + vm::host_kernel_release();
  ASSERT_TRUE(v.find(key).has_value());
  EXPECT_TRUE(v.find(key)->works);
}

TEST(KvmFallback, AskingForKvmFailsLoudlyWithTheHypervisorsWords) {
  Host h;
  test::FakeBackend b;
  b.launch_outcome[vm::Accel::kvm] = "QEMU failed to start: failed to set MSR 0x10a to 0x69";
  try {
    vm::start_vm(h.cfg, b, h.options("a", "kvm"), nullptr);
    FAIL() << "--accel kvm fell back";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("failed to set MSR 0x10a"), std::string::npos) << e.what();
  }
  EXPECT_EQ(b.launches, (std::vector<std::string>{"a kvm"}));
  EXPECT_FALSE(fs::exists(h.cfg.state_dir + "/vms/a"));  // nothing left behind
}

TEST(KvmFallback, NoKvmDeviceMeansTcgWithoutAProbe) {
  Host h;
  ::setenv("KCR_KVM_DEVICE", "/nonexistent/kvm", 1);
  test::FakeBackend b;
  auto info = vm::start_vm(h.cfg, b, h.options("a"), nullptr);
  EXPECT_EQ(info.accel, "tcg");
  EXPECT_EQ(b.launches, (std::vector<std::string>{"a tcg"}));
  EXPECT_THROW(vm::start_vm(h.cfg, b, h.options("b", "kvm"), nullptr), Error);
}

TEST(KvmFallback, AGuestThatFailsUnderTcgTooIsNotBlamedOnKvm) {
  Host h;
  test::FakeBackend b;
  b.launch_outcome[vm::Accel::kvm] = "kernel panic";
  b.launch_outcome[vm::Accel::tcg] = "kernel panic";
  EXPECT_THROW(vm::start_vm(h.cfg, b, h.options("a"), nullptr), Error);
  vm::KvmVerdicts v(h.cfg.cache_dir + "/kvm-verdicts.yaml");
  EXPECT_FALSE(v.find("fake | fake 1.0 | host kernel " + vm::host_kernel_release()).has_value());
}

TEST(KvmVerdicts, UnreadableCacheIsNoVerdict) {
  Host h;
  std::string path = h.cfg.cache_dir + "/kvm-verdicts.yaml";
  core::write_file_atomic(path, "{{{ not yaml");
  vm::KvmVerdicts v(path);
  EXPECT_FALSE(v.find("k").has_value());
  v.remember("k", {false, "why"});
  ASSERT_TRUE(v.find("k").has_value());
  EXPECT_EQ(v.find("k")->reason, "why");
}

TEST(Registry, RecordNamesTheBackendAndListFindsIt) {
  Host h;
  test::FakeBackend b;
  vm::start_vm(h.cfg, b, h.options("a", "tcg"), nullptr);
  std::string record = core::read_file(h.cfg.state_dir + "/vms/a/vm.yaml");
  EXPECT_NE(record.find("backend: fake"), std::string::npos);
}

// A running VM's agent that stays silent on a channel gets a fresh one, up to three; a VM
// that exited is an error at once, without more channels.
TEST(AgentReconnect, SilentChannelsAreRetriedThreeTimesAtMost) {
  test::FakeBackend b;
  vm::VmInfo info;
  info.name = "a";
  b.guests["a"].silent_channels = 2;
  auto c = vm::connect_running_agent(b, info, {}, 3, std::chrono::milliseconds(1));
  EXPECT_EQ(c.hello.protocol_version(), kcr::k_protocol_version);
  EXPECT_EQ(b.guests["a"].channels, 3);

  b.guests["a"].channels = 0;
  b.guests["a"].silent_channels = 3;
  EXPECT_THROW(vm::connect_running_agent(b, info, {}, 3, std::chrono::milliseconds(1)),
               vm::HelloTimeout);
  EXPECT_EQ(b.guests["a"].channels, 3);

  b.guests["a"].channels = 0;
  b.guests["a"].silent_channels = 1;
  try {
    vm::connect_running_agent(
        b, info, [] { throw Error("it exited"); }, 3, std::chrono::milliseconds(1));
    FAIL() << "a VM that exited was waited for";
  } catch (const vm::HelloTimeout&) {
    FAIL() << "a VM that exited was reported as silent";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "it exited");
  }
  EXPECT_EQ(b.guests["a"].channels, 1);
}
