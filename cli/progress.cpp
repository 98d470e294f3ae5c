#include "cli/progress.hpp"

#include "core/files.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>

#include "core/format.hpp"

namespace kcr::cli {

namespace {

constexpr double k_bar_interval_s = 0.1;
constexpr double k_plain_interval_s = 1.0;
// A bar for a transfer shorter than this would only flicker.
constexpr double k_bar_delay_s = 0.3;
constexpr std::size_t k_min_bar = 10;
constexpr std::size_t k_max_bar = 40;

double rate_of(const core::TransferProgress& p) {
  return p.elapsed_s > 0 ? static_cast<double>(p.done) / p.elapsed_s : 0.0;
}

std::string format_rate(double rate) {
  return core::format_bytes(static_cast<uint64_t>(rate)) + "/s";
}

std::string format_eta(const core::TransferProgress& p) {
  double rate = rate_of(p);
  if (rate <= 0 || p.done >= p.total) return "ETA --";
  auto s = static_cast<uint64_t>((static_cast<double>(p.total - p.done) / rate) + 0.5);
  if (s < 60) return fmt::format("ETA {} s", s);
  return fmt::format("ETA {} min {:02} s", s / 60, s % 60);
}

std::string plain_line(const core::TransferProgress& p) {
  std::string done = core::format_bytes(p.done);
  std::string rate = format_rate(rate_of(p));
  if (p.finished) {
    return fmt::format("{}: {} {} in {}, {}", p.phase, done, p.verb,
                       core::format_seconds(p.elapsed_s), rate);
  }
  if (p.total == 0) return fmt::format("{}: {} {}, {}", p.phase, done, p.verb, rate);
  return fmt::format("{}: {} of {} {} ({}%), {}, {}", p.phase, done, core::format_bytes(p.total),
                     p.verb, p.done * 100 / p.total, rate, format_eta(p));
}

std::string bar_line(const core::TransferProgress& p, std::size_t width) {
  const std::size_t room = width > 1 ? width - 1 : 0;
  std::string rate = format_rate(rate_of(p));
  std::string right;
  if (p.total == 0) {
    right = fmt::format("{}  {}  {}", core::format_bytes(p.done), rate,
                        core::format_seconds(p.elapsed_s));
  } else {
    right = fmt::format("{} / {}  {}  {}", core::format_bytes(p.done), core::format_bytes(p.total),
                        rate, p.finished ? core::format_seconds(p.elapsed_s) : format_eta(p));
  }
  std::string bar;
  if (p.total != 0) {
    // The bar takes what the phase and the numbers leave, within bounds.
    std::size_t used = p.phase.size() + 2 + right.size() + 3;
    std::size_t cells = room > used ? std::min(room - used, k_max_bar) : 0;
    if (cells < k_min_bar) cells = k_min_bar;
    std::size_t full = static_cast<std::size_t>(static_cast<double>(cells) *
                                                static_cast<double>(std::min(p.done, p.total)) /
                                                static_cast<double>(p.total));
    bar = "[" + std::string(full, '#') + std::string(cells - full, '-') + "] ";
  }
  std::string phase = p.phase;
  std::size_t fixed = bar.size() + right.size() + 2;
  if (phase.size() + fixed > room) {
    // Keep the numbers: the phase gives way first, then the bar.
    std::size_t keep = room > fixed + 4 ? room - fixed : 0;
    phase = keep > 0 ? phase.substr(0, keep - 1) + "~" : "";
    if (keep == 0) bar.clear();
  }
  std::string out = phase.empty() ? bar + right : phase + "  " + bar + right;
  if (out.size() > room) out.resize(room);
  return out;
}

std::size_t terminal_width(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

}  // namespace

std::string format_transfer(const core::TransferProgress& p, ProgressStyle style,
                            std::size_t width) {
  return style == ProgressStyle::bar ? bar_line(p, width) : plain_line(p);
}

ProgressBar::ProgressBar(int fd)
    : ProgressBar(fd, ::isatty(fd) ? ProgressStyle::bar : ProgressStyle::plain,
                  ::isatty(fd) ? terminal_width(fd) : 80) {}

ProgressBar::ProgressBar(int fd, ProgressStyle style, std::size_t width)
    : m_fd(fd), m_style(style), m_width(width) {}

void ProgressBar::update(const core::TransferProgress& p) {
  if (p.phase != m_phase) {
    close_bar();
    m_phase = p.phase;
    m_shown = false;
    m_last_shown_s = 0;
  }
  bool due;
  if (m_style == ProgressStyle::bar) {
    due = p.finished ? m_shown
                     : p.elapsed_s >= k_bar_delay_s &&
                           (!m_shown || p.elapsed_s - m_last_shown_s >= k_bar_interval_s);
  } else {
    due = p.finished ? m_shown : p.elapsed_s - m_last_shown_s >= k_plain_interval_s;
  }
  if (!due) return;
  m_shown = true;
  m_last_shown_s = p.elapsed_s;
  if (m_style == ProgressStyle::bar) {
    // \r back to the start, the bar, then erase what a longer bar left.
    write("\r" + format_transfer(p, m_style, m_width) + "\033[K");
    m_bar_open = true;
    if (p.finished) close_bar();
  } else {
    write(format_transfer(p, m_style, m_width) + "\n");
  }
  if (p.finished) m_phase.clear();
}

void ProgressBar::line(const std::string& text) {
  if (m_bar_open) {
    write("\r\033[K");
    m_bar_open = false;
  }
  write(text + "\n");
}

void ProgressBar::close_bar() {
  if (!m_bar_open) return;
  write("\n");
  m_bar_open = false;
}

void ProgressBar::write(const std::string& text) {
  core::write_all(m_fd, text);  // stderr gone: nothing to report it to
}

}  // namespace kcr::cli
