#include "vm/accel.hpp"

#include <fcntl.h>
#include <unistd.h>

#include "core/error.hpp"

namespace kcr::vm {

const char* to_string(Accel a) {
  return a == Accel::kvm ? "kvm" : "tcg";
}

Accel choose_accel(const std::string& wanted) {
  bool kvm_usable = false;
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    kvm_usable = true;
    ::close(fd);
  }
  if (wanted == "tcg") return Accel::tcg;
  if (wanted == "kvm") {
    if (!kvm_usable) {
      throw Error("KVM was asked for but /dev/kvm cannot be opened",
                  "use --accel tcg (software emulation) or give this user access to /dev/kvm",
                  ExitCode::usage);
    }
    return Accel::kvm;
  }
  return kvm_usable ? Accel::kvm : Accel::tcg;
}

}  // namespace kcr::vm
