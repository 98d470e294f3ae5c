#include <gtest/gtest.h>

#include "images/agent/process.hpp"

using kcr::agent::is_stopped_state;
using kcr::agent::proc_stat_state;

TEST(ProcStatState, ReadsTheFieldAfterTheCommandName) {
  EXPECT_EQ(proc_stat_state("42 (sleep) S 1 42 42 0 -1 4194560 95 0 0 0"), 'S');
  EXPECT_EQ(proc_stat_state("7 (kcr-init) T 0 7 7 0 -1\n"), 'T');
  EXPECT_EQ(proc_stat_state("9 (sh) t 7 9 7 0"), 't');
  EXPECT_EQ(proc_stat_state("3 (x) R"), 'R');
}

TEST(ProcStatState, CommandNamesMayHoldSpacesAndParentheses) {
  EXPECT_EQ(proc_stat_state("5 (a) T (b) S 1 5"), 'S');
  EXPECT_EQ(proc_stat_state("5 (my prog) Z 1 5"), 'Z');
  EXPECT_EQ(proc_stat_state("5 ()) T 1 5"), 'T');
}

TEST(ProcStatState, AnythingElseHasNoState) {
  EXPECT_EQ(proc_stat_state(""), '\0');
  EXPECT_EQ(proc_stat_state("5 sleep S 1"), '\0');
  EXPECT_EQ(proc_stat_state("5 (sleep)"), '\0');
  EXPECT_EQ(proc_stat_state("5 (sleep) "), '\0');
  EXPECT_EQ(proc_stat_state("5 (sleep)S 1"), '\0');
  EXPECT_EQ(proc_stat_state("5 (sleep) ST 1"), '\0');
  EXPECT_EQ(proc_stat_state("5 ) S ("), '\0');
}

TEST(ProcStatState, OnlyTAndLowerTAreStopped) {
  EXPECT_TRUE(is_stopped_state('T'));
  EXPECT_TRUE(is_stopped_state('t'));
  for (char c : {'R', 'S', 'D', 'Z', 'X', 'I', '\0'}) EXPECT_FALSE(is_stopped_state(c)) << c;
}
