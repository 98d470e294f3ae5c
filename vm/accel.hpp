#pragma once

#include <optional>
#include <string>

namespace kcr::vm {

// How a VM's CPUs run: hardware virtualization or QEMU's software emulation.
enum class Accel { kvm, tcg };

// True when the KVM device ($KCR_KVM_DEVICE, else /dev/kvm) opens
// read-write. That it opens does not mean KVM works: only a boot proves it.
bool kvm_device_usable();

// Resolves "auto" | "kvm" | "tcg" from the device alone: auto picks KVM when
// the device opens. Throws kcr::Error when "kvm" is asked for and unusable.
Accel choose_accel(const std::string& wanted);

const char* to_string(Accel a);

// What booting a guest under KVM showed on this host.
struct KvmVerdict {
  bool works = false;
  std::string reason;  // why not, in the hypervisor's words
};

// Verdicts remembered across commands in one YAML file, keyed by what
// decides them (backend, hypervisor version, host kernel), so only the first
// boot on a host pays for proving KVM.
class KvmVerdicts {
 public:
  explicit KvmVerdicts(std::string path) : m_path(std::move(path)) {}

  // The verdict remembered for KEY; nullopt when there is none (or the file is unreadable).
  std::optional<KvmVerdict> find(const std::string& key) const;

  // Remembers V for KEY. Best effort: a cache that cannot be written costs a probe next time.
  void remember(const std::string& key, const KvmVerdict& v) const;

  const std::string& path() const { return m_path; }

 private:
  std::string m_path;
};

// The running kernel's release (uname -r).
std::string host_kernel_release();

}  // namespace kcr::vm
