#include <gtest/gtest.h>

#include "core/config.hpp"
#include "core/error.hpp"
#include "vm/backend.hpp"
#include "vm/libvirt_backend.hpp"
#include "vm/libvirt_remote.hpp"
#include "vm/qemu_command.hpp"

using namespace kcr::vm;

namespace {

VmStartOptions options() {
  VmStartOptions o;
  o.name = "demo";
  o.backend = "libvirt";
  o.kernel = "/c/vmlinuz";
  o.initrd = "/c/init&rd.cpio";
  o.memory_mib = 768;
  o.cpus = 2;
  o.extra_append = {"kcr.x=1"};
  return o;
}

bool has(const std::string& xml, const std::string& part) {
  return xml.find(part) != std::string::npos;
}

}  // namespace

TEST(LibvirtBackend, DomainIsMicrovmWithKcrDevicesInTheStateDir) {
  std::string x = libvirt_domain_xml(options(), Accel::tcg, "/run/kcr/vms/demo", "uuid-1", "+0:+0");
  EXPECT_TRUE(
      has(x, "<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"));
  EXPECT_TRUE(has(x, "<name>kcr-demo</name>"));
  EXPECT_TRUE(has(x, "<uuid>uuid-1</uuid>"));
  EXPECT_TRUE(has(x, "machine='microvm'"));
  EXPECT_TRUE(has(x, "<acpi/>"));  // the guest finds virtio-mmio devices through ACPI only
  EXPECT_TRUE(has(x, "<memory unit='MiB'>768</memory>"));
  EXPECT_TRUE(has(x, "<vcpu>2</vcpu>"));
  EXPECT_TRUE(has(x, "<kernel>/c/vmlinuz</kernel>"));
  EXPECT_TRUE(has(x, "<initrd>/c/init&amp;rd.cpio</initrd>"));  // escaped
  EXPECT_TRUE(has(x, "rdinit=/init"));
  EXPECT_TRUE(has(x, "clearcpuid=erms,rep_good"));  // TCG: plain copy loops, as for QEMU's
  EXPECT_TRUE(has(x, " kcr.x=1</cmdline>"));
  EXPECT_TRUE(has(x, "<target type='virtio' name='kcr.agent'/>"));
  EXPECT_TRUE(has(x, "path='/run/kcr/vms/demo/agent.sock'"));
  EXPECT_TRUE(has(x, "path='/run/kcr/vms/demo/console.sock'"));
  EXPECT_TRUE(has(x, "<log file='/run/kcr/vms/demo/serial.log'"));
  EXPECT_TRUE(has(x, "<address type='virtio-mmio'/>"));
  EXPECT_TRUE(has(x, "<on_reboot>destroy</on_reboot>"));
  EXPECT_TRUE(has(x, "<label>+0:+0</label>"));
  EXPECT_TRUE(has(x, "<cpu mode='maximum'/>"));
}

TEST(LibvirtBackend, KvmAndNoDacLabel) {
  std::string x = libvirt_domain_xml(options(), Accel::kvm, "/s", "u", "");
  EXPECT_TRUE(has(x, "<domain type='kvm' "));
  EXPECT_TRUE(has(x, "<cpu mode='host-passthrough'/>"));
  EXPECT_FALSE(has(x, "seclabel"));
  EXPECT_FALSE(has(x, "tsc_early_khz"));
  EXPECT_FALSE(has(x, "clearcpuid"));
}

TEST(LibvirtBackend, IsRegisteredAndDefaultsItsUri) {
  Backend& b = backend_named("libvirt");
  EXPECT_EQ(b.name(), "libvirt");
  EXPECT_EQ(b.connect_uri(""), "qemu:///system");
  EXPECT_EQ(b.connect_uri("qemu:///session"), "qemu:///session");
  EXPECT_EQ(backend_named("qemu").connect_uri("qemu:///system"), "");
  EXPECT_THROW(backend_named("xen"), kcr::Error);
}

