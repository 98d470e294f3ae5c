#pragma once

#include <cstddef>
#include <string>

#include "core/transfer_progress.hpp"

namespace kcr::cli {

// How a transfer report is shown: a bar redrawn in place on a terminal, or
// one plain line at a time for a log or a pipe.
enum class ProgressStyle { bar, plain };

// The text of report P: with BAR, one line at most WIDTH - 1 columns wide
// (bytes, a bar and the ETA when the total is known, the rate); with PLAIN,
// "checkpoint 'c1': 48.0 MiB received, 31.2 MiB/s".
std::string format_transfer(const core::TransferProgress& p, ProgressStyle style,
                            std::size_t width = 80);

// Shows transfer reports and progress lines on one file descriptor (stderr),
// throttled: a bar at most ten times a second, plain lines at most once a
// second, nothing for a transfer over in less than that.
class ProgressBar {
 public:
  // STYLE bar when FD is a terminal, else plain.
  explicit ProgressBar(int fd);
  ProgressBar(int fd, ProgressStyle style, std::size_t width);

  // Shows P if it is time to.
  void update(const core::TransferProgress& p);

  // Prints TEXT as a line of its own, below a bar being drawn.
  void line(const std::string& text);

 private:
  void write(const std::string& text);
  void close_bar();

  int m_fd;
  ProgressStyle m_style;
  std::size_t m_width;
  std::string m_phase;        // the transfer being shown
  bool m_shown = false;       // something of it is on screen
  bool m_bar_open = false;    // the cursor sits at the end of a bar
  double m_last_shown_s = 0;  // its elapsed time when last shown
};

}  // namespace kcr::cli
