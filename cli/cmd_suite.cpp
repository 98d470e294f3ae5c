#include <fmt/core.h>

#include <sstream>

#include "cli/context.hpp"
#include "cli/suite_report.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/scenario.hpp"
#include "vm/engine/suite.hpp"

namespace kcr::cli {

namespace {

struct SuiteArgs {
  std::string scenarios, modes = "cycle";
  unsigned count = 3;
  std::string image;
  std::vector<std::string> reports, compare;
  unsigned jobs = 0;
};

engine::SuiteResult read_report(const std::string& path) {
  auto text = core::try_read_file(path);
  if (!text)
    throw Error("cannot read suite report " + path, "give a file kcr suite --report wrote");
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) throw Error(path + " is not JSON", "give a file kcr suite --report wrote");
  return suite_from_json(j, path);
}

void write_reports(const SuiteArgs& a, const engine::SuiteResult& r, unsigned modes) {
  for (const auto& file : a.reports) {
    auto fmt_name = report_format(file);
    std::string text = fmt_name == "md"     ? suite_markdown(r, modes)
                       : fmt_name == "json" ? suite_to_json(r).dump(2) + "\n"
                       : fmt_name == "html" ? suite_html(r, modes)
                                            : suite_junit(r);
    core::write_file_atomic(file, text);
  }
}

void compare(Context& ctx, const SuiteArgs& a) {
  auto ra = read_report(a.compare[0]);
  auto rb = read_report(a.compare[1]);
  bool regressed = false;
  std::string text = suite_compare(ra, rb, regressed);
  if (ctx.json) {
    nlohmann::json j = {
        {"regressed", regressed}, {"a", suite_to_json(ra)}, {"b", suite_to_json(rb)}};
    fmt::print("{}\n", j.dump());
  } else {
    fmt::print("{}", text);
  }
  if (regressed) ctx.exit_code = static_cast<int>(ExitCode::state_lost);
}

void suite(Context& ctx, const SuiteArgs& a) {
  if (!a.compare.empty()) {
    if (a.compare.size() != 2) {
      throw Error("--compare takes two JSON reports", "kcr suite --compare A.json B.json",
                  ExitCode::usage);
    }
    return compare(ctx, a);
  }
  for (const auto& f : a.reports) report_format(f);  // refuse a bad name before hours of work
  engine::SuiteRequest r;
  r.modes = core::parse_modes(a.modes);
  r.count = a.count;
  r.image = a.image;
  r.jobs = a.jobs;
  std::stringstream in(a.scenarios);
  for (std::string name; std::getline(in, name, ',');) {
    if (!name.empty()) r.scenarios.push_back(core::find_scenario(name).name);
  }
  auto result = engine::run_suite(
      ctx.engine(), r, [&](const engine::SuiteCase& c, size_t done, size_t total) {
        std::string line = fmt::format("[{}/{}] {}/{}: {} ({:.0f} s)", done, total, c.scenario,
                                       c.mode, engine::outcome_word(c.outcome), c.seconds);
        if (engine::unexpected(c.outcome)) {
          line += ": " + c.detail.substr(0, c.detail.find('\n'));
        }
        progress(ctx, line);
      });
  write_reports(a, result, r.modes);
  if (ctx.json) {
    fmt::print("{}\n", suite_to_json(result).dump());
  } else {
    fmt::print("{}", suite_matrix(result, r.modes));
    for (const auto& f : a.reports) fmt::print("report: {}\n", f);
  }
  if (!result.ok()) ctx.exit_code = static_cast<int>(ExitCode::state_lost);
}

void list_scenarios(Context& ctx) {
  if (ctx.json) {
    auto arr = core::Json::array();
    for (const auto& s : core::scenarios()) {
      auto j = core::Json::object();
      j.set("name", s.name);
      j.set("description", s.description);
      auto argv = core::Json::array();
      for (const auto& w : s.argv) argv.push(w);
      j.set("argv", argv);
      auto probe = core::Json::array();
      for (const auto& w : s.probe) probe.push(w);
      j.set("probe", probe);
      j.set("criu_options", s.criu);
      j.set("namespaces", s.namespaces);
      std::string uidmap;
      for (const auto& m : s.run.uid_map()) {
        uidmap += (uidmap.empty() ? "" : ",") + std::to_string(m.container_id()) + ":" +
                  std::to_string(m.host_id()) + ":" + std::to_string(m.size());
      }
      j.set("uidmap", uidmap.empty() ? core::Json() : core::Json(uidmap));
      auto modes = core::Json::array();
      for (const auto& m : core::mode_words(s.modes)) modes.push(m);
      j.set("modes", modes);
      auto xmodes = core::Json::array();
      for (const auto& m : core::mode_words(s.xfail_modes)) xmodes.push(m);
      j.set("xfail", s.xfail.empty() ? core::Json() : core::Json(s.xfail));
      j.set("xfail_modes", xmodes);
      arr.push(j);
    }
    return print_json(arr);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : core::scenarios()) {
    std::string modes;
    for (const auto& m : core::mode_words(s.modes)) modes += (modes.empty() ? "" : ",") + m;
    std::string xfail;
    if (!s.xfail.empty()) {
      std::string xm;
      for (const auto& m : core::mode_words(s.xfail_modes)) xm += (xm.empty() ? "" : ",") + m;
      xfail = xm + ": " + s.xfail;
    }
    rows.push_back({s.name, s.description, modes, s.criu.empty() ? "-" : s.criu, xfail});
  }
  print_table({"name", "description", "modes", "criu", "expected_failure"}, rows);
}

}  // namespace

