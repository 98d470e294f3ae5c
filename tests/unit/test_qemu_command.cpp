#include <gtest/gtest.h>

#include <algorithm>

#include "vm/qemu_command.hpp"

using namespace kcr::vm;

namespace {

QemuSpec spec() {
  QemuSpec s;
  s.qemu = "/usr/bin/qemu-system-x86_64";
  s.name = "demo";
  s.kernel = "/c/vmlinuz";
  s.initrd = "/c/initrd.cpio";
  s.state_dir = "/run/kcr/vms/demo";
  s.memory_mib = 768;
  s.cpus = 2;
  s.tsc_khz = 2096016;
  return s;
}

std::string after(const std::vector<std::string>& argv, const std::string& flag, int nth = 0) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i) {
    if (argv[i] == flag && nth-- == 0) return argv[i + 1];
  }
  return "<missing>";
}

}  // namespace

TEST(QemuCommand, MicrovmWithSizesAndKernel) {
  auto argv = build_qemu_argv(spec());
  EXPECT_EQ(argv[0], "/usr/bin/qemu-system-x86_64");
  EXPECT_EQ(after(argv, "-M"), "microvm");
  EXPECT_EQ(after(argv, "-m"), "768M");
  EXPECT_EQ(after(argv, "-smp"), "2");
  EXPECT_EQ(after(argv, "-kernel"), "/c/vmlinuz");
  EXPECT_EQ(after(argv, "-initrd"), "/c/initrd.cpio");
  EXPECT_EQ(after(argv, "-accel"), "tcg");
  EXPECT_EQ(after(argv, "-cpu"), "max");
  EXPECT_NE(std::find(argv.begin(), argv.end(), "-daemonize"), argv.end());
  EXPECT_NE(std::find(argv.begin(), argv.end(), "-no-reboot"), argv.end());
}

TEST(QemuCommand, KvmUsesHostCpu) {
  auto s = spec();
  s.accel = Accel::kvm;
  auto argv = build_qemu_argv(s);
  EXPECT_EQ(after(argv, "-accel"), "kvm");
  EXPECT_EQ(after(argv, "-cpu"), "host");
}

TEST(QemuCommand, AgentPortIsNamedAndSocketsLiveInTheStateDir) {
  auto argv = build_qemu_argv(spec());
  EXPECT_EQ(after(argv, "-device", 1), "virtserialport,chardev=agent0,name=kcr.agent");
  EXPECT_EQ(after(argv, "-chardev", 2),
            "socket,id=agent0,path=/run/kcr/vms/demo/agent.sock,server=on,wait=off");
  EXPECT_EQ(after(argv, "-chardev", 0),
            "socket,id=con0,path=/run/kcr/vms/demo/console.sock,server=on,wait=off,logfile=/run/"
            "kcr/vms/demo/serial.log");
  EXPECT_EQ(after(argv, "-pidfile"), "/run/kcr/vms/demo/qemu.pid");
}

TEST(QemuCommand, EveryVmHasAMigrationLinkToItsPeerSocket) {
  auto argv = build_qemu_argv(spec());
  EXPECT_EQ(after(argv, "-netdev"),
            "dgram,id=link0,local.type=unix,local.path=/run/kcr/vms/demo/net.sock,remote.type="
            "unix,remote.path=/run/kcr/vms/demo/peer.sock");
  EXPECT_EQ(after(argv, "-device", 2), "virtio-net-device,netdev=link0,mac=" + mac_for("demo"));
  // Locally administered, and different for different VMs.
  EXPECT_EQ(mac_for("demo").substr(0, 6), "52:54:");
  EXPECT_EQ(mac_for("demo").size(), 17u);
  EXPECT_NE(mac_for("demo"), mac_for("demo-m1"));
  EXPECT_EQ(mac_for("demo"), mac_for("demo"));
}

TEST(QemuCommand, CmdlineCarriesTheHostTscFrequency) {
  auto s = spec();
  s.accel = Accel::kvm;
  EXPECT_EQ(kernel_cmdline(s), "console=ttyS0 panic=1 rdinit=/init tsc_early_khz=2096016");
  s.tsc_khz.reset();
  s.extra_append = {"loglevel=4"};
  EXPECT_EQ(kernel_cmdline(s), "console=ttyS0 panic=1 rdinit=/init loglevel=4");
}

TEST(QemuCommand, TcgGuestsCopyWithPlainLoopsNotStringInstructions) {
  auto s = spec();
  s.accel = Accel::tcg;
  EXPECT_EQ(kernel_cmdline(s),
            "console=ttyS0 panic=1 rdinit=/init tsc_early_khz=2096016 clearcpuid=erms,rep_good");
  s.tcg_plain_copies = false;  // KCR_TCG_STRING_OPS=1
  EXPECT_EQ(kernel_cmdline(s), "console=ttyS0 panic=1 rdinit=/init tsc_early_khz=2096016");
  // Under KVM the CPU's own fast strings are the fast way.
  s.tcg_plain_copies = true;
  s.accel = Accel::kvm;
  EXPECT_EQ(kernel_cmdline(s).find("clearcpuid"), std::string::npos);
}

TEST(QemuCommand, ParsesTscFromCpuinfo) {
  EXPECT_EQ(parse_tsc_khz("processor\t: 0\ncpu MHz\t\t: 2096.016\n"), 2096016u);
  EXPECT_FALSE(parse_tsc_khz("processor\t: 0\n").has_value());
  EXPECT_FALSE(parse_tsc_khz("cpu MHz\t: nonsense\n").has_value());
}

TEST(QemuCommand, TcgIsAlwaysAvailable) {
  EXPECT_EQ(choose_accel("tcg"), Accel::tcg);
}

// The in disk is read-only to the guest: only the host writes a restore's images there.
TEST(QemuCommand, DataDisksAreRawVirtioBlkDevicesNamedBySerialThatReportErrorsToTheGuest) {
  auto s = spec();
  s.disks = {{"/run/kcr/vms/demo/out.img", "kcr-out"}, {"/run/a,b/in.img", "kcr-in", true}};
  auto argv = build_qemu_argv(s);
  EXPECT_EQ(after(argv, "-drive", 0),
            "file=/run/kcr/vms/demo/out.img,if=none,id=data0,format=raw,cache=writeback,"
            "werror=report,rerror=report");
  // A comma in a path is doubled, as QEMU's option syntax wants.
  EXPECT_EQ(after(argv, "-drive", 1),
            "file=/run/a,,b/in.img,if=none,id=data1,format=raw,cache=writeback,"
            "werror=report,rerror=report,readonly=on");
  EXPECT_EQ(after(argv, "-device", 3), "virtio-blk-device,drive=data0,serial=kcr-out");
  EXPECT_EQ(after(argv, "-device", 4), "virtio-blk-device,drive=data1,serial=kcr-in");
}

TEST(QemuCommand, NoDataDisksWhenNoneAreAsked) {
  auto argv = build_qemu_argv(spec());
  EXPECT_EQ(after(argv, "-drive"), "<missing>");
}
