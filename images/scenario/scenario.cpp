#include "images/scenario/scenario.hpp"

#include <cstring>

namespace kcr::scenario {

namespace {

constexpr uint64_t k_p1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t k_p2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t k_p3 = 0x165667B19E3779F9ULL;
constexpr uint64_t k_p4 = 0x85EBCA77C2B2AE63ULL;
constexpr uint64_t k_p5 = 0x27D4EB2F165667C5ULL;

inline uint64_t rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

inline uint64_t load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;  // host byte order; the checksum is only ever compared on one machine
}

inline uint64_t round(uint64_t acc, uint64_t w) {
  return rotl(acc + w * k_p2, 31) * k_p1;
}

inline uint64_t merge(uint64_t h, uint64_t acc) {
  return (h ^ round(0, acc)) * k_p1 + k_p4;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::optional<uint64_t> parse_size(std::string_view s) {
  std::size_t digits = 0;
  while (digits < s.size() && is_digit(s[digits])) ++digits;
  auto number = parse_u64(s.substr(0, digits));
  if (!number) return std::nullopt;
  std::string_view unit = s.substr(digits);
  int shift = 0;
  if (!unit.empty()) {
    switch (unit.front()) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      case 't':
      case 'T':
        shift = 40;
        break;
      case 'b':
      case 'B':
        shift = 0;
        break;
      default:
        return std::nullopt;
    }
    if (shift != 0) unit.remove_prefix(1);
    if (unit == "iB" || unit == "ib") {
      if (shift == 0) return std::nullopt;  // "iB" alone is not a unit
    } else if (!(unit.empty() || unit == "B" || unit == "b")) {
      return std::nullopt;
    }
  }
  if (*number == 0 || *number > (UINT64_MAX >> shift)) return std::nullopt;
  return *number << shift;
}

void fill_pattern(void* data, std::size_t n, uint64_t seed) {
  uint64_t x = seed != 0 ? seed : 0x853C49E6748FEA9BULL;
  auto next = [&x] {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545F4914F6CDD1DULL;
  };
  auto* p = static_cast<unsigned char*>(data);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = next();
    std::memcpy(p + i, &w, 8);
  }
  if (i < n) {
    uint64_t w = next();
    std::memcpy(p + i, &w, n - i);
  }
}

uint64_t checksum(const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* end = p + n;
  uint64_t h;
  if (n >= 32) {
    uint64_t a1 = k_p1 + k_p2, a2 = k_p2, a3 = 0, a4 = 0 - k_p1;
    const unsigned char* limit = end - 32;
    do {
      a1 = round(a1, load64(p));
      a2 = round(a2, load64(p + 8));
      a3 = round(a3, load64(p + 16));
      a4 = round(a4, load64(p + 24));
      p += 32;
    } while (p <= limit);
    h = rotl(a1, 1) + rotl(a2, 7) + rotl(a3, 12) + rotl(a4, 18);
    h = merge(h, a1);
    h = merge(h, a2);
    h = merge(h, a3);
    h = merge(h, a4);
  } else {
    h = k_p5;
  }
  h += static_cast<uint64_t>(n);
  for (; p + 8 <= end; p += 8) h = rotl(h ^ round(0, load64(p)), 27) * k_p1 + k_p4;
  for (; p < end; ++p) h = rotl(h ^ (static_cast<uint64_t>(*p) * k_p5), 11) * k_p1;
  h ^= h >> 33;
  h *= k_p2;
  h ^= h >> 29;
  h *= k_p3;
  h ^= h >> 32;
  return h;
}

std::string hex64(uint64_t v) {
  static const char digits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[i] = digits[v & 0xF];
  return s;
}

std::optional<uint64_t> parse_hex64(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v;
}

std::optional<NumberAndSum> parse_number_and_sum(std::string_view line) {
  line = trim(line);
  auto space = line.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto number = parse_u64(line.substr(0, space));
  auto sum = parse_hex64(trim(line.substr(space + 1)));
  if (!number || !sum) return std::nullopt;
  return NumberAndSum{*number, *sum};
}

PairState parse_pair_state(std::string_view line) {
  PairState st;
  line = trim(line);
  constexpr std::string_view received = "received ";
  constexpr std::string_view errors = " errors ";
  if (!line.starts_with(received)) return st;
  line.remove_prefix(received.size());
  auto pos = line.find(errors);
  if (pos == std::string_view::npos) return st;
  auto count = parse_u64(line.substr(0, pos));
  auto errs = parse_u64(line.substr(pos + errors.size()));
  if (!count || !errs) return st;
  st.received = true;
  st.count = *count;
  st.errors = *errs;
  return st;
}

std::string format_pair_state(uint64_t count, uint64_t errors) {
  return "received " + std::to_string(count) + " errors " + std::to_string(errors);
}

int64_t Pacer::delay(int64_t now_ns) {
  if (!started_ || now_ns - deadline_ns_ > 4 * interval_ns_ ||
      deadline_ns_ - now_ns > interval_ns_) {
    deadline_ns_ = now_ns;  // first tick, long freeze, or the clock went backwards
    started_ = true;
  }
  deadline_ns_ += interval_ns_;
  int64_t d = deadline_ns_ - now_ns;
  return d < 0 ? 0 : d;
}

}  // namespace kcr::scenario