void register_suite_commands(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<SuiteArgs>();
  auto* c = app.add_subcommand(
      "suite", "Run scenarios in cycle and migrate modes and report which state survives C/R");
  c->add_option("--scenarios", a->scenarios,
                "Comma-separated scenario names (default: all; kcr scenarios ls)");
  c->add_option("--modes", a->modes,
                "Comma-separated: cycle (checkpoint, kill, restore in one VM), migrate (into a "
                "fresh VM), pre-dump (migrate --pre-dump 2), lazy (migrate --lazy-pages), "
                "restart (the control: the workload started again instead of restored, which "
                "every probe must notice) (default cycle)");
  c->add_option("-n,--count", a->count, "Cycles per cycle case (default 3)")
      ->check(CLI::Range(1, 1000));
  c->add_option("--image", a->image, "Guest image to run it on (default: config, 'default')");
  c->add_option("--report", a->reports,
                "Also write a report; the extension picks the format: .md, .json, .html (one "
                "self-contained page with a chart) or .xml (JUnit); repeatable");
  c->add_option("-j,--jobs", a->jobs,
                "Cases at once, each in its own VMs (default: what this host's cores and free "
                "memory fit)")
      ->check(CLI::Range(1, 16));
  c->add_option("--compare", a->compare,
                "Compare two JSON reports (A B): outcomes that changed, times as ratios; runs "
                "nothing")
      ->expected(2);
  add_json_flag(c, ctx);
  c->footer(
      "Each case boots VMs of its own from the image, runs the scenario's workload, and\n"
      "judges with its probe whether the state survived. Outcomes: pass, fail, xfail (a\n"
      "known CRIU or kernel limit, reason in the registry), xpass (an expected failure\n"
      "that passed: the limit is gone), n/a (the registry does not run it in that mode).\n"
      "Exits 3 on any fail or xpass; --compare exits 3 when a case that passed in A does\n"
      "not pass in B.\n"
      "Examples:\n"
      "  kcr suite\n"
      "  kcr suite --modes cycle,migrate,restart --report suite.html --report suite.xml\n"
      "  kcr suite --scenarios counter,pipes --count 1 --jobs 1\n"
      "  kcr suite --image source --report source.json\n"
      "  kcr suite --compare debian.json source.json");
  c->callback([&ctx, a] { suite(ctx, *a); });

  auto* s = app.add_subcommand("scenarios", "List the built-in scenarios");
  s->require_subcommand(1);
  auto* ls = s->add_subcommand("ls",
                               "List the scenarios: what each keeps, its modes, CRIU "
                               "options and known failures");
  add_json_flag(ls, ctx);
  ls->footer("Examples:\n  kcr scenarios ls\n  kcr scenarios ls --json");
  ls->callback([&ctx] { list_scenarios(ctx); });
}

}  // namespace kcr::cli
