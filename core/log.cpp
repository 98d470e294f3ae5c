#include "core/log.hpp"

#include "core/files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <mutex>

#include <fmt/core.h>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace kcr::core {

namespace {

// One process-wide logger: kcr is one command at a time, and a global keeps
// every layer from having to carry a logger around.
struct Logger {
  std::mutex mutex;
  LogLevel level = LogLevel::warn;
  UniqueFd file;  // empty: stderr
};

Logger& logger() {
  static Logger l;
  return l;
}

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "?";
}

// Local time with milliseconds: lines of one command are read against each other.
std::string timestamp() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}", buf, ms.count());
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view text) {
  for (auto level : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error}) {
    if (text == level_name(level)) return level;
  }
  if (text == "warning") return LogLevel::warn;
  return std::nullopt;
}

void set_log_level(LogLevel level) {
  std::lock_guard lock(logger().mutex);
  logger().level = level;
}

void set_log_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) throw_errno("open log file " + path);
  std::lock_guard lock(logger().mutex);
  logger().file = std::move(fd);
}

bool log_enabled(LogLevel level) {
  std::lock_guard lock(logger().mutex);
  return level >= logger().level;
}

void log(LogLevel level, std::string_view text) {
  auto& l = logger();
  std::lock_guard lock(l.mutex);
  if (level < l.level) return;
  std::string line = fmt::format("{} {}: {}\n", timestamp(), level_name(level), text);
  int fd = l.file ? l.file.get() : STDERR_FILENO;
  // One write per line: lines from kcr and a progress bar never interleave mid-line.
  write_all(fd, line);
}

}  // namespace kcr::core
