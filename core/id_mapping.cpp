#include "core/id_mapping.hpp"

#include <charconv>
#include <cstdint>

#include "core/error.hpp"

namespace kcr::core {

namespace {

bool parse_u32(std::string_view s, uint32_t& out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > UINT32_MAX) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

bool overlaps(uint64_t a, uint64_t a_size, uint64_t b, uint64_t b_size) {
  return a < b + b_size && b < a + a_size;
}

}  // namespace

proto::IdMapping parse_id_mapping(const std::string& text, const std::string& option) {
  auto first = text.find(':');
  auto second = first == std::string::npos ? first : text.find(':', first + 1);
  uint32_t c = 0, h = 0, n = 0;
  if (second == std::string::npos || !parse_u32(std::string_view(text).substr(0, first), c) ||
      !parse_u32(std::string_view(text).substr(first + 1, second - first - 1), h) ||
      !parse_u32(std::string_view(text).substr(second + 1), n)) {
    throw Error(option + " '" + text + "' is not CONTAINER_ID:HOST_ID:SIZE",
                "for example " + option +
                    " 0:100000:65536 (container ids 0-65535 are host ids "
                    "100000-165535)",
                ExitCode::usage);
  }
  proto::IdMapping m;
  m.set_container_id(c);
  m.set_host_id(h);
  m.set_size(n);
  return m;
}

void validate_id_maps(const google::protobuf::RepeatedPtrField<proto::IdMapping>& maps,
                      const std::string& what) {
  if (maps.empty()) throw Error("the " + what + " is empty", {}, ExitCode::usage);
  if (maps.size() > k_max_id_mappings) {
    throw Error("the " + what + " has " + std::to_string(maps.size()) + " lines",
                "give at most " + std::to_string(k_max_id_mappings), ExitCode::usage);
  }
  bool root = false;
  for (int i = 0; i < maps.size(); ++i) {
    const auto& m = maps[i];
    const std::string line = std::to_string(m.container_id()) + ":" + std::to_string(m.host_id()) +
                             ":" + std::to_string(m.size());
    if (m.size() == 0)
      throw Error("the " + what + " line " + line + " maps no ids", {}, ExitCode::usage);
    if (uint64_t{m.container_id()} + m.size() > (uint64_t{1} << 32) ||
        uint64_t{m.host_id()} + m.size() > (uint64_t{1} << 32)) {
      throw Error("the " + what + " line " + line + " runs past id 4294967295", {},
                  ExitCode::usage);
    }
    for (int j = 0; j < i; ++j) {
      const auto& o = maps[j];
      if (overlaps(m.container_id(), m.size(), o.container_id(), o.size()) ||
          overlaps(m.host_id(), m.size(), o.host_id(), o.size())) {
        throw Error("the " + what + " lines " + line + " and " + std::to_string(o.container_id()) +
                        ":" + std::to_string(o.host_id()) + ":" + std::to_string(o.size()) +
                        " overlap",
                    {}, ExitCode::usage);
      }
    }
    if (m.container_id() == 0) root = true;
  }
  if (!root) {
    throw Error("the " + what + " does not map container id 0",
                "the workload's init runs as root inside it: add a line 0:HOST_ID:SIZE",
                ExitCode::usage);
  }
}

std::string id_map_text(const google::protobuf::RepeatedPtrField<proto::IdMapping>& maps) {
  std::string out;
  for (const auto& m : maps) {
    out += std::to_string(m.container_id()) + " " + std::to_string(m.host_id()) + " " +
           std::to_string(m.size()) + "\n";
  }
  return out;
}

uint32_t host_id_of_root(const google::protobuf::RepeatedPtrField<proto::IdMapping>& maps) {
  for (const auto& m : maps) {
    if (m.container_id() == 0) return m.host_id();
  }
  return 0;
}

}  // namespace kcr::core
