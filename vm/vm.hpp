#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "core/config.hpp"
#include "core/unique_fd.hpp"
#include "vm/agent_client.hpp"

namespace kcr::vm {

// What a VM boots and how big it is.
struct VmStartOptions {
  std::string name;
  std::string image;  // guest image name, recorded for ls
  std::string kernel;
  std::string initrd;
  std::string kernel_release;
  std::string image_hash;
  uint64_t memory_mib = 512;
  unsigned cpus = 1;
  std::string accel = "auto";
  std::vector<std::string> extra_append;  // extra kernel command line words
};

// A VM as kcr knows it from its state directory.
struct VmInfo {
  std::string name;
  std::string state;  // "running" or "exited" (QEMU gone)
  std::string dir;    // state directory
  std::string image;
  std::string image_hash;
  std::string kernel_release;
  std::string accel;
  std::string created;  // ISO-8601 UTC
  pid_t pid = 0;
  uint64_t memory_mib = 0;
  unsigned cpus = 0;
  uint64_t boot_ms = 0;  // from QEMU start to the agent's hello
};

using Progress = std::function<void(const std::string&)>;

// Starts a VM and returns once its agent said hello. On failure nothing is
// left behind (no QEMU, no state directory) and the error carries the tail of
// the serial log.
VmInfo start_vm(const core::Config& cfg, const VmStartOptions& options, proto::Hello* hello,
                const Progress& progress = {});

// Shuts the VM down (agent shutdown, then QMP quit, then SIGKILL) and removes
// its state. Throws when no such VM exists.
void stop_vm(const core::Config& cfg, const std::string& name);

// All VMs in the state directory. VMs whose QEMU has gone are reported once
// with state "exited" and their state is removed.
std::vector<VmInfo> list_vms(const core::Config& cfg);

// The VM named NAME; throws kcr::Error with a hint when there is none.
VmInfo get_vm(const core::Config& cfg, const std::string& name);

// The last LINES lines of a VM's serial log (empty when there is none).
std::string serial_tail(const std::string& vm_dir, std::size_t lines);

// Exclusive use of one running VM: holds its lock and a connection to its
// agent for as long as it lives, so two kcr commands never drive one VM at once.
class VmSession {
 public:
  // Locks the VM (waiting for another kcr command to finish) and connects to
  // its agent. Throws kcr::Error when the VM does not exist or is not running.
  VmSession(const core::Config& cfg, const std::string& name,
            std::chrono::seconds lock_wait = std::chrono::seconds(300));

  const VmInfo& info() const { return m_info; }
  const proto::Hello& hello() const { return m_hello; }
  AgentClient& agent() { return *m_agent; }

  // Sends REQUEST and returns the response; errors gain "VM 'NAME': " context.
  proto::Response call(proto::Request request,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60));

 private:
  VmInfo m_info;
  UniqueFd m_lock;
  std::unique_ptr<AgentClient> m_agent;
  proto::Hello m_hello;
};

// What saving a whole VM cost (QEMU's own migration to a file).
struct SaveResult {
  uint64_t bytes = 0;
  uint64_t ms = 0;
};

// Saves the whole VM NAME (RAM and devices) to PATH, which must not exist,
// with QEMU's migration to a file descriptor, then lets the VM run on. The
// alternative to CRIU a user might pick; scripts/bench compares the two.
SaveResult save_vm_state(const core::Config& cfg, const std::string& name, const std::string& path);

// Takes the VM's lock file; waits up to WAIT when another process holds it.
UniqueFd lock_vm_dir(const std::string& dir, const std::string& name, std::chrono::seconds wait);

// True when PID is a live QEMU serving the VM in DIR (guards against PID reuse).
bool qemu_alive(pid_t pid, const std::string& dir);

}  // namespace kcr::vm
