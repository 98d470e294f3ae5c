#include "images/scenario/checker.hpp"

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "images/scenario/scenario.hpp"

namespace kcr::scenario {

namespace {

uint64_t draw() {
  uint64_t v = 0;
  for (;;) {
    ssize_t r = ::getrandom(&v, sizeof v, 0);
    if (r == static_cast<ssize_t>(sizeof v)) break;
    if (r < 0 && errno != EINTR) {
      v = static_cast<uint64_t>(mono_ns()) ^ (static_cast<uint64_t>(::getpid()) << 32);
      break;
    }
  }
  return v == 0 ? 1 : v;
}

std::string path_of(const Args& a, const std::string& name, const char* what) {
  return state_dir(a) + "/" + name + "." + what;
}

// "SEQ REST" -> SEQ and REST.
bool split_seq(const std::string& line, std::string& seq, std::string& rest) {
  auto sp = line.find(' ');
  seq = line.substr(0, sp);
  rest = sp == std::string::npos ? "" : line.substr(sp + 1);
  return !seq.empty() && parse_u64(seq).has_value();
}

}  // namespace

std::string seeded(std::size_t n, uint64_t tag) {
  std::string d(n, '\0');
  fill_pattern(d.data(), d.size(), seed_number() ^ (tag * 0x9E3779B97F4A7C15ULL));
  return d;
}

std::optional<std::string> process_ids(int pid) {
  auto st = read_small_file("/proc/" + std::to_string(pid) + "/status");
  if (!st) return std::nullopt;
  std::string ids;
  for (const char* key : {"Uid:", "Gid:", "Groups:"}) {
    auto p = st->find(key);
    if (p != std::string::npos) ids += first_line(st->substr(p)) + ";";
  }
  for (auto& c : ids) c = c == '\t' ? ' ' : c;
  return ids;
}

std::string sum_of(const std::string& d) {
  return hex64(checksum(d.data(), d.size()));
}

uint64_t seed_number() {
  static const uint64_t v = draw();
  return v;
}

const std::string& seed() {
  static const std::string s = hex64(seed_number());
  return s;
}

bool answer_checks(const Args& a, const std::string& name, const Check& check) {
  static std::string last;
  auto req = read_small_file(path_of(a, name, "request"));
  if (!req) return false;
  std::string seq = first_line(*req);
  if (!parse_u64(seq) || seq == last) return false;
  last = seq;
  std::string answer = first_line(check());
  write_file_atomic(path_of(a, name, "report"), seq + " " + answer + "\n", "w");
  return true;
}

void serve_checks(const Args& a, const std::string& name, const Check& check,
                  const std::function<void()>& tick) {
  for (;;) {
    answer_checks(a, name, check);
    if (tick) tick();
    sleep_ns(50 * k_ms);
  }
}

int run_probe(const Args& a) {
  std::string name = a.get("name", "");
  if (name.empty()) usage_error("probe needs --name SCENARIO");
  int64_t timeout = static_cast<int64_t>(a.number("timeout-s", 10, 1, 600)) * k_s;
  // A sequence number no earlier request used: the clock and a random draw.
  std::string seq = std::to_string((static_cast<uint64_t>(mono_ns()) ^ draw()) >> 1);
  if (!write_file_atomic(path_of(a, name, "request"), seq + "\n", "p")) return k_exit_unreadable;
  int64_t end = mono_ns() + timeout;
  while (mono_ns() < end) {
    auto rep = read_small_file(path_of(a, name, "report"));
    std::string got, rest;
    if (rep && split_seq(first_line(*rep), got, rest) && got == seq) {
      std::printf("%s\n", rest.c_str());
      return rest.starts_with("ok") ? k_exit_ok : k_exit_mismatch;
    }
    sleep_ns(20 * k_ms);
  }
  std::fprintf(stderr, "kcr-scenario: %s did not answer within %lld s\n", name.c_str(),
               static_cast<long long>(timeout / k_s));
  return k_exit_unreadable;
}

}  // namespace kcr::scenario
