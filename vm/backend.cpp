#include "vm/backend.hpp"

#include "core/error.hpp"
#include "vm/qemu_backend.hpp"

namespace kcr::vm {

Backend& backend_named(const std::string& name) {
  // Records written before backends existed name none: they are QEMU's.
  static QemuBackend qemu;
  if (name == qemu.name() || name.empty()) return qemu;
  throw Error("unknown VM backend '" + name + "'", "kcr knows these backends: qemu");
}

}  // namespace kcr::vm
