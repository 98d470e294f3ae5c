#pragma once

#include <string>

namespace kcr::vm {

// How a VM's CPUs run: hardware virtualization or QEMU's software emulation.
enum class Accel { kvm, tcg };

// Resolves "auto" | "kvm" | "tcg": auto picks KVM when /dev/kvm can be
// opened read-write. Throws kcr::Error when "kvm" is asked for and unusable.
Accel choose_accel(const std::string& wanted);

const char* to_string(Accel a);

}  // namespace kcr::vm
