#include "core/scenario.hpp"

#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::core {

namespace {

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::optional<long long> number(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return std::stoll(s);
}

std::vector<Scenario> make_scenarios() {
  std::vector<Scenario> all;
  Scenario counter{"counter",
                   "a counter kept in memory, written to /tmp/counter 10 times a second",
                   {"kcr-scenario", "counter", "--interval-ms", "100"},
                   {"kcr-scenario", "counter-probe"},
                   {}};
  counter.warmup = 30;
  all.push_back(counter);
  all.push_back({"membuf",
                 "a 10 MB buffer of random bytes whose checksum must not change",
                 {"kcr-scenario", "membuf", "--size", "10M"},
                 {"kcr-scenario", "membuf-probe"},
                 {}});
  all.push_back({"tcp-listen",
                 "a listening TCP socket on 127.0.0.1:8080 that must still answer",
                 {"kcr-scenario", "tcp-listen", "--port", "8080"},
                 {"kcr-scenario", "tcp-probe", "--port", "8080"},
                 {}});
  Scenario tcp{"tcp-established",
               "an established loopback TCP connection carrying a sequence that must not break",
               {"kcr-scenario", "tcp-pair", "--port", "9090"},
               {"kcr-scenario", "tcp-pair-probe"},
               {}};
  tcp.options.set_tcp_established(true);
  all.push_back(tcp);
  return all;
}

}  // namespace

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = make_scenarios();
  return all;
}

const Scenario& find_scenario(const std::string& name) {
  std::string names;
  for (const auto& s : scenarios()) {
    if (s.name == name) return s;
    names += (names.empty() ? "" : ", ") + s.name;
  }
  throw Error("no scenario named '" + name + "'", "scenarios: " + names, ExitCode::usage);
}

const Scenario* scenario_for_argv(const std::vector<std::string>& argv) {
  for (const auto& s : scenarios()) {
    if (argv.size() >= 2 && s.argv.size() >= 2 && argv[0] == s.argv[0] && argv[1] == s.argv[1]) {
      return &s;
    }
  }
  return nullptr;
}

ProbeVerdict judge_probe(const Scenario& s, const std::string& before_raw,
                         const std::string& after_raw) {
  ProbeVerdict v;
  v.before = trim(before_raw);
  v.after = trim(after_raw);
  auto b = words(v.before);
  auto a = words(v.after);
  if (s.name == "counter") {
    auto nb = b.size() == 1 ? number(b[0]) : std::nullopt;
    auto na = a.size() == 1 ? number(a[0]) : std::nullopt;
    if (!nb || !na) {
      v.detail = "the counter probe printed '" + v.before + "' / '" + v.after + "'";
    } else if (*na < *nb) {
      v.detail = "the counter went back from " + v.before + " to " + v.after;
    } else {
      v.survived = true;
    }
  } else if (s.name == "membuf") {
    // "ok SIZE CHECKSUM"
    if (b.size() != 3 || b[0] != "ok") {
      v.detail = "before the checkpoint the buffer probe said '" + v.before + "'";
    } else if (a.size() != 3 || a[0] != "ok") {
      v.detail = "after the restore the buffer probe said '" + v.after + "'";
    } else if (a[1] != b[1] || a[2] != b[2]) {
      v.detail = "the buffer's checksum changed";
    } else {
      v.survived = true;
    }
    if (b.size() == 3) v.before = b[2].substr(0, 12);
    if (a.size() == 3) v.after = a[2].substr(0, 12);
  } else if (s.name == "tcp-listen") {
    // "hello N": N counts connections served, kept in memory
    auto nb = b.size() == 2 && b[0] == "hello" ? number(b[1]) : std::nullopt;
    auto na = a.size() == 2 && a[0] == "hello" ? number(a[1]) : std::nullopt;
    if (!nb || !na) {
      v.detail = "the listener answered '" + v.before + "' / '" + v.after + "'";
    } else if (*na <= *nb) {
      v.detail = "the listener's connection count went from " + b[1] + " to " + a[1];
    } else {
      v.survived = true;
    }
    if (nb) v.before = b[1];
    if (na) v.after = a[1];
  } else if (s.name == "tcp-established") {
    // "received N errors E"
    auto parse =
        [](const std::vector<std::string>& w) -> std::optional<std::pair<long long, long long>> {
      if (w.size() != 4 || w[0] != "received" || w[2] != "errors") return std::nullopt;
      auto n = number(w[1]);
      auto e = number(w[3]);
      if (!n || !e) return std::nullopt;
      return std::make_pair(*n, *e);
    };
    auto pb = parse(b);
    auto pa = parse(a);
    if (!pb || !pa) {
      v.detail = "the connection probe said '" + v.before + "' / '" + v.after + "'";
    } else if (pa->second != 0) {
      v.detail = "the receiver saw " + a[3] + " sequence errors";
    } else if (pa->first <= pb->first) {
      v.detail = "no data arrived over the connection after the restore";
    } else {
      v.survived = true;
    }
    if (pb) v.before = b[1];
    if (pa) v.after = a[1];
  } else {
    v.detail = "unknown scenario";
  }
  return v;
}

}  // namespace kcr::core
