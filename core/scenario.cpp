#include "core/scenario.hpp"

#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/id_mapping.hpp"

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

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep || c == ' ') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// One CRIU option word of the registry onto the protocol's options.
void set_criu_option(proto::CriuOptions& o, const std::string& word, const std::string& scenario) {
  if (word == "tcp-established") {
    o.set_tcp_established(true);
  } else if (word == "ext-unix-sk") {
    o.set_ext_unix_sk(true);
  } else if (word == "file-locks") {
    o.set_file_locks(true);
  } else if (word == "link-remap") {
    o.set_link_remap(true);
  } else if (word == "shell-job") {
    o.set_shell_job(true);
  } else if (word.starts_with("manage-cgroups=")) {
    o.set_manage_cgroups_mode(word.substr(15));
  } else {
    throw Error("scenario '" + scenario + "' names an unknown CRIU option '" + word + "'");
  }
}

std::vector<Scenario> make_scenarios() {
  std::vector<Scenario> all;
  for (const auto& spec : scenario_specs()) all.push_back(scenario_from_spec(spec));
  return all;
}

}  // namespace

Scenario scenario_from_spec(const ScenarioSpec& spec) {
  Scenario s;
  s.name = spec.name;
  s.description = spec.description;
  s.argv = words("kcr-scenario " + std::string(spec.workload));
  s.probe = words("kcr-scenario " + std::string(spec.probe));
  s.criu = spec.criu;
  for (const auto& w : words(s.criu)) set_criu_option(s.options, w, s.name);
  s.judge = spec.judge;
  s.namespaces = spec.namespaces;
  if (!spec.uidmap.empty()) {
    *s.run.add_uid_map() = parse_id_mapping(std::string(spec.uidmap), "uidmap");
    validate_id_maps(s.run.uid_map(), "uid map of scenario '" + s.name + "'");
  }
  s.run.set_cgroupns(spec.cgroupns);
  s.modes = spec.modes | mode_restart;  // the control runs for every scenario
  s.xfail = spec.xfail;
  s.xfail_modes = spec.xfail.empty() ? 0 : spec.xfail_modes;
  s.warmup = spec.warmup;
  return s;
}

unsigned parse_modes(const std::string& list) {
  unsigned bits = 0;
  for (const auto& w : split(list, ',')) {
    unsigned m = mode_from_word(w);
    if (m == 0) {
      throw Error("no suite mode '" + w + "'", "modes: cycle, migrate, pre-dump, lazy, restart",
                  ExitCode::usage);
    }
    bits |= m;
  }
  if (bits == 0)
    throw Error("no modes given", "modes: cycle, migrate, pre-dump, lazy, restart",
                ExitCode::usage);
  return bits;
}

std::vector<std::string> mode_words(unsigned modes) {
  std::vector<std::string> out;
  for (auto m : {mode_cycle, mode_migrate, mode_pre_dump, mode_lazy, mode_restart}) {
    if (modes & m) out.emplace_back(mode_word(m));
  }
  return out;
}

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
    if (argv == s.argv) return &s;
  }
  // The same program with other arguments (kcr-scenario membuf --size 100M).
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
  if (s.judge == "counter") {
    auto nb = b.size() == 1 ? number(b[0]) : std::nullopt;
    auto na = a.size() == 1 ? number(a[0]) : std::nullopt;
    if (!nb || !na) {
      v.detail = "the counter probe printed '" + v.before + "' / '" + v.after + "'";
    } else if (*na < *nb) {
      v.detail = "the counter went back from " + v.before + " to " + v.after;
    } else {
      v.survived = true;
    }
  } else if (s.judge == "membuf") {
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
  } else if (s.judge == "tcp-listen") {
    // "hello SEED N": SEED drawn when the listener started (a restarted one has
    // another), N counts connections served, kept in memory
    auto nb = b.size() == 3 && b[0] == "hello" ? number(b[2]) : std::nullopt;
    auto na = a.size() == 3 && a[0] == "hello" ? number(a[2]) : std::nullopt;
    if (!nb || !na) {
      v.detail = "the listener answered '" + v.before + "' / '" + v.after + "'";
    } else if (a[1] != b[1]) {
      v.detail = "another listener answered (it was started again, not restored)";
    } else if (*na <= *nb) {
      v.detail = "the listener's connection count went from " + b[2] + " to " + a[2];
    } else {
      v.survived = true;
    }
    if (nb) v.before = b[2];
    if (na) v.after = a[2];
  } else if (s.judge == "tcp-established") {
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
  } else if (s.judge == "same") {
    // "ok FINGERPRINT...": the workload checked its own state; the fingerprint
    // (derived from a seed drawn at start) must not change.
    if (b.empty() || b[0] != "ok") {
      v.detail = "before the checkpoint the probe said '" + v.before + "'";
    } else if (a.empty() || a[0] != "ok") {
      v.detail = "after the restore the probe said '" + v.after + "'";
    } else if (a != b) {
      v.detail = "the state changed: '" + v.before + "' became '" + v.after + "'";
    } else {
      v.survived = true;
    }
    auto brief = [](const std::string& x) { return x.size() > 24 ? x.substr(0, 21) + "..." : x; };
    v.before = brief(v.before);
    v.after = brief(v.after);
  } else {
    v.detail = "scenario '" + s.name + "' has no judge '" + s.judge + "'";
  }
  return v;
}

}  // namespace kcr::core
