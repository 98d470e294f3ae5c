#include "images/agent/log.hpp"

#include <time.h>
#include <unistd.h>

#include <string>

namespace kcr::agent {

namespace {

constexpr int k_window_seconds = 10;
constexpr int k_lines_per_window = 20;

time_t g_window_start = 0;
int g_lines_in_window = 0;
int g_suppressed = 0;

void write_line(std::string_view message) {
  std::string line = "kcr-agent: ";
  line.append(message);
  line.push_back('\n');
  // The console may be slow but never needs more than a best effort.
  std::size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

void log_always(std::string_view message) {
  write_line(message);
}

void log_line(std::string_view message) {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (now.tv_sec - g_window_start >= k_window_seconds) {
    if (g_suppressed > 0) {
      write_line("(" + std::to_string(g_suppressed) + " log lines suppressed)");
    }
    g_window_start = now.tv_sec;
    g_lines_in_window = 0;
    g_suppressed = 0;
  }
  if (g_lines_in_window >= k_lines_per_window) {
    ++g_suppressed;
    return;
  }
  ++g_lines_in_window;
  write_line(message);
}

}  // namespace kcr::agent
