#include <gtest/gtest.h>

#include <set>

#include "core/error.hpp"

using kcr::ExitCode;

// The man pages' EXIT STATUS sections come from this table: every code kcr returns needs a
// general row, and a command-specific row must not document a code nobody returns.
TEST(ExitCodes, EveryCodeHasOneGeneralRowInOrder) {
  std::set<int> general;
  int last = -1;
  for (const auto& row : kcr::exit_codes()) {
    EXPECT_FALSE(row.name.empty());
    EXPECT_FALSE(row.meaning.empty());
    if (!row.code) {
      EXPECT_FALSE(row.commands.empty()) << row.name << " must say which commands";
      continue;
    }
    int code = static_cast<int>(*row.code);
    EXPECT_GE(code, last) << row.name << " is out of order";
    last = code;
    if (row.commands.empty()) EXPECT_TRUE(general.insert(code).second) << "two rows for " << code;
  }
  for (auto code : {ExitCode::ok, ExitCode::failure, ExitCode::usage}) {
    EXPECT_EQ(general.count(static_cast<int>(code)), 1u) << static_cast<int>(code);
  }
}

TEST(ExitCodes, StateLostIsCycleAndMigrate) {
  for (const auto& row : kcr::exit_codes()) {
    if (row.code != ExitCode::state_lost) continue;
    EXPECT_EQ(row.name, "state_lost");
    EXPECT_EQ(row.commands, (std::vector<std::string_view>{"cycle", "migrate"}));
    return;
  }
  FAIL() << "no row for state_lost";
}
