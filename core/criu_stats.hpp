#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/json.hpp"

namespace kcr::core {

// CRIU's own statistics, in podman's names; times in microseconds.
struct CriuDumpStats {
  uint64_t freezing_time = 0;
  uint64_t frozen_time = 0;
  uint64_t memdump_time = 0;
  uint64_t memwrite_time = 0;
  uint64_t pages_scanned = 0;
  uint64_t pages_written = 0;
};

// The magic a CRIU stats image (stats-dump, stats-restore) starts with after the images' own.
inline constexpr uint32_t k_stats_magic = 0x57093306;

struct CriuRestoreStats {
  uint64_t forking_time = 0;
  uint64_t restore_time = 0;
  uint64_t pages_restored = 0;
};

// Parses a CRIU stats image (stats-dump or stats-restore): magics, then one
// length-prefixed StatsEntry. Returns nullopt for anything malformed; the
// bytes come from the guest and are bounded before use.
std::optional<CriuDumpStats> parse_dump_stats(const std::string& bytes);
std::optional<CriuRestoreStats> parse_restore_stats(const std::string& bytes);

// STATS in podman's criu_statistics names, every value a JSON number.
Json dump_stats_json(const CriuDumpStats& stats);

}  // namespace kcr::core
