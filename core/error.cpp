#include "core/error.hpp"

#include <cerrno>
#include <cstring>

namespace kcr {

void throw_errno(const std::string& what) {
  int e = errno;
  throw Error(what + ": " + std::strerror(e));
}

}  // namespace kcr
