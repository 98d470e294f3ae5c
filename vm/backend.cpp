#include "vm/backend.hpp"

#include "core/error.hpp"
#include "vm/libvirt_backend.hpp"
#include "vm/qemu_backend.hpp"

namespace kcr::vm {

Backend& backend_named(const std::string& name) {
  // Records written before backends existed name none: they are QEMU's.
  static QemuBackend qemu;
  static LibvirtBackend libvirt;
  if (name == qemu.name() || name.empty()) return qemu;
  if (name == libvirt.name()) return libvirt;
  throw Error("unknown VM backend '" + name + "'", "kcr knows these backends: qemu, libvirt");
}

}  // namespace kcr::vm
