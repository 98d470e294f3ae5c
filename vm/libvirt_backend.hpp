#pragma once

#include <string>

#include "vm/backend.hpp"

namespace kcr::vm {

// The URI the libvirt backend connects to when none is given.
inline constexpr const char* k_libvirt_default_uri = "qemu:///system";

// The name of kcr VM NAME's libvirt domain.
std::string libvirt_domain_name(const std::string& vm_name);

// The domain XML of a transient libvirt domain running kcr's guest: QEMU's
// microvm machine with ACPI (the guest finds its virtio-mmio devices there),
// direct kernel boot, the agent's virtio-serial port "kcr.agent" bound to
// DIR/agent.sock, the serial console on DIR/console.sock logged to
// DIR/serial.log, domain type kvm or qemu (TCG) after ACCEL. UUID names the
// domain so kcr never touches one of the same name it did not create. With
// DAC_LABEL ("+0:+0"), QEMU runs as that user and group, so it can reach the
// VM's private state directory; empty leaves libvirt's own. The migration link's NIC
// (link_args) is passed through to QEMU. With DATA_DISKS, DIR/out.img and
// DIR/in.img as raw virtio-mmio disks, as the QEMU backend attaches them (vm/data_disk.hpp).
// REMOTE (a daemon of another host): nothing in DIR; the console is a pty there, the agent
// socket's path libvirt's own, no data disks, no migration link; OPTIONS' kernel and
// initrd are paths there.
std::string libvirt_domain_xml(const VmStartOptions& options, Accel accel, const std::string& dir,
                               const std::string& uuid, const std::string& dac_label,
                               bool data_disks = false, bool remote = false);

// VMs run as transient libvirt domains through the libvirt C API (never
// virsh): nothing stays defined once a domain stops. The agent's port and the
// console are unix sockets in the VM's state directory, as with QemuBackend,
// so everything kcr does through the agent works the same; the domain's UUID
// is kept in the state directory.
class LibvirtBackend final : public Backend {
 public:
  std::string name() const override { return "libvirt"; }
  // REQUESTED, or qemu:///system when empty.
  std::string connect_uri(const std::string& requested) const override;
  // "libvirt 9.0.0": the version of the daemon at the config's connection URI.
  std::string version(const core::Config& cfg) override;
  // virDomainCreateXML; refuses a domain name already taken on that URI.
  pid_t launch(const core::Config& cfg, const VmStartOptions& options, Accel accel,
               const std::string& dir) override;
  // virDomainIsActive of the VM's domain (by UUID). A daemon that cannot be
  // reached counts as alive: the domain may run on, and its state must not go.
  bool alive(const VmInfo& info) const override;
  // The agent's shutdown, then virDomainDestroy.
  void terminate(const VmInfo& info, bool ask_agent) override;
  std::unique_ptr<AgentChannel> connect_agent(const VmInfo& info) override;
  UniqueFd connect_console(const VmInfo& info) override;
  std::string serial_log_path(const VmInfo& info) const override;
  // Not supported yet: throws kcr::Error.
  SaveResult save(const VmInfo& info, const std::string& path) override;
  // Both VMs' daemons on this host (qemu:///...): join_link_sockets, since
  // each domain has the QEMU backend's link NIC (passed through with
  // <qemu:commandline>). Throws kcr::Error for a VM on another host.
  void link(const VmInfo& a, const VmInfo& b) override;
  // Another host's VM: volume NAME of that daemon's kcr pool.
  std::string keep_on_vm_host(const VmInfo& info, const std::string& name,
                              const std::function<void(const std::string&)>& write) override;
};

}  // namespace kcr::vm
