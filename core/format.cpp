#include "core/format.hpp"

#include <fmt/core.h>

#include <cctype>
#include <string_view>

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

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& word : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !word.empty();
    for (char c : word) {
      bool safe = std::isalnum(static_cast<unsigned char>(c)) ||
                  std::string_view("_./=:,+-@%").find(c) != std::string_view::npos;
      plain = plain && safe;
    }
    if (plain) {
      out += word;
      continue;
    }
    out += '\'';
    for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += '\'';
  }
  return out;
}

}  // namespace kcr::core
