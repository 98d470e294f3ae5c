#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "vm/vm.hpp"

namespace kcr::engine {

// What to boot: a guest image with a size; zero and empty take the config's.
struct StartSpec {
  std::string name;
  std::string image;  // guest image name; empty: the config's default
  uint64_t memory_mib = 0;
  unsigned cpus = 0;
  std::string accel;
  std::string backend;  // empty: the config's
  std::string connect;  // empty: the config's
};

// How the guest image and config turn SPEC into what the registry boots.
vm::VmStartOptions start_options(const core::Config& cfg, const StartSpec& spec);

// The VMs an operation may use. LocalVms is the real one (the VM registry
// and the guest images); the engine's tests give it fakes.
class Vms {
 public:
  virtual ~Vms() = default;

  // Exclusive use of the running VM NAME; throws kcr::Error when there is none.
  virtual std::unique_ptr<vm::VmSession> open(const std::string& name) = 0;

  // Boots a VM as SPEC says and returns once its agent answered.
  virtual vm::VmInfo start(const StartSpec& spec) = 0;

  // Shuts VM NAME down and removes its state.
  virtual void stop(const std::string& name) = 0;

  // The names of the VMs that exist, running or not.
  virtual std::vector<std::string> names() = 0;

  // True when a running VM is called NAME.
  virtual bool running(const std::string& name) = 0;
};

// The VMs of this host: kcr's VM registry, booted from its guest images.
class LocalVms final : public Vms {
 public:
  LocalVms(const core::Config& cfg, vm::Progress progress)
      : m_cfg(cfg), m_progress(std::move(progress)) {}
  std::unique_ptr<vm::VmSession> open(const std::string& name) override;
  vm::VmInfo start(const StartSpec& spec) override;
  void stop(const std::string& name) override;
  std::vector<std::string> names() override;
  bool running(const std::string& name) override;

 private:
  const core::Config& m_cfg;
  vm::Progress m_progress;
};

// A VM an operation booted for itself (a temporary VM, a migration's fresh
// destination): stopped again when the guard goes, unless kept.
class OwnedVm {
 public:
  OwnedVm(Vms& vms) : m_vms(vms) {}
  OwnedVm(const OwnedVm&) = delete;
  OwnedVm& operator=(const OwnedVm&) = delete;
  ~OwnedVm();

  // Boots SPEC and owns the VM.
  void start(const StartSpec& spec);
  // The VM outlives the guard.
  void keep() { m_keep = true; }
  bool owns() const { return !m_name.empty(); }
  const std::string& name() const { return m_name; }

 private:
  Vms& m_vms;
  std::string m_name;
  bool m_keep = false;
};

// "demo-m1", "demo-m2", ...: the first name no VM has.
std::string fresh_vm_name(Vms& vms, const std::string& source);

}  // namespace kcr::engine
