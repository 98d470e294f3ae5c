#include "images/agent/staging.hpp"

#include <algorithm>

namespace kcr::agent {

std::size_t checkpoint_chunk_bytes(std::uint32_t requested) {
  if (requested == 0) return k_default_chunk;
  return std::min<std::size_t>(requested, k_max_chunk);
}

bool is_valid_image_name(std::string_view name) {
  if (name.empty() || name.size() > 255 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

bool is_valid_checkpoint_path(std::string_view path) {
  if (path == "dump.log" || path == "stats-dump") return true;
  constexpr std::string_view parents = "parents/";
  if (path.substr(0, parents.size()) == parents) {
    // "parents/K/images/NAME": a pre-dump round, K in 1..999 without leading zeros.
    path.remove_prefix(parents.size());
    std::size_t digits = 0;
    while (digits < path.size() && path[digits] >= '0' && path[digits] <= '9') ++digits;
    if (digits == 0 || digits > 3 || path[0] == '0' || digits >= path.size() ||
        path[digits] != '/') {
      return false;
    }
    path.remove_prefix(digits + 1);
    if (path.substr(0, 7) != "images/") return false;
  }
  constexpr std::string_view prefix = "images/";
  if (path.substr(0, prefix.size()) != prefix) return false;
  return is_valid_image_name(path.substr(prefix.size()));
}

bool is_pages_image(std::string_view name) {
  return name.substr(0, 6) == "pages-" && name.size() > 10 &&
         name.substr(name.size() - 4) == ".img";
}

pid_t parse_pidfile(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.empty() || text.size() > 9) return 0;
  long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return 0;
    value = value * 10 + (c - '0');
  }
  return value > 1 ? static_cast<pid_t>(value) : 0;
}

bool staging_fits(std::uint64_t size, std::uint64_t avail, std::uint64_t total) {
  // Keep an eighth of the filesystem (at least 16 MiB) free.
  std::uint64_t reserve = std::max<std::uint64_t>(total / 8, 16ULL * 1024 * 1024);
  return avail > reserve && size <= avail - reserve;
}

}  // namespace kcr::agent
