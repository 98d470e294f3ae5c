#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/unique_fd.hpp"
#include "vm/accel.hpp"
#include "vm/agent_channel.hpp"

namespace kcr::vm {

// What a VM boots and how big it is.
struct VmStartOptions {
  std::string name;
  std::string backend = "qemu";  // which Backend runs it
  std::string connect;           // the backend's connection URI (libvirt's); empty: its default
  std::string image;             // guest image name, recorded for ls
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
  std::string backend = "qemu";
  std::string connect;  // the backend's connection URI (libvirt's), empty for QEMU's
  std::string state;    // "running" or "exited" (the VM is gone)
  std::string dir;      // state directory
  std::string image;
  std::string image_hash;
  std::string kernel_release;
  std::string accel;
  std::string created;  // ISO-8601 UTC
  pid_t pid = 0;        // the hypervisor process on this host
  uint64_t memory_mib = 0;
  unsigned cpus = 0;
  uint64_t boot_ms = 0;  // from the VM's start to the agent's hello
};

// What saving a whole VM cost (the hypervisor's own snapshot to a file).
struct SaveResult {
  uint64_t bytes = 0;
  uint64_t ms = 0;
};

using Progress = std::function<void(const std::string&)>;

// One way of running VMs (QEMU directly, or through libvirt). Everything kcr
// does to a VM itself, rather than to its agent, goes through here: the VM
// registry (vm.hpp) and the engine never name a hypervisor's sockets, flags
// or commands. Methods take the VM's record; the state directory in it is
// the backend's to use.
class Backend {
 public:
  virtual ~Backend() = default;

  // The name recorded in each VM's state file ("qemu").
  virtual std::string name() const = 0;

  // The connection URI a VM of this backend records, from the one asked for
  // (empty: the backend's default). Backends that connect to nothing ignore
  // it and return "".
  virtual std::string connect_uri(const std::string& requested) const {
    (void)requested;
    return {};
  }

  // The hypervisor's version ("QEMU emulator version 7.2.22"): part of the
  // key under which KVM's verdict on this host is remembered.
  virtual std::string version(const core::Config& cfg) = 0;

  // Starts the VM OPTIONS describes with ACCEL, its state in DIR (created,
  // empty, locked by the caller), and returns the hypervisor's pid once the
  // VM runs; its agent may not have answered yet. Throws kcr::Error with the
  // hypervisor's own message when it does not start.
  virtual pid_t launch(const core::Config& cfg, const VmStartOptions& options, Accel accel,
                       const std::string& dir) = 0;

  // True when the VM INFO describes still runs (a reused pid never counts).
  virtual bool alive(const VmInfo& info) const = 0;

  // Ends the VM by every means, gentlest first (asking its agent to shut
  // down when ASK_AGENT), and returns once it is gone or cannot be ended.
  virtual void terminate(const VmInfo& info, bool ask_agent) = 0;

  // A new connection to the VM's agent; throws kcr::Error when there is none.
  virtual std::unique_ptr<AgentChannel> connect_agent(const VmInfo& info) = 0;

  // A connection to the VM's serial console.
  virtual UniqueFd connect_console(const VmInfo& info) = 0;

  // The file the VM's serial console is logged to since boot; empty when there is none on
  // this host (a VM on another host's libvirt daemon).
  virtual std::string serial_log_path(const VmInfo& info) const = 0;

  // Saves the whole VM (memory and devices) to PATH, which must not exist,
  // and lets it run on: the benchmark's whole-VM baseline.
  virtual SaveResult save(const VmInfo& info, const std::string& path) = 0;

  // Joins the migration links of two VMs of this backend so each guest's
  // NIC reaches the other's (post-copy's page server travels there).
  virtual void link(const VmInfo& a, const VmInfo& b) = 0;

  // When the VM runs on another host: WRITE makes a file at the path it is given, which
  // goes to that host as NAME, where its own tools find it (a libvirt daemon's storage
  // pool), replacing an older NAME; returns where it went. Empty, WRITE not called, when
  // the VM runs on this host.
  virtual std::string keep_on_vm_host(const VmInfo& info, const std::string& name,
                                      const std::function<void(const std::string&)>& write) {
    (void)info, (void)name, (void)write;
    return {};
  }
};

// The backend called NAME; throws kcr::Error naming the known ones otherwise.
Backend& backend_named(const std::string& name);

}  // namespace kcr::vm