TEST(LibvirtBackend, ConfigNamesBackendAndUri) {
  auto c = kcr::core::parse_config("backend: libvirt\nconnect: qemu+ssh://h/system\n", "t.yaml",
                                   kcr::core::Config{});
  EXPECT_EQ(c.backend, "libvirt");
  EXPECT_EQ(c.connect, "qemu+ssh://h/system");
  EXPECT_EQ(kcr::core::Config{}.backend, "qemu");
}

TEST(LibvirtBackend, DataDisksAsTheQemuBackendHasThem) {
  std::string x = libvirt_domain_xml(options(), Accel::tcg, "/s", "u", "", true);
  EXPECT_TRUE(has(x, "<source file='/s/out.img'/>"));
  EXPECT_TRUE(has(x, "<source file='/s/in.img'/>"));
  EXPECT_TRUE(has(x, "<serial>kcr-out</serial>"));
  EXPECT_TRUE(has(x, "<serial>kcr-in</serial>\n      <readonly/>"));
  EXPECT_TRUE(has(x, "error_policy='report'"));
  EXPECT_FALSE(has(libvirt_domain_xml(options(), Accel::tcg, "/s", "u", "", false), "<disk"));
}

TEST(LibvirtBackend, MigrationLinkIsTheQemuBackendsNicPassedThrough) {
  std::string x = libvirt_domain_xml(options(), Accel::tcg, "/s", "u", "");
  EXPECT_TRUE(has(x, "<qemu:commandline>\n    <qemu:arg value='-netdev'/>\n"));
  EXPECT_TRUE(has(x,
                  "<qemu:arg value='dgram,id=link0,local.type=unix,local.path=/s/net.sock,"
                  "remote.type=unix,remote.path=/s/peer.sock'/>"));
  EXPECT_TRUE(
      has(x, "<qemu:arg value='virtio-net-device,netdev=link0,mac=" + mac_for("demo") + "'/>"));
  // After <devices>, where libvirt's schema wants it.
  EXPECT_LT(x.find("</devices>"), x.find("<qemu:commandline>"));
}

TEST(LibvirtBackend, LinksOnlyVmsOnThisHost) {
  VmInfo a, b;
  a.name = "a";
  a.dir = "/nonexistent/a";
  a.backend = b.backend = "libvirt";
  b.name = "b";
  b.dir = "/nonexistent/b";
  b.connect = "qemu+ssh://h2/system";
  try {
    backend_named("libvirt").link(a, b);
    FAIL() << "linked a VM on another host";
  } catch (const kcr::Error& e) {
    EXPECT_TRUE(has(e.what(), "VM 'b' runs on libvirt at 'qemu+ssh://h2/system'")) << e.what();
  }
}

TEST(LibvirtBackend, OnlyQemuUrisWithoutAHostAreThisHosts) {
  EXPECT_TRUE(libvirt_uri_is_local("qemu:///system"));
  EXPECT_TRUE(libvirt_uri_is_local("qemu:///session"));
  EXPECT_FALSE(libvirt_uri_is_local("qemu+tcp://127.0.0.1:16510/system"));
  EXPECT_FALSE(libvirt_uri_is_local("qemu+ssh://host2/system"));
  EXPECT_FALSE(libvirt_uri_is_local("qemu://host2/system"));
}

TEST(LibvirtBackend, AnotherHostsDomainNamesNoFileOfThisHost) {
  VmStartOptions o = options();
  o.kernel = "/var/lib/libvirt/kcr/image-ab-kernel";
  std::string x = libvirt_domain_xml(o, Accel::tcg, "/run/kcr/vms/demo", "u", "", true, true);
  EXPECT_FALSE(has(x, "/run/kcr/vms/demo")) << x;  // no socket, log or disk of the state dir
  EXPECT_TRUE(has(x, "<kernel>/var/lib/libvirt/kcr/image-ab-kernel</kernel>"));
  EXPECT_TRUE(has(x, "<serial type='pty'>"));  // the console through virDomainOpenConsole
  EXPECT_TRUE(has(x, "<channel type='unix'>\n      <source mode='bind'/>"));
  EXPECT_TRUE(has(x, "<target type='virtio' name='kcr.agent'/>"));
  EXPECT_FALSE(has(x, "qemu:commandline"));  // no migration link across hosts
}
