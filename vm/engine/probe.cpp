#include "vm/engine/probe.hpp"

#include <chrono>
#include <thread>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::engine {

void start_scenario(vm::VmSession& session, const core::Scenario& s) {
  proto::Request req;
  auto* run = req.mutable_run();
  *run = s.run;  // a user or cgroup namespace of its own, for some
  run->set_name(s.name);
  for (const auto& w : s.argv) run->add_argv(w);
  session.call(req);
}

std::optional<std::string> run_probe(vm::VmSession& session, const std::string& workload,
                                     const core::Scenario& s, std::string* failure) {
  proto::Request req;
  auto* e = req.mutable_exec();
  e->set_workload(workload);
  for (const auto& a : s.probe) e->add_argv(a);
  e->set_timeout_ms(60000);
  try {
    auto resp = session.call(req, std::chrono::seconds(90));
    const auto& x = resp.exec();
    if (x.exit_code() == 0 && x.exit_signal() == 0) return x.stdout_data();
    if (failure) {
      // What the probe said, first line of stdout or else stderr: "bad REASON" above all.
      std::string said = x.stdout_data().empty() ? x.stderr_data() : x.stdout_data();
      said = said.substr(0, said.find('\n'));
      *failure = "(probe failed, exit " +
                 (x.exit_signal() ? "signal " + std::to_string(x.exit_signal())
                                  : std::to_string(x.exit_code())) +
                 (said.empty() ? "" : ": " + said.substr(0, 300)) + ")";
    }
    return std::nullopt;
  } catch (const Error& e) {
    if (failure) *failure = std::string("(probe failed: ") + e.what() + ")";
    return std::nullopt;
  }
}

std::string await_probe(vm::VmSession& session, const std::string& workload,
                        const core::Scenario& s, long long warmup) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string last;  // what the latest attempt saw, for the error
  for (;;) {
    auto out = run_probe(session, workload, s, &last);
    bool warm = out.has_value();
    if (warm && warmup > 0) {
      try {
        warm = std::stoll(*out) >= warmup;
      } catch (const std::exception&) {
        warm = false;
      }
      if (!warm) last = "(it said '" + out->substr(0, out->find('\n')).substr(0, 100) + "')";
    }
    if (warm) return *out;
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error("the '" + s.name + "' probe never answered in VM '" + session.info().name +
                      "' within 60 s " + last,
                  "look at kcr logs " + session.info().name + " " + workload);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

Health health(vm::VmSession& session) {
  proto::Request req;
  req.mutable_ps();
  auto resp = session.call(req);
  Health h;
  h.agent_fds = resp.ps().agent_fds();
  h.guest_processes = resp.ps().guest_processes();
  std::string status = core::try_read_file("/proc/self/status", 1 << 16).value_or("");
  auto at = status.find("VmRSS:");
  if (at != std::string::npos) {
    try {
      h.host_rss_kib = std::stoull(status.substr(at + 6));
    } catch (const std::exception&) {
    }
  }
  return h;
}

std::optional<proto::Workload> find_workload(vm::VmSession& session, const std::string& name) {
  proto::Request req;
  req.mutable_ps();
  auto resp = session.call(req);
  for (const auto& w : resp.ps().workloads()) {
    if (w.name() == name) return w;
  }
  return std::nullopt;
}

proto::Workload running_workload(vm::VmSession& session, const std::string& name) {
  auto w = find_workload(session, name);
  if (w && w->state() == "stopped") {
    throw Error(
        "workload '" + name + "' in VM '" + session.info().name +
            "' is stopped (an interrupted checkpoint leaves it so)",
        "resume it first: kcr kill " + session.info().name + " " + name + " --signal CONT --all");
  }
  if (!w || w->state() != "running") {
    throw Error("no running workload named '" + name + "' in VM '" + session.info().name + "'",
                "kcr ps " + session.info().name + " lists the workloads");
  }
  return *w;
}

core::ProbeVerdict judge_restored(vm::VmSession& session, const std::string& workload,
                                  const core::Scenario* scenario, const std::string& before,
                                  std::chrono::milliseconds settle) {
  core::ProbeVerdict verdict;
  if (!scenario) {
    auto w = find_workload(session, workload);
    verdict.survived = w && w->state() == "running";
    verdict.before = verdict.after = "-";
    if (!verdict.survived) verdict.detail = "the restored workload is not running";
    return verdict;
  }
  auto deadline = std::chrono::steady_clock::now() + settle;
  for (;;) {
    std::string failure;
    auto after = run_probe(session, workload, *scenario, &failure);
    verdict = core::judge_probe(*scenario, before, after.value_or(failure));
    if (verdict.survived || std::chrono::steady_clock::now() > deadline) return verdict;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace kcr::engine
