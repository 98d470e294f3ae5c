// The scenario registry: every entry readable by the host, implemented by kcr-scenario, and
// judged as the suite relies on.

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "core/scenario.hpp"
#include "core/subprocess.hpp"

using namespace kcr::core;

TEST(ScenarioRegistry, EveryEntryIsComplete) {
  std::set<std::string> names, workloads;
  const std::set<std::string> judges = {"counter", "membuf", "tcp-listen", "tcp-established",
                                        "same"};
  ASSERT_EQ(scenarios().size(), scenario_specs().size());
  for (const auto& s : scenarios()) {
    SCOPED_TRACE(s.name);
    EXPECT_TRUE(names.insert(s.name).second) << "two scenarios are called " << s.name;
    EXPECT_FALSE(s.description.empty());
    EXPECT_TRUE(judges.count(s.judge)) << s.judge;
    ASSERT_GE(s.argv.size(), 2u);
    ASSERT_GE(s.probe.size(), 2u);
    EXPECT_EQ(s.argv[0], "kcr-scenario");
    std::string argv;
    for (const auto& w : s.argv) argv += w + " ";
    EXPECT_TRUE(workloads.insert(argv).second) << "another scenario runs the same workload";
    EXPECT_TRUE(s.supports(mode_cycle)) << "every scenario runs in cycle mode";
    EXPECT_TRUE(s.supports(mode_restart)) << "every probe is tested against a restart";
    EXPECT_EQ(s.xfail.empty(), s.xfail_modes == 0) << "an expected failure names its modes";
    EXPECT_FALSE(s.expected_to_fail(mode_restart)) << "the control never fails by design";
    EXPECT_FALSE(s.namespaces.empty());
    EXPECT_EQ(scenario_for_argv(s.argv), &s);
  }
}

TEST(ScenarioRegistry, UserNamespaceScenariosCarryTheirMaps) {
  const auto& plain = find_scenario("pipes");
  EXPECT_TRUE(plain.run.uid_map().empty());
  EXPECT_FALSE(plain.run.cgroupns());
  const auto& same = find_scenario("userns");
  ASSERT_EQ(same.run.uid_map_size(), 1);
  EXPECT_EQ(same.run.uid_map(0).host_id(), 0u);
  EXPECT_TRUE(same.run.cgroupns());
  const auto& other = find_scenario("userns-hostid");
  ASSERT_EQ(other.run.uid_map_size(), 1);
  EXPECT_EQ(other.run.uid_map(0).container_id(), 0u);
  EXPECT_EQ(other.run.uid_map(0).host_id(), 100000u);
  EXPECT_EQ(other.run.uid_map(0).size(), 65536u);
  // The workload checks it got the map it was given.
  EXPECT_NE(std::find(other.argv.begin(), other.argv.end(), "100000"), other.argv.end());
}

TEST(ScenarioRegistry, KcrScenarioImplementsEveryEntry) {
  auto r = run_subprocess({KCR_SCENARIO_BIN, "check-registry"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto list = run_subprocess({KCR_SCENARIO_BIN, "list"});
  for (const auto& s : scenarios()) {
    EXPECT_NE(list.out.find(s.name + " "), std::string::npos) << s.name;
  }
  EXPECT_EQ(list.out.find("MISSING"), std::string::npos) << list.out;
}

TEST(ScenarioRegistry, ModesParseAndPrint) {
  EXPECT_EQ(parse_modes("cycle,pre-dump"), unsigned(mode_cycle | mode_pre_dump));
  EXPECT_EQ(mode_words(mode_migrate | mode_restart),
            (std::vector<std::string>{"migrate", "restart"}));
  EXPECT_THROW(parse_modes("cycle,bogus"), kcr::Error);
  EXPECT_THROW(parse_modes(""), kcr::Error);
}

TEST(ScenarioRegistry, SameJudgeWantsTheSameOkAnswer) {
  const auto& s = find_scenario("pipes");
  EXPECT_TRUE(judge_probe(s, "ok 1234 held=ab echo=ok\n", "ok 1234 held=ab echo=ok").survived);
  auto restarted = judge_probe(s, "ok 1234 held=ab echo=ok", "ok 9999 held=cd echo=ok");
  EXPECT_FALSE(restarted.survived);
  EXPECT_NE(restarted.detail.find("changed"), std::string::npos);
  EXPECT_FALSE(judge_probe(s, "ok 1234", "bad echo child does not answer").survived);
  EXPECT_FALSE(judge_probe(s, "bad x", "bad x").survived);
  EXPECT_FALSE(judge_probe(s, "ok 1234", "(probe failed)").survived);
}
