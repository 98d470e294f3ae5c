#pragma once

// The pure parts of kcr-scenario (sizes, the buffer pattern and checksum, state-file lines,
// interval pacing), kept apart from main.cpp so the unit tests can link them. libc and the
// C++ standard library only: kcr-scenario is linked statically and runs inside the guest.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kcr::scenario {

// "4096", "512K", "10M", "1G", "2T" (binary units, case-insensitive, an optional trailing "B"
// or "iB": "10MiB", "10MB"). Returns nullopt for anything else, for 0 and on overflow.
std::optional<uint64_t> parse_size(std::string_view s);

// A plain unsigned decimal number without sign or spaces; nullopt otherwise or on overflow.
std::optional<uint64_t> parse_u64(std::string_view s);

// Fills N bytes at DATA with a xorshift64* sequence started from SEED (0 is replaced by a
// fixed non-zero value). The same seed always gives the same bytes.
void fill_pattern(void* data, std::size_t n, uint64_t seed);

// A 64-bit xxHash64-style checksum of every byte of DATA[0, N): four independent lanes over
// 32-byte stripes, then single words, then the tail bytes and the length. Alignment of DATA
// does not matter; the result depends only on the bytes.
uint64_t checksum(const void* data, std::size_t n);

// 16 lowercase hex digits, and back (exactly 16 hex digits, either case).
std::string hex64(uint64_t v);
std::optional<uint64_t> parse_hex64(std::string_view s);

// Two whitespace-separated fields of a state file ("SIZE CHECKSUM" in membuf.expected,
// "GENERATION CHECKSUM" in membuf.actual): a decimal number then a hex checksum. Trailing
// newline allowed.
struct NumberAndSum {
  uint64_t number = 0;
  uint64_t sum = 0;
};
std::optional<NumberAndSum> parse_number_and_sum(std::string_view line);

// tcp-pair's state line: "received N errors E", or "broken REASON", or anything else
// (nothing received yet). healthy() is true only for "received N errors 0".
struct PairState {
  bool received = false;  // the line has the "received N errors E" form
  uint64_t count = 0;
  uint64_t errors = 0;
  bool healthy() const { return received && errors == 0; }
};
PairState parse_pair_state(std::string_view line);
std::string format_pair_state(uint64_t count, uint64_t errors);

// Paces a loop to one tick per interval on CLOCK_MONOTONIC without bursts after a freeze
// (checkpoint, a stopped VM, a restore on another boot where the clock jumped): a lag of
// more than 4 intervals, or a clock that went backwards, restarts the schedule from now.
class Pacer {
 public:
  explicit Pacer(int64_t interval_ns) : interval_ns_(interval_ns) {}
  // Given the current monotonic time, returns how many ns to sleep until the next tick
  // (0..interval) and moves the schedule on by one tick.
  int64_t delay(int64_t now_ns);

 private:
  int64_t interval_ns_;
  int64_t deadline_ns_ = 0;
  bool started_ = false;
};

}  // namespace kcr::scenario
