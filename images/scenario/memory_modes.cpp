// kcr-scenario's workloads whose state is memory: counter (a number it increments) and membuf
// (a buffer it checksums on request), with their probes; mmap-file (a file mapped shared and
// private), answering the generic probe.

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <string>

#include "images/scenario/checker.hpp"
#include "images/scenario/modes.hpp"

namespace kcr::scenario {

// ---- counter ------------------------------------------------------------------------------

int run_counter(const Args& a) {
  int64_t interval = static_cast<int64_t>(a.number("interval-ms", 1000, 1, 86'400'000)) * k_ms;
  std::string path = state_dir(a) + "/counter";
  log_startup("kcr-scenario counter: pid " + std::to_string(::getpid()) + ", every " +
              std::to_string(interval / k_ms) + " ms to " + path);
  uint64_t counter = 0;
  Pacer pacer(interval);
  for (;;) {
    ++counter;
    write_file_atomic(path, std::to_string(counter) + "\n", "counter");
    sleep_ns(pacer.delay(mono_ns()));
  }
}

int run_counter_probe(const Args& a) {
  std::string path = state_dir(a) + "/counter";
  auto content = read_small_file(path);
  if (!content) fail(k_exit_unreadable, "cannot read " + path + ": " + errno_text(errno));
  auto v = kcr::scenario::parse_u64(first_line(*content));
  if (!v) fail(k_exit_mismatch, path + " does not hold a number: '" + first_line(*content) + "'");
  std::printf("%llu\n", static_cast<unsigned long long>(*v));
  return k_exit_ok;
}

// ---- membuf -------------------------------------------------------------------------------

int run_membuf(const Args& a) {
  std::string size_text = a.get("size", "10M");
  auto size = kcr::scenario::parse_size(size_text);
  if (!size || *size > (uint64_t{1} << 40)) usage_error("bad --size '" + size_text + "'");
  uint64_t rate_mb = a.number("rewrite-mb-per-s", 0, 0, 1'000'000);
  std::string dir = state_dir(a);

  // SIGUSR1 stays blocked and is taken with sigtimedwait: no handler, no async-signal rules,
  // and a probe's signal can never kill us before we are ready for it.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, nullptr);

  auto n = static_cast<std::size_t>(*size);
  void* mem = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED)
    fail(k_exit_unreadable, "cannot allocate " + size_text + ": " + errno_text(errno));
  timespec rt{};
  ::clock_gettime(CLOCK_REALTIME, &rt);
  uint64_t seed = (static_cast<uint64_t>(rt.tv_sec) * 1'000'000'007ULL) ^
                  static_cast<uint64_t>(rt.tv_nsec) ^ (static_cast<uint64_t>(mono_ns()) << 17);
  kcr::scenario::fill_pattern(mem, n, seed);
  uint64_t expected = kcr::scenario::checksum(mem, n);

  // A stale membuf.actual from an earlier run would carry a higher generation than ours.
  ::unlink((dir + "/membuf.actual").c_str());
  if (!write_file_atomic(dir + "/membuf.expected",
                         std::to_string(n) + " " + kcr::scenario::hex64(expected) + "\n",
                         "membuf") ||
      !write_file_atomic(dir + "/membuf.pid", std::to_string(::getpid()) + "\n", "membuf")) {
    fail(k_exit_unreadable, "cannot write the state files in " + dir);
  }
  log_startup("kcr-scenario membuf: pid " + std::to_string(::getpid()) + ", " + std::to_string(n) +
              " bytes, checksum " + kcr::scenario::hex64(expected) + ", rewrite " +
              std::to_string(rate_mb) + " MB/s, state in " + dir);

  // Rewriting copies each word onto itself through a volatile pointer: the bytes (and so the
  // checksum) stay the same but every page written gets dirtied again.
  volatile uint64_t* words = static_cast<uint64_t*>(mem);
  const std::size_t word_count = n / 8;
  std::size_t cursor = 0;
  double owed_bytes = 0;
  const double rate_bytes_per_ns = static_cast<double>(rate_mb) * 1048576.0 / 1e9;
  int64_t last = mono_ns();
  uint64_t generation = 0;

  for (;;) {
    timespec timeout = to_timespec(rate_mb > 0 ? 100 * k_ms : 10 * k_s);
    int sig = ::sigtimedwait(&usr1, nullptr, &timeout);
    if (sig == SIGUSR1) {
      ++generation;
      uint64_t actual = kcr::scenario::checksum(mem, n);
      write_file_atomic(dir + "/membuf.actual",
                        std::to_string(generation) + " " + kcr::scenario::hex64(actual) + "\n",
                        "membuf");
    }
    if (rate_mb > 0 && word_count > 0) {
      int64_t now = mono_ns();
      int64_t elapsed = now - last;
      last = now;
      if (elapsed < 0) elapsed = 0;
      if (elapsed > k_s) elapsed = k_s;  // frozen or restored: do not catch up
      owed_bytes += static_cast<double>(elapsed) * rate_bytes_per_ns;
      if (owed_bytes > static_cast<double>(n)) owed_bytes = static_cast<double>(n);
      auto todo = static_cast<std::size_t>(owed_bytes / 8);
      owed_bytes -= static_cast<double>(todo) * 8;
      while (todo > 0) {
        std::size_t chunk = std::min(todo, word_count - cursor);
        for (std::size_t i = cursor; i < cursor + chunk; ++i) words[i] = words[i];
        cursor = (cursor + chunk) % word_count;
        todo -= chunk;
      }
    }
  }
}

int run_membuf_probe(const Args& a) {
  uint64_t timeout_s = a.number("timeout-s", 30, 1, 3600);
  std::string dir = state_dir(a);
  auto pid_text = read_small_file(dir + "/membuf.pid");
  auto pid = pid_text ? kcr::scenario::parse_u64(first_line(*pid_text)) : std::nullopt;
  if (!pid || *pid == 0 || *pid > 0x3fffffff) {
    fail(k_exit_unreadable,
         "membuf is not running here: cannot read a pid from " + dir + "/membuf.pid");
  }
  auto expected_text = read_small_file(dir + "/membuf.expected");
  auto expected =
      expected_text ? kcr::scenario::parse_number_and_sum(*expected_text) : std::nullopt;
  if (!expected)
    fail(k_exit_unreadable, "cannot read 'SIZE CHECKSUM' from " + dir + "/membuf.expected");

  auto read_actual = [&]() -> std::optional<kcr::scenario::NumberAndSum> {
    auto t = read_small_file(dir + "/membuf.actual");
    return t ? kcr::scenario::parse_number_and_sum(*t) : std::nullopt;
  };
  auto before = read_actual();
  uint64_t old_generation = before ? before->number : 0;
  if (::kill(static_cast<pid_t>(*pid), SIGUSR1) != 0) {
    fail(k_exit_unreadable,
         "cannot signal membuf (pid " + std::to_string(*pid) + "): " + errno_text(errno));
  }
  int64_t deadline = mono_ns() + static_cast<int64_t>(timeout_s) * k_s;
  for (;;) {
    auto now_actual = read_actual();
    if (now_actual && now_actual->number > old_generation) {
      if (now_actual->sum == expected->sum) {
        std::printf("ok %llu %s\n", static_cast<unsigned long long>(expected->number),
                    kcr::scenario::hex64(expected->sum).c_str());
        return k_exit_ok;
      }
      std::printf("mismatch expected=%s actual=%s\n", kcr::scenario::hex64(expected->sum).c_str(),
                  kcr::scenario::hex64(now_actual->sum).c_str());
      return k_exit_mismatch;
    }
    if (mono_ns() >= deadline) {
      fail(k_exit_unreadable, "membuf (pid " + std::to_string(*pid) +
                                  ") wrote no checksum within " + std::to_string(timeout_s) + " s");
    }
    sleep_ns(20 * k_ms);
  }
}

// ---- mmap-file ----------------------------------------------------------------------------

// A 256 KiB file in /tmp written through a MAP_SHARED mapping, and a MAP_PRIVATE mapping of the
// same file whose odd pages were written (copied on write) and whose even pages still show the
// file. The check: the shared mapping is the file, a write through it reaches the file, the
// private copies kept their own bytes, the untouched private pages still follow the file.
int run_mmap_file(const Args& a) {
  constexpr std::size_t page = 4096, pages = 64, n = page * pages;
  const std::string path = state_dir(a) + "/mmap-file-" + seed().substr(0, 8);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::ftruncate(fd, n) != 0) fail_errno("create " + path);
  auto* shared = static_cast<char*>(::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  auto* priv = static_cast<char*>(::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0));
  if (shared == MAP_FAILED || priv == MAP_FAILED) fail_errno("mmap " + path);
  const std::string file_data = seeded(n, 7), own = seeded(n, 8);
  std::copy(file_data.begin(), file_data.end(), shared);
  for (std::size_t p = 1; p < pages; p += 2) {
    std::copy(own.begin() + p * page, own.begin() + (p + 1) * page, priv + p * page);
  }
  log_startup("mmap-file: " + path + " mapped shared and private, 32 private pages copied");
  uint64_t round = 0;
  serve_checks(a, "mmap-file", [&] {
    std::string got(n, '\0');
    if (::pread(fd, got.data(), n, 0) != static_cast<ssize_t>(n))
      return std::string("bad short read");
    if (got != file_data) return std::string("bad the file no longer holds what was written");
    if (std::string(shared, n) != got) return std::string("bad the shared mapping and file differ");
    for (std::size_t p = 0; p < pages; ++p) {
      const std::string& want = p % 2 ? own : file_data;
      if (!std::equal(priv + p * page, priv + (p + 1) * page, want.begin() + p * page)) {
        return "bad private page " + std::to_string(p) +
               (p % 2 ? " lost its copied bytes" : " no longer shows the file");
      }
    }
    // A write through the shared mapping must reach the file; put the byte back after.
    char mark = static_cast<char>(++round | 0x80), back = 0;
    char old = shared[100];
    shared[100] = mark;
    bool reached = ::pread(fd, &back, 1, 100) == 1 && back == mark;
    shared[100] = old;
    if (!reached) return std::string("bad a write through the shared mapping missed the file");
    return "ok " + seed() + " file=" + sum_of(got) + " private=" + sum_of(std::string(priv, n));
  });
}

}  // namespace kcr::scenario
