#pragma once

#include "vm/backend.hpp"
#include "vm/qemu_command.hpp"

namespace kcr::vm {

// The guest OPTIONS describes, as QEMU runs it with ACCEL and its sockets in
// DIR (spec.qemu left at its default): the kernel command line every backend
// gives kcr's guest (kernel_cmdline of it), with KCR_AGENT_FAULT's injection.
QemuSpec guest_spec(const VmStartOptions& options, Accel accel, const std::string& dir);

// Joins the migration links of the VMs in A and B (link_args): points each VM's
// peer.sock at the other's net.sock. Both hypervisors must run on this host.
void join_link_sockets(const VmInfo& a, const VmInfo& b);

// VMs run by kcr's own daemonized `qemu-system-x86_64 -M microvm`: QMP,
// the agent's virtio-serial port and the serial console are unix sockets in
// the VM's state directory; the migration link is a `-netdev dgram` socket.
class QemuBackend final : public Backend {
 public:
  std::string name() const override { return "qemu"; }
  // The first line of `qemu-system-x86_64 --version`.
  std::string version(const core::Config& cfg) override;
  pid_t launch(const core::Config& cfg, const VmStartOptions& options, Accel accel,
               const std::string& dir) override;
  // Reads /proc/PID/cmdline: the process must name this VM's QMP socket.
  bool alive(const VmInfo& info) const override;
  // The agent's shutdown, then QMP quit, then SIGKILL.
  void terminate(const VmInfo& info, bool ask_agent) override;
  std::unique_ptr<AgentChannel> connect_agent(const VmInfo& info) override;
  UniqueFd connect_console(const VmInfo& info) override;
  std::string serial_log_path(const VmInfo& info) const override;
  // QEMU's migration to a file descriptor handed over QMP.
  SaveResult save(const VmInfo& info, const std::string& path) override;
  // Points each VM's peer.sock at the other's net.sock.
  void link(const VmInfo& a, const VmInfo& b) override;
};

}  // namespace kcr::vm
