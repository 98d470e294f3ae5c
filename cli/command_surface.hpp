#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace kcr::cli {

// What a shell offers for a value: nothing, a file, one of fixed choices, or names
// 'kcr __complete' lists.
enum class ValueKind { none, file, choice, vm, workload, checkpoint, image, scenario };

// Returns "vm", "file", ... as 'kcr __complete' and the completion scripts spell KIND.
std::string to_string(ValueKind kind);

// One option or positional argument as --help shows it.
struct OptionDoc {
  std::vector<std::string> names;  // "-o", "--name"; empty for a positional
  std::string positional;          // a positional's name, e.g. "vm"
  std::string value;               // the value's placeholder ("NAME"); empty for a flag
  std::string help;
  std::string default_value;
  bool required = false;
  bool repeatable = false;
  ValueKind kind = ValueKind::none;
  std::vector<std::string> choices;  // for ValueKind::choice
};

// One command of the tree that --help shows (hidden commands and options left out).
struct CommandDoc {
  std::vector<std::string> path;  // {"vm", "start"}; empty for kcr itself
  std::string description;
  std::vector<std::string> prose;     // the footer's lines before its examples
  std::vector<std::string> examples;  // the footer's example lines, unindented
  std::vector<OptionDoc> options;
  std::vector<OptionDoc> positionals;
  std::vector<CommandDoc> subcommands;

  // "vm start"; "" for kcr itself.
  std::string command() const;
  // The manual page's name: "kcr-vm-start", "kcr".
  std::string page() const;
};

// Walks APP's CLI11 definitions into the tree every generated document is written from.
CommandDoc describe_commands(const CLI::App& app);

// Calls F on ROOT and every command below it, parents first.
void for_each_command(const CommandDoc& root, const std::function<void(const CommandDoc&)>& f);

}  // namespace kcr::cli
