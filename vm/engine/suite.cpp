#include "vm/engine/suite.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/time.hpp"
#include "images/image.hpp"
#include "vm/checkpoint.hpp"
#include "vm/engine/cycle.hpp"
#include "vm/engine/migrate.hpp"
#include "vm/engine/probe.hpp"

namespace kcr::engine {

namespace {

using Clock = std::chrono::steady_clock;
using core::seconds_since;

// The lines of an error worth showing first: CRIU's own "Error (...)" lines.
std::string with_criu_errors_first(const std::string& text) {
  std::istringstream in(text);
  std::string line, errors;
  while (std::getline(in, line)) {
    if (line.find("Error (") != std::string::npos || line.find("Error:") != std::string::npos) {
      errors += line + "\n";
    }
  }
  return errors.empty() ? text : errors + "--\n" + text;
}

// The restart control: the workload killed and started again where a restore
// would bring it back. Its probe must tell the two apart.
void run_restart(Env& env, const core::Scenario& s, const SuiteRequest& a, const std::string& vm,
                 SuiteCase& c) {
  OwnedVm temp(env.vms);
  StartSpec spec;
  spec.name = vm;
  spec.image = a.image;
  temp.start(spec);
  auto session = env.vms.open(vm);
  start_scenario(*session, s);
  await_probe(*session, s.name, s, s.warmup);
  // Let the workload build up state a fresh start would not have yet.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  auto before = run_probe(*session, s.name, s);
  if (!before) throw Error("the probe did not answer before the restart");
  vm::end_workload(*session, s.name);
  start_scenario(*session, s);
  await_probe(*session, s.name, s, 0);
  auto v = judge_restored(*session, s.name, &s, *before, std::chrono::seconds(1));
  c.before = v.before;
  c.after = v.after;
  c.rounds = 1;
  // Survival is what the control must not see.
  c.outcome = v.survived ? Outcome::fail : Outcome::pass;
  c.detail = v.survived
                 ? "the probe did not notice that the workload was started again: " + v.before +
                       " / " + v.after
                 : v.detail;
}

void run_cycle(Env& env, const core::Scenario& s, const SuiteRequest& a, const std::string& vm,
               SuiteCase& c) {
  CycleRequest r;
  r.image = a.image;
  r.scenario = s.name;
  r.count = a.count;
  r.temp_vm = vm;
  auto res = cycle(env, r);
  double dump = 0, restore = 0;
  for (const auto& round : res.rounds) {
    dump += round.timings.dump;
    restore += round.timings.restore_total;
    c.image_bytes = std::max(c.image_bytes, round.timings.image_bytes);
    if (!round.verdict.survived && c.detail.empty()) {
      c.detail = fmt::format("cycle {}: {}", round.cycle, round.verdict.detail);
    }
  }
  c.rounds = static_cast<unsigned>(res.rounds.size());
  if (c.rounds) {
    c.dump_s = dump / c.rounds;
    c.restore_s = restore / c.rounds;
    c.before = res.rounds.front().verdict.before;
    c.after = res.rounds.back().verdict.after;
  }
  c.outcome = res.ok && c.rounds == a.count ? Outcome::pass : Outcome::fail;
}

void run_migrate(Env& env, const core::Scenario& s, const SuiteRequest& a, const std::string& vm,
                 unsigned mode, SuiteCase& c) {
  MigrateRequest r;
  r.scenario = s.name;
  r.image = a.image;
  r.temp_vm = vm;
  r.pre_dumps = mode == core::mode_pre_dump ? 2 : 0;
  r.lazy_pages = mode == core::mode_lazy;
  auto res = migrate(env, r);
  c.dump_s = res.timings.dump;
  c.restore_s = res.timings.restore;
  c.downtime_s = res.downtime_s;
  c.image_bytes = res.timings.image_bytes;
  c.before = res.verdict.before;
  c.after = res.verdict.after;
  c.rounds = 1;
  c.detail = res.verdict.survived ? "" : res.verdict.detail;
  c.outcome = res.verdict.survived ? Outcome::pass : Outcome::fail;
}

SuiteCase run_case(Env& env, const core::Scenario& s, unsigned mode, const SuiteRequest& a,
                   const std::string& vm) {
  SuiteCase c;
  c.scenario = s.name;
  c.mode = std::string(core::mode_word(core::SuiteModeBit(mode)));
  auto t0 = Clock::now();
  if (!s.supports(core::SuiteModeBit(mode))) {
    c.outcome = Outcome::unsupported;
    c.detail = "the scenario's registry entry does not run it in this mode";
    return c;
  }
  try {
    if (mode == core::mode_restart) {
      run_restart(env, s, a, vm, c);
    } else if (mode == core::mode_cycle) {
      run_cycle(env, s, a, vm, c);
    } else {
      run_migrate(env, s, a, vm, mode, c);
    }
  } catch (const Error& e) {
    c.outcome = Outcome::fail;
    c.detail = with_criu_errors_first(std::string(e.what()) +
                                      (e.hint().empty() ? "" : "\nhint: " + e.hint()));
  } catch (const std::exception& e) {
    c.outcome = Outcome::fail;
    c.detail = e.what();
  }
  c.seconds = seconds_since(t0);
  bool xfail = s.expected_to_fail(core::SuiteModeBit(mode));
  if (xfail) c.xfail = s.xfail;
  c.outcome = outcome_of(c.outcome == Outcome::pass, xfail);
  return c;
}

}  // namespace

std::string_view outcome_word(Outcome o) {
  switch (o) {
    case Outcome::pass:
      return "pass";
    case Outcome::fail:
      return "fail";
    case Outcome::xfail:
      return "xfail";
    case Outcome::xpass:
      return "xpass";
    case Outcome::unsupported:
      return "n/a";
  }
  return "?";
}

Outcome outcome_of(bool survived, bool expected_to_fail) {
  if (expected_to_fail) return survived ? Outcome::xpass : Outcome::xfail;
  return survived ? Outcome::pass : Outcome::fail;
}

bool unexpected(Outcome o) {
  return o == Outcome::fail || o == Outcome::xpass;
}

bool SuiteResult::ok() const {
  return std::none_of(cases.begin(), cases.end(),
                      [](const SuiteCase& c) { return unexpected(c.outcome); });
}

unsigned default_jobs(uint64_t memory_mib) {
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  uint64_t avail_mib = 0;
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemAvailable:") avail_mib = kib / 1024;
  }
  // A migrate case has two VMs at once; keep a quarter of the memory free.
  uint64_t by_memory = memory_mib ? (avail_mib * 3 / 4) / (2 * memory_mib + 256) : cores;
  return static_cast<unsigned>(std::clamp<uint64_t>(std::min<uint64_t>(cores, by_memory), 1, 8));
}

