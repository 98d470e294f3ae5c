#pragma once

// kcr suite's reports: the terminal matrix, and the files --report writes (Markdown, JSON,
// JUnit XML, a self-contained HTML page), and the comparison of two JSON reports. Pure
// functions of a SuiteResult, so the unit tests check every format.

#include <nlohmann/json.hpp>
#include <string>

#include "vm/engine/suite.hpp"

namespace kcr::cli {

// The matrix scenario x mode for a terminal: outcome, dump/restore seconds, image size.
std::string suite_matrix(const engine::SuiteResult& r, unsigned modes);

// "12 pass, 1 xfail, 0 fail, 0 xpass" (and n/a when there are any).
std::string suite_summary(const engine::SuiteResult& r);

std::string suite_markdown(const engine::SuiteResult& r, unsigned modes);
std::string suite_junit(const engine::SuiteResult& r);
std::string suite_html(const engine::SuiteResult& r, unsigned modes);

// The JSON report ("kcr_suite_report": 1); every number a JSON number.
nlohmann::json suite_to_json(const engine::SuiteResult& r);
// Reads a JSON report back; throws kcr::Error naming SOURCE and the field when it is not one.
engine::SuiteResult suite_from_json(const nlohmann::json& j, const std::string& source);

// What changed from report A to report B: outcomes that changed, cases only one of them
// has, and dump/restore times as ratios B/A. REGRESSED is set when a case that passed in A
// does not pass in B.
std::string suite_compare(const engine::SuiteResult& a, const engine::SuiteResult& b,
                          bool& regressed);

// Helpers the report writers share: & < > " ' as HTML entities; the scenarios in the order
// the result has them; the mode columns to show (those asked for and those present).
std::string html_escape(const std::string& s);
std::vector<std::string> scenario_order(const engine::SuiteResult& r);
std::vector<std::string> mode_columns(const engine::SuiteResult& r, unsigned modes);
const engine::SuiteCase* find_case(const engine::SuiteResult& r, const std::string& scenario,
                                   const std::string& mode);

// The report format FILE's extension names: "md", "json", "html" or "xml"; throws kcr::Error
// (usage) for another.
std::string report_format(const std::string& file);

}  // namespace kcr::cli
