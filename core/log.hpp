#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kcr::core {

// How much kcr tells about itself (--log-level, KCR_LOG_LEVEL); warn by default.
enum class LogLevel { debug, info, warn, error };

// The level named TEXT ("debug", "info", "warn", "error"), or nullopt.
std::optional<LogLevel> parse_log_level(std::string_view text);

// Lines below LEVEL are dropped from now on.
void set_log_level(LogLevel level);

// Log lines go to PATH (appended, created 0600) instead of stderr; throws
// kcr::Error when it cannot be opened.
void set_log_file(const std::string& path);

// True when a line at LEVEL would be written: callers skip building costly text.
bool log_enabled(LogLevel level);

// Writes one line "TIME LEVEL: TEXT" to the log when LEVEL is enabled.
void log(LogLevel level, std::string_view text);

}  // namespace kcr::core
