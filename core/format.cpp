#include "core/format.hpp"

#include <fmt/core.h>

namespace kcr::core {

std::string format_seconds(double seconds) {
  return fmt::format("{:.2f} s", seconds);
}

std::string format_bytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{} KiB", (bytes + 512) / 1024);
  if (bytes < 1024ull * 1024 * 1024) return fmt::format("{:.1f} MiB", bytes / 1048576.0);
  return fmt::format("{:.2f} GiB", bytes / 1073741824.0);
}

}  // namespace kcr::core
