#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "core/config.hpp"
#include "core/unique_fd.hpp"
#include "vm/backend.hpp"

namespace kcr::vm {

// The VM registry: every VM has a state directory STATE/vms/NAME holding its
// record (vm.yaml, naming its backend), its lock and whatever its backend
// keeps there. These functions work for every backend.

// Starts a VM with the backend OPTIONS names and returns once its agent said
// hello. On failure nothing is left behind (no VM, no state directory) and
// the error carries the tail of the serial log.
// With --accel auto, KVM is used once a boot proved it works on this host;
// otherwise TCG, with one progress line saying why.
VmInfo start_vm(const core::Config& cfg, const VmStartOptions& options, proto::Hello* hello,
                const Progress& progress = {});

// The same with BACKEND instead of the one OPTIONS names (tests use fakes).
VmInfo start_vm(const core::Config& cfg, Backend& backend, const VmStartOptions& options,
                proto::Hello* hello, const Progress& progress = {});

// What --accel auto picks on this host for BACKEND ("kvm" or "tcg"), and why.
struct AccelChoice {
  std::string accel;
  std::string why;
};
AccelChoice auto_accel(const core::Config& cfg, Backend& backend);

// Shuts the VM down (its backend's gentlest way first) and removes its
// state. Throws when no such VM exists.
void stop_vm(const core::Config& cfg, const std::string& name);

// All VMs in the state directory. VMs that have gone are reported once with
// state "exited" and their state is removed.
std::vector<VmInfo> list_vms(const core::Config& cfg);

// The running VM named NAME; throws kcr::Error with a hint when there is none.
VmInfo get_vm(const core::Config& cfg, const std::string& name);

// The last LINES lines of the VM's serial log (empty when there is none).
std::string serial_tail(const VmInfo& info, std::size_t lines);

// A running VM's agent answers in milliseconds. Silence on a channel that stays open is a
// connection gone wrong on the way (a libvirt daemon that has just restarted can hand out a
// stream that carries nothing), and a fresh one gets through: connects to INFO's agent and
// waits EACH for its hello, up to TRIES channels. STILL_ALIVE as for wait_hello. Throws
// HelloTimeout when every channel stayed silent, other errors at once.
struct AgentConnection {
  std::unique_ptr<AgentChannel> agent;
  proto::Hello hello;
};
AgentConnection connect_running_agent(Backend& backend, const VmInfo& info,
                                      const std::function<void()>& still_alive, int tries = 3,
                                      std::chrono::milliseconds each = std::chrono::seconds(5));

// Exclusive use of one running VM: holds its lock and a connection to its
// agent for as long as it lives, so two kcr commands never drive one VM at once.
class VmSession {
 public:
  // Locks the VM (waiting for another kcr command to finish) and connects to
  // its agent. Throws kcr::Error when the VM does not exist or is not running.
  VmSession(const core::Config& cfg, const std::string& name,
            std::chrono::seconds lock_wait = std::chrono::seconds(300));

  // A session over parts already at hand (the engine's tests use fakes).
  VmSession(VmInfo info, Backend& backend, std::unique_ptr<AgentChannel> agent, proto::Hello hello,
            UniqueFd lock = {});

  const VmInfo& info() const { return m_info; }
  const proto::Hello& hello() const { return m_hello; }
  AgentChannel& agent() { return *m_agent; }
  Backend& backend() { return *m_backend; }

  // True while the VM runs.
  bool alive() const { return m_backend->alive(m_info); }

  // Sends REQUEST and returns the response; errors gain "VM 'NAME': " context.
  proto::Response call(proto::Request request,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60));

 private:
  VmInfo m_info;
  Backend* m_backend;
  UniqueFd m_lock;
  std::unique_ptr<AgentChannel> m_agent;
  proto::Hello m_hello;
};

// Saves the whole VM NAME (RAM and devices) to PATH, which must not exist,
// then lets the VM run on. The alternative to CRIU a user might pick;
// scripts/bench compares the two.
SaveResult save_vm_state(const core::Config& cfg, const std::string& name, const std::string& path);

// Takes the VM's lock file; waits up to WAIT when another process holds it.
UniqueFd lock_vm_dir(const std::string& dir, const std::string& name, std::chrono::seconds wait);

}  // namespace kcr::vm
