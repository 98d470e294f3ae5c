#include "core/criu_stats.hpp"

#include <cstring>

#include "criu_stats.pb.h"

namespace kcr::core {

namespace {

constexpr uint32_t k_service_magic = 0x55105940;  // images v1.1 service files

uint32_t read_u32(const std::string& b, std::size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;  // CRIU images are little-endian, as is x86_64
}

std::optional<criu::StatsEntry> parse_entry(const std::string& bytes) {
  if (bytes.size() < 12 || bytes.size() > (1u << 20)) return std::nullopt;
  std::size_t at = 0;
  if (read_u32(bytes, 0) == k_service_magic) at = 4;
  if (read_u32(bytes, at) != k_stats_magic) return std::nullopt;
  at += 4;
  uint32_t size = read_u32(bytes, at);
  at += 4;
  if (size > bytes.size() - at) return std::nullopt;
  criu::StatsEntry entry;
  if (!entry.ParseFromArray(bytes.data() + at, static_cast<int>(size))) return std::nullopt;
  return entry;
}

}  // namespace

std::optional<CriuDumpStats> parse_dump_stats(const std::string& bytes) {
  auto entry = parse_entry(bytes);
  if (!entry || !entry->has_dump()) return std::nullopt;
  const auto& d = entry->dump();
  CriuDumpStats s;
  s.freezing_time = d.freezing_time();
  s.frozen_time = d.frozen_time();
  s.memdump_time = d.memdump_time();
  s.memwrite_time = d.memwrite_time();
  s.pages_scanned = d.pages_scanned();
  s.pages_written = d.pages_written();
  return s;
}

std::optional<CriuRestoreStats> parse_restore_stats(const std::string& bytes) {
  auto entry = parse_entry(bytes);
  if (!entry || !entry->has_restore()) return std::nullopt;
  const auto& r = entry->restore();
  CriuRestoreStats s;
  s.forking_time = r.forking_time();
  s.restore_time = r.restore_time();
  s.pages_restored = r.pages_restored();
  return s;
}

Json dump_stats_json(const CriuDumpStats& stats) {
  auto s = Json::object();
  s.set("freezing_time", stats.freezing_time);
  s.set("frozen_time", stats.frozen_time);
  s.set("memdump_time", stats.memdump_time);
  s.set("memwrite_time", stats.memwrite_time);
  s.set("pages_scanned", stats.pages_scanned);
  s.set("pages_written", stats.pages_written);
  return s;
}

}  // namespace kcr::core
