// kcr suite's outcomes and reports: what CI systems and people read.

#include <gtest/gtest.h>

#include "cli/suite_report.hpp"
#include "core/error.hpp"

using namespace kcr::engine;
using namespace kcr::cli;

namespace {

SuiteCase a_case(const char* scenario, const char* mode, Outcome outcome) {
  SuiteCase c;
  c.scenario = scenario;
  c.mode = mode;
  c.outcome = outcome;
  return c;
}

SuiteResult sample() {
  SuiteResult r;
  r.image = "default";
  r.kernel = "6.1 (debian)";
  r.criu = "3.17.1";
  r.started = "2026-12-02T00:00:00Z";
  r.seconds = 12.5;
  r.count = 2;
  SuiteCase a = a_case("pipes", "cycle", Outcome::pass);
  a.dump_s = 0.8;
  a.restore_s = 0.6;
  a.image_bytes = 532 * 1024;
  a.rounds = 2;
  SuiteCase b = a_case("pipes", "restart", Outcome::pass);
  SuiteCase c = a_case("netns", "cycle", Outcome::xfail);
  c.xfail = "CRIU 3.17 cannot dump <this> & that";
  c.detail = "dump failed\nError (criu/net.c:1): boom \x01";
  SuiteCase d = a_case("timers", "migrate", Outcome::fail);
  d.detail = "Error (criu/timer.c:2): lost </script><b>";
  r.cases = {a, b, c, d};
  return r;
}

}  // namespace

TEST(SuiteOutcome, ExpectedFailuresAndUnexpectedPasses) {
  EXPECT_EQ(outcome_of(true, false), Outcome::pass);
  EXPECT_EQ(outcome_of(false, false), Outcome::fail);
  EXPECT_EQ(outcome_of(false, true), Outcome::xfail);
  EXPECT_EQ(outcome_of(true, true), Outcome::xpass);
  EXPECT_TRUE(unexpected(Outcome::fail));
  EXPECT_TRUE(unexpected(Outcome::xpass));
  EXPECT_FALSE(unexpected(Outcome::xfail));
  EXPECT_FALSE(unexpected(Outcome::unsupported));
  auto r = sample();
  EXPECT_FALSE(r.ok());
  r.cases.pop_back();
  EXPECT_TRUE(r.ok());
  EXPECT_GE(default_jobs(512), 1u);
  EXPECT_LE(default_jobs(512), 8u);
}

TEST(SuiteReport, JsonRoundTripsWithNumbersAsNumbers) {
  auto j = suite_to_json(sample());
  EXPECT_EQ(j["kcr_suite_report"], 1);
  EXPECT_FALSE(j["ok"].get<bool>());
  EXPECT_TRUE(j["seconds"].is_number());
  EXPECT_TRUE(j["cases"][0]["image_bytes"].is_number());
  EXPECT_TRUE(j["summary"]["xfail"].is_number());
  auto back = suite_from_json(nlohmann::json::parse(j.dump()), "x.json");
  ASSERT_EQ(back.cases.size(), 4u);
  EXPECT_EQ(back.cases[2].outcome, Outcome::xfail);
  EXPECT_EQ(back.cases[0].image_bytes, 532u * 1024);
  EXPECT_THROW(suite_from_json(nlohmann::json::parse("{\"a\":1}"), "x.json"), kcr::Error);
  auto bad = j;
  bad["cases"][0]["outcome"] = "great";
  EXPECT_THROW(suite_from_json(bad, "x.json"), kcr::Error);
  bad = j;
  bad["cases"][0]["seconds"] = "fast";
  EXPECT_THROW(suite_from_json(bad, "x.json"), kcr::Error);
}

TEST(SuiteReport, JunitHasOneTestcasePerCaseAndCriuErrorsInFailures) {
  auto x = suite_junit(sample());
  size_t n = 0;
  for (size_t p = 0; (p = x.find("<testcase ", p)) != std::string::npos; ++p) ++n;
  EXPECT_EQ(n, 4u);
  EXPECT_NE(x.find("failures=\"1\""), std::string::npos);
  EXPECT_NE(x.find("skipped=\"1\""), std::string::npos);
  EXPECT_NE(x.find("<failure message=\"Error (criu/timer.c:2): lost &lt;/script&gt;"),
            std::string::npos);
  EXPECT_NE(x.find("<skipped message=\"expected failure: CRIU 3.17 cannot dump &lt;this&gt; &amp;"),
            std::string::npos);
  EXPECT_EQ(x.find('\x01'), std::string::npos) << "control characters are not XML";
}

TEST(SuiteReport, HtmlIsSelfContainedAndCannotBeBrokenByGuestText) {
  auto h = suite_html(sample(), kcr::core::mode_cycle);
  EXPECT_EQ(h.find("http://"), h.find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(h.find("https://"), std::string::npos);
  EXPECT_EQ(h.find("src="), std::string::npos);
  // The guest's "</script><b>" stays text: escaped in the page, \u003c in the embedded JSON.
  EXPECT_EQ(h.find("</script><b>"), std::string::npos);
  EXPECT_NE(h.find("\\u003c/script>\\u003cb>"), std::string::npos);
  EXPECT_NE(h.find("class=\"xfail\""), std::string::npos);
  EXPECT_NE(h.find("id=\"kcr-data\""), std::string::npos);
}

TEST(SuiteReport, MatrixMarkdownAndCompare) {
  auto r = sample();
  auto m = suite_matrix(r, kcr::core::mode_cycle);
  EXPECT_NE(m.find("pass 0.8/0.6s 532 KiB"), std::string::npos) << m;
  EXPECT_NE(m.find("xfail netns/cycle: CRIU 3.17"), std::string::npos) << m;
  EXPECT_NE(m.find("2 pass, 1 xfail, 1 fail, 0 xpass"), std::string::npos) << m;
  auto md = suite_markdown(r, kcr::core::mode_cycle);
  EXPECT_NE(md.find("| pipes | pass 0.8/0.6s 532 KiB |"), std::string::npos) << md;
  auto b = r;
  b.cases[0].outcome = Outcome::fail;
  b.cases[0].dump_s = 1.6;
  bool regressed = false;
  auto text = suite_compare(r, b, regressed);
  EXPECT_TRUE(regressed);
  EXPECT_NE(text.find("REGRESSION"), std::string::npos) << text;
  EXPECT_NE(text.find("2.00"), std::string::npos) << text;
  suite_compare(r, r, regressed);
  EXPECT_FALSE(regressed);
  EXPECT_EQ(report_format("a/b.html"), "html");
  EXPECT_THROW(report_format("report.txt"), kcr::Error);
}