SuiteResult run_suite(Env& env, const SuiteRequest& a,
                      const std::function<void(const SuiteCase&, size_t, size_t)>& on_case) {
  std::vector<const core::Scenario*> chosen;
  if (a.scenarios.empty()) {
    for (const auto& s : core::scenarios()) chosen.push_back(&s);
  } else {
    for (const auto& name : a.scenarios) chosen.push_back(&core::find_scenario(name));
  }
  if (a.modes == 0) throw Error("no suite modes given", {}, ExitCode::usage);
  if (a.count == 0) throw Error("--count must be at least 1", {}, ExitCode::usage);
  SuiteResult result;
  result.image = a.image.empty() ? env.cfg.image : a.image;
  auto info = images::find_image(env.cfg, result.image);  // fails early on an unknown image
  result.kernel = info.kernel_release + " (" + images::to_string(info.kernel_flavor) + ")";
  result.criu = info.criu_version;
  result.started = core::now_iso8601();
  result.count = a.count;
  result.jobs = a.jobs ? a.jobs : default_jobs(env.cfg.memory_mib);

  struct Job {
    const core::Scenario* s;
    unsigned mode;
  };
  std::vector<Job> jobs;
  for (const auto* s : chosen) {
    for (unsigned m : {core::mode_cycle, core::mode_migrate, core::mode_pre_dump, core::mode_lazy,
                       core::mode_restart}) {
      if (a.modes & m) jobs.push_back({s, m});
    }
  }
  result.cases.resize(jobs.size());
  env.clean_store();
  std::atomic<size_t> next{0}, done{0};
  std::mutex say_mutex;
  std::string tag = "suite-" + std::to_string(::getpid());
  auto worker = [&] {
    for (size_t i; (i = next++) < jobs.size();) {
      const auto& j = jobs[i];
      std::string label =
          j.s->name + "/" + std::string(core::mode_word(core::SuiteModeBit(j.mode)));
      Env case_env{env.cfg,
                   env.vms,
                   [&, label](const std::string& line) {
                     std::lock_guard<std::mutex> lock(say_mutex);
                     env.say(label + ": " + line);
                   },
                   env.settle,
                   {}};
      result.cases[i] = run_case(case_env, *j.s, j.mode, a, tag + "-" + std::to_string(i + 1));
      std::lock_guard<std::mutex> lock(say_mutex);
      if (on_case) on_case(result.cases[i], ++done, jobs.size());
    }
  };
  auto t0 = Clock::now();
  unsigned n = std::min<unsigned>(result.jobs, static_cast<unsigned>(jobs.size()));
  if (n <= 1) {
    worker();
  } else {
    std::vector<std::thread> threads;
    for (unsigned k = 0; k < n; ++k) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
  }
  result.seconds = seconds_since(t0);
  return result;
}

}  // namespace kcr::engine
