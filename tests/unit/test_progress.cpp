#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "cli/progress.hpp"
#include "core/format.hpp"
#include "core/log.hpp"

using kcr::cli::format_transfer;
using kcr::cli::ProgressBar;
using kcr::cli::ProgressStyle;
using kcr::core::TransferProgress;

namespace {

constexpr uint64_t k_mib = 1 << 20;

TransferProgress report(uint64_t done, uint64_t total, double elapsed, bool finished = false) {
  TransferProgress p;
  p.phase = "checkpoint 'c1'";
  p.verb = "received";
  p.done = done;
  p.total = total;
  p.elapsed_s = elapsed;
  p.finished = finished;
  return p;
}

// What a ProgressBar wrote, read back from a pipe.
struct Captured {
  int fds[2];
  Captured() {
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe");
  }
  ~Captured() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  std::string text() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }
};

std::size_t count(const std::string& text, char c) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), c));
}

}  // namespace

TEST(FormatTransfer, PlainWithoutTotalShowsBytesAndRate) {
  EXPECT_EQ(format_transfer(report(48 * k_mib, 0, 2.0), ProgressStyle::plain),
            "checkpoint 'c1': 48.0 MiB received, 24.0 MiB/s");
}

TEST(FormatTransfer, PlainWithTotalShowsShareAndEta) {
  auto p = report(25 * k_mib, 100 * k_mib, 1.0);
  p.verb = "sent";
  EXPECT_EQ(format_transfer(p, ProgressStyle::plain),
            "checkpoint 'c1': 25.0 MiB of 100.0 MiB sent (25%), 25.0 MiB/s, ETA 3 s");
}

TEST(FormatTransfer, PlainFinishedSaysHowLong) {
  EXPECT_EQ(format_transfer(report(100 * k_mib, 0, 4.0, true), ProgressStyle::plain),
            "checkpoint 'c1': 100.0 MiB received in 4.00 s, 25.0 MiB/s");
}

TEST(FormatTransfer, BarFillsWithTheShareDone) {
  auto half = format_transfer(report(50 * k_mib, 100 * k_mib, 2.0), ProgressStyle::bar, 80);
  auto open = half.find('[');
  auto close = half.find(']');
  ASSERT_NE(open, std::string::npos);
  ASSERT_NE(close, std::string::npos);
  std::string cells = half.substr(open + 1, close - open - 1);
  EXPECT_EQ(count(cells, '#'), cells.size() / 2);
  EXPECT_NE(half.find("50.0 MiB / 100.0 MiB"), std::string::npos);
  EXPECT_NE(half.find("25.0 MiB/s"), std::string::npos);
  EXPECT_NE(half.find("ETA 2 s"), std::string::npos);
}

TEST(FormatTransfer, BarWithoutTotalHasNoEta) {
  auto line = format_transfer(report(48 * k_mib, 0, 2.0), ProgressStyle::bar, 80);
  EXPECT_EQ(line.find('['), std::string::npos);
  EXPECT_EQ(line.find("ETA"), std::string::npos);
  EXPECT_NE(line.find("48.0 MiB"), std::string::npos);
  EXPECT_NE(line.find("24.0 MiB/s"), std::string::npos);
}

TEST(FormatTransfer, BarNeverWrapsTheTerminal) {
  auto p = report(7 * k_mib, 100 * k_mib, 3.0);
  p.phase = "upload of 'a-rather-long-checkpoint-name-20261201-101010' to VM 'destination-vm'";
  for (std::size_t width : {20u, 40u, 60u, 80u, 200u}) {
    auto line = format_transfer(p, ProgressStyle::bar, width);
    EXPECT_LT(line.size(), width) << line;
    if (width >= 60) {
      EXPECT_NE(line.find("7.0 MiB / 100.0 MiB"), std::string::npos) << line;
    }
  }
}

TEST(FormatTransfer, EtaUnknownWithoutRate) {
  EXPECT_NE(format_transfer(report(0, 100, 0), ProgressStyle::plain).find("ETA --"),
            std::string::npos);
}

TEST(ProgressBar, PlainLinesAtMostOnceASecond) {
  Captured out;
  ProgressBar bar(out.fds[1], ProgressStyle::plain, 80);
  for (int i = 1; i <= 35; ++i) bar.update(report(i * k_mib, 0, i * 0.1));
  bar.update(report(35 * k_mib, 0, 3.5, true));
  std::string text = out.text();
  EXPECT_EQ(count(text, '\r'), 0u);
  EXPECT_EQ(count(text, '\n'), 4u) << text;  // at 1, 2, 3 s and the last
  EXPECT_NE(text.find("received in 3.50 s"), std::string::npos);
}

TEST(ProgressBar, QuickTransferShowsNothing) {
  Captured out;
  ProgressBar plain(out.fds[1], ProgressStyle::plain, 80);
  plain.update(report(k_mib, 0, 0.2));
  plain.update(report(k_mib, 0, 0.3, true));
  ProgressBar bar(out.fds[1], ProgressStyle::bar, 80);
  bar.update(report(k_mib, 0, 0.1));
  bar.update(report(k_mib, 0, 0.2, true));
  EXPECT_EQ(out.text(), "");
}

TEST(ProgressBar, BarRedrawsAtMostTenTimesASecond) {
  Captured out;
  ProgressBar bar(out.fds[1], ProgressStyle::bar, 80);
  for (int i = 1; i <= 200; ++i) bar.update(report(i * k_mib, 200 * k_mib, i * 0.01));
  bar.update(report(200 * k_mib, 200 * k_mib, 2.0, true));
  std::string text = out.text();
  // From 0.3 s to 2 s every 0.1 s, then the last draw, ended by one newline.
  EXPECT_GE(count(text, '\r'), 17u);
  EXPECT_LE(count(text, '\r'), 20u);
  EXPECT_EQ(count(text, '\n'), 1u);
  EXPECT_EQ(text.back(), '\n');
}

TEST(ProgressBar, LineClearsTheBarFirst) {
  Captured out;
  ProgressBar bar(out.fds[1], ProgressStyle::bar, 80);
  bar.update(report(k_mib, 0, 0.5));
  bar.line("restoring it in VM 'dst'");
  std::string text = out.text();
  EXPECT_NE(text.find("\r\033[Krestoring it in VM 'dst'\n"), std::string::npos) << text;
}

TEST(LogLevel, ParsesTheFourNames) {
  using kcr::core::LogLevel;
  EXPECT_EQ(kcr::core::parse_log_level("debug"), LogLevel::debug);
  EXPECT_EQ(kcr::core::parse_log_level("info"), LogLevel::info);
  EXPECT_EQ(kcr::core::parse_log_level("warn"), LogLevel::warn);
  EXPECT_EQ(kcr::core::parse_log_level("error"), LogLevel::error);
  EXPECT_FALSE(kcr::core::parse_log_level("loud"));
  EXPECT_FALSE(kcr::core::log_enabled(LogLevel::info));  // warn by default
  EXPECT_TRUE(kcr::core::log_enabled(LogLevel::warn));
}

TEST(ShellJoin, QuotesWhatAShellWouldSplit) {
  EXPECT_EQ(kcr::core::shell_join({"qemu", "-m", "512", "-append", "console=ttyS0 quiet", "it's"}),
            "qemu -m 512 -append 'console=ttyS0 quiet' 'it'\\''s'");
  EXPECT_EQ(kcr::core::shell_join({"a", ""}), "a ''");
}
