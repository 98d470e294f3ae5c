#include "cli/suite_report.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.hpp"
#include "core/format.hpp"

namespace kcr::cli {

using engine::Outcome;
using engine::SuiteCase;
using engine::SuiteResult;

namespace {

constexpr unsigned k_mode_order[] = {core::mode_cycle, core::mode_migrate, core::mode_pre_dump,
                                     core::mode_lazy, core::mode_restart};

std::string cell(const SuiteCase* c) {
  if (!c) return "-";
  std::string out(engine::outcome_word(c->outcome));
  if (c->outcome == Outcome::unsupported || c->rounds == 0 || c->mode == "restart") return out;
  return fmt::format("{} {:.1f}/{:.1f}s {}", out, c->dump_s, c->restore_s,
                     core::format_bytes(c->image_bytes));
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

// XML 1.0 forbids most control characters even escaped; the guest's text may carry them.
std::string xml_escape(const std::string& s) {
  std::string clean;
  for (char ch : s) {
    auto u = static_cast<unsigned char>(ch);
    clean += (u < 0x20 && ch != '\n' && ch != '\t') ? '?' : ch;
  }
  return html_escape(clean);
}

std::string md_escape(const std::string& s) {
  std::string out;
  for (char ch : first_line(s)) {
    if (ch == '|')
      out += "\\|";
    else if (ch == '`')
      out += '\'';
    else
      out += ch;
  }
  return out;
}

struct Counts {
  std::map<Outcome, unsigned> n;
};

Counts counts(const SuiteResult& r) {
  Counts c;
  for (const auto& k : r.cases) c.n[k.outcome]++;
  return c;
}

Outcome outcome_from_word(const std::string& w, const std::string& source) {
  for (auto o :
       {Outcome::pass, Outcome::fail, Outcome::xfail, Outcome::xpass, Outcome::unsupported}) {
    if (engine::outcome_word(o) == w) return o;
  }
  throw Error(source + ": unknown outcome '" + w + "'", "is this a kcr suite JSON report?");
}

}  // namespace

std::vector<std::string> scenario_order(const SuiteResult& r) {
  std::vector<std::string> names;
  for (const auto& c : r.cases) {
    if (std::find(names.begin(), names.end(), c.scenario) == names.end()) {
      names.push_back(c.scenario);
    }
  }
  return names;
}

std::vector<std::string> mode_columns(const SuiteResult& r, unsigned modes) {
  std::vector<std::string> cols;
  for (unsigned m : k_mode_order) {
    std::string w(core::mode_word(core::SuiteModeBit(m)));
    bool present = std::any_of(r.cases.begin(), r.cases.end(),
                               [&](const SuiteCase& c) { return c.mode == w; });
    if ((modes & m) || present) cols.push_back(w);
  }
  return cols;
}

const SuiteCase* find_case(const SuiteResult& r, const std::string& scenario,
                           const std::string& mode) {
  for (const auto& c : r.cases) {
    if (c.scenario == scenario && c.mode == mode) return &c;
  }
  return nullptr;
}

std::string html_escape(const std::string& s) {
  return core::markup_escape(s);
}

std::string suite_summary(const SuiteResult& r) {
  auto c = counts(r);
  std::string s = fmt::format("{} pass, {} xfail, {} fail, {} xpass", c.n[Outcome::pass],
                              c.n[Outcome::xfail], c.n[Outcome::fail], c.n[Outcome::xpass]);
  if (c.n[Outcome::unsupported]) s += fmt::format(", {} n/a", c.n[Outcome::unsupported]);
  return s;
}

std::string suite_matrix(const SuiteResult& r, unsigned modes) {
  auto cols = mode_columns(r, modes);
  std::vector<std::string> header = {"scenario"};
  header.insert(header.end(), cols.begin(), cols.end());
  std::vector<std::vector<std::string>> rows;
  for (const auto& s : scenario_order(r)) {
    std::vector<std::string> row = {s};
    for (const auto& m : cols) row.push_back(cell(find_case(r, s, m)));
    rows.push_back(row);
  }
  std::string out = core::format_table(header, rows);
  std::string notes;
  for (const auto& c : r.cases) {
    if (c.outcome == Outcome::pass || c.outcome == Outcome::unsupported) continue;
    notes += fmt::format("  {} {}/{}: {}\n", engine::outcome_word(c.outcome), c.scenario, c.mode,
                         first_line(c.outcome == Outcome::xfail ? c.xfail : c.detail));
  }
  if (!notes.empty()) out += "\n" + notes;
  out += fmt::format("\n{} in {:.0f} s ({} jobs); image {}: kernel {}, CRIU {}\n", suite_summary(r),
                     r.seconds, r.jobs, r.image, r.kernel, r.criu);
  return out;
}

std::string suite_markdown(const SuiteResult& r, unsigned modes) {
  auto cols = mode_columns(r, modes);
  std::string out = "# kcr suite\n\n";
  out += fmt::format(
      "Image `{}`: kernel {}, CRIU {}. Started {}, {:.0f} s, {} jobs, {} cycles "
      "per cycle case.\n\n**{}**\n\n",
      r.image, r.kernel, r.criu, r.started, r.seconds, r.jobs, r.count, suite_summary(r));
  out += "| scenario |";
  for (const auto& m : cols) out += " " + m + " |";
  out += "\n|---|";
  for (size_t i = 0; i < cols.size(); ++i) out += "---|";
  out += "\n";
  for (const auto& s : scenario_order(r)) {
    out += "| " + s + " |";
    for (const auto& m : cols) out += " " + md_escape(cell(find_case(r, s, m))) + " |";
    out += "\n";
  }
  out +=
      "\nCells: outcome, CRIU dump / kcr restore seconds (mean over the cycles), image "
      "size. `restart` is the control: the workload started again instead of restored, "
      "which its probe must notice.\n";
  std::string notes;
  for (const auto& c : r.cases) {
    if (c.outcome == Outcome::pass || c.outcome == Outcome::unsupported) continue;
    notes += fmt::format("- **{}** {}/{}: {}\n", engine::outcome_word(c.outcome), c.scenario,
                         c.mode, md_escape(c.outcome == Outcome::xfail ? c.xfail : c.detail));
  }
  if (!notes.empty()) out += "\n## Not passing\n\n" + notes;
  return out;
}

std::string suite_junit(const SuiteResult& r) {
  auto c = counts(r);
  unsigned failures = c.n[Outcome::fail] + c.n[Outcome::xpass];
  unsigned skipped = c.n[Outcome::xfail] + c.n[Outcome::unsupported];
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<testsuites name=\"kcr suite\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" "
      "time=\"{:.3f}\">\n",
      r.cases.size(), failures, skipped, r.seconds);
  out += fmt::format(
      "  <testsuite name=\"kcr suite ({})\" tests=\"{}\" failures=\"{}\" errors=\"0\" "
      "skipped=\"{}\" time=\"{:.3f}\" timestamp=\"{}\">\n",
      xml_escape(r.image), r.cases.size(), failures, skipped, r.seconds, xml_escape(r.started));
  out += fmt::format(
      "    <properties><property name=\"kernel\" value=\"{}\"/><property name=\"criu\" "
      "value=\"{}\"/></properties>\n",
      xml_escape(r.kernel), xml_escape(r.criu));
  for (const auto& k : r.cases) {
    out += fmt::format("    <testcase classname=\"kcr.{}\" name=\"{}\" time=\"{:.3f}\"",
                       xml_escape(k.scenario), xml_escape(k.mode), k.seconds);
    switch (k.outcome) {
      case Outcome::pass:
        out += "/>\n";
        break;
      case Outcome::fail:
        out += fmt::format(">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                           xml_escape(first_line(k.detail)), xml_escape(k.detail));
        break;
      case Outcome::xpass:
        out += fmt::format(
            ">\n      <failure message=\"unexpected pass: {}\">expected to fail ({}), but "
            "passed</failure>\n    </testcase>\n",
            xml_escape(first_line(k.xfail)), xml_escape(k.xfail));
        break;
      case Outcome::xfail:
        out += fmt::format(
            ">\n      <skipped message=\"expected failure: {}\"/>\n"
            "      <system-out>{}</system-out>\n    </testcase>\n",
            xml_escape(first_line(k.xfail)), xml_escape(k.detail));
        break;
      case Outcome::unsupported:
        out += fmt::format(
            ">\n      <skipped message=\"not run in this mode: {}\"/>\n"
            "    </testcase>\n",
            xml_escape(k.detail));
        break;
    }
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

nlohmann::json suite_to_json(const SuiteResult& r) {
  nlohmann::json cases = nlohmann::json::array();
  for (const auto& c : r.cases) {
    cases.push_back({{"scenario", c.scenario},
                     {"mode", c.mode},
                     {"outcome", std::string(engine::outcome_word(c.outcome))},
                     {"xfail", c.xfail},
                     {"detail", c.detail},
                     {"before", c.before},
                     {"after", c.after},
                     {"seconds", c.seconds},
                     {"dump_seconds", c.dump_s},
                     {"restore_seconds", c.restore_s},
                     {"downtime_seconds", c.downtime_s},
                     {"image_bytes", c.image_bytes},
                     {"rounds", c.rounds}});
  }
  auto n = counts(r);
  nlohmann::json summary;
  for (auto o :
       {Outcome::pass, Outcome::fail, Outcome::xfail, Outcome::xpass, Outcome::unsupported}) {
    summary[std::string(engine::outcome_word(o))] = n.n[o];
  }
  return {{"kcr_suite_report", 1}, {"ok", r.ok()},   {"image", r.image},
          {"kernel", r.kernel},    {"criu", r.criu}, {"started", r.started},
          {"seconds", r.seconds},  {"jobs", r.jobs}, {"count", r.count},
          {"summary", summary},    {"cases", cases}};
}

SuiteResult suite_from_json(const nlohmann::json& j, const std::string& source) {
  auto want = [&](const nlohmann::json& obj, const char* key, auto type) -> const nlohmann::json& {
    if (!obj.is_object() || !obj.contains(key)) {
      throw Error(source + ": not a kcr suite report: no '" + key + "'",
                  "give files written by kcr suite --report FILE.json");
    }
    const auto& v = obj.at(key);
    bool ok = false;
    if constexpr (std::is_same_v<decltype(type), std::string>)
      ok = v.is_string();
    else
      ok = v.is_number();
    if (!ok) throw Error(source + ": field '" + key + "' has the wrong type");
    return v;
  };
  if (!j.is_object() || !j.contains("kcr_suite_report") || j["kcr_suite_report"] != 1) {
    throw Error(source + " is not a kcr suite report (format 1)",
                "give files written by kcr suite --report FILE.json");
  }
  SuiteResult r;
  r.image = want(j, "image", std::string{}).get<std::string>();
  r.kernel = want(j, "kernel", std::string{}).get<std::string>();
  r.criu = want(j, "criu", std::string{}).get<std::string>();
  r.started = want(j, "started", std::string{}).get<std::string>();
  r.seconds = want(j, "seconds", 0.0).get<double>();
  if (!j.contains("cases") || !j["cases"].is_array()) {
    throw Error(source + ": not a kcr suite report: no 'cases' list");
  }
  for (const auto& c : j["cases"]) {
    SuiteCase k;
    k.scenario = want(c, "scenario", std::string{}).get<std::string>();
    k.mode = want(c, "mode", std::string{}).get<std::string>();
    k.outcome = outcome_from_word(want(c, "outcome", std::string{}).get<std::string>(), source);
    k.xfail = want(c, "xfail", std::string{}).get<std::string>();
    k.detail = want(c, "detail", std::string{}).get<std::string>();
    k.seconds = want(c, "seconds", 0.0).get<double>();
    k.dump_s = want(c, "dump_seconds", 0.0).get<double>();
    k.restore_s = want(c, "restore_seconds", 0.0).get<double>();
    k.image_bytes = want(c, "image_bytes", 0.0).get<uint64_t>();
    k.rounds = want(c, "rounds", 0.0).get<unsigned>();
    r.cases.push_back(k);
  }
  return r;
}

std::string suite_compare(const SuiteResult& a, const SuiteResult& b, bool& regressed) {
  regressed = false;
  std::string out = fmt::format("A: {} (kernel {}, CRIU {})\nB: {} (kernel {}, CRIU {})\n\n",
                                a.image, a.kernel, a.criu, b.image, b.kernel, b.criu);
  std::vector<std::vector<std::string>> rows = {
      {"scenario", "mode", "A", "B", "dump B/A", "restore B/A", "change"}};
  std::set<std::pair<std::string, std::string>> seen;
  auto ratio = [](double x, double y) {
    return (x > 0 && y > 0) ? fmt::format("{:.2f}", y / x) : std::string("-");
  };
  unsigned changed = 0;
  auto add = [&](const SuiteCase* ca, const SuiteCase* cb) {
    const auto& k = ca ? *ca : *cb;
    if (!seen.insert({k.scenario, k.mode}).second) return;
    std::string wa = ca ? std::string(engine::outcome_word(ca->outcome)) : "-";
    std::string wb = cb ? std::string(engine::outcome_word(cb->outcome)) : "-";
    std::string change;
    if (!ca)
      change = "only in B";
    else if (!cb)
      change = "only in A";
    else if (wa != wb)
      change = "outcome changed";
    if (ca && ca->outcome == Outcome::pass && (!cb || cb->outcome != Outcome::pass)) {
      regressed = true;
      change = "REGRESSION";
    }
    if (!change.empty()) ++changed;
    rows.push_back({k.scenario, k.mode, wa, wb, ca && cb ? ratio(ca->dump_s, cb->dump_s) : "-",
                    ca && cb ? ratio(ca->restore_s, cb->restore_s) : "-", change});
  };
  for (const auto& ca : a.cases) add(&ca, find_case(b, ca.scenario, ca.mode));
  for (const auto& cb : b.cases) add(find_case(a, cb.scenario, cb.mode), &cb);
  std::vector<std::string> header = rows.front();
  rows.erase(rows.begin());
  out += core::format_table(header, rows);
  out += fmt::format("\n{} of {} cases changed; A: {}; B: {}\n", changed, rows.size(),
                     suite_summary(a), suite_summary(b));
  return out;
}

std::string report_format(const std::string& file) {
  auto dot = file.rfind('.');
  std::string ext = dot == std::string::npos ? "" : file.substr(dot + 1);
  if (ext == "md" || ext == "json" || ext == "html" || ext == "xml") return ext;
  throw Error("cannot tell the report format of '" + file + "'",
              "name the file .md (Markdown), .json, .html or .xml (JUnit)", ExitCode::usage);
}

}  // namespace kcr::cli
