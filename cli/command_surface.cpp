#include "cli/command_surface.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <utility>

namespace kcr::cli {

namespace {

// Which values are names kcr knows. By the option's name first; these commands name
// differently what their arguments are.
ValueKind kind_of(const std::string& command, const std::string& name) {
  static const std::map<std::pair<std::string, std::string>, ValueKind> by_command = {
      {{"vm stop", "names"}, ValueKind::vm},
      {{"vm console", "name"}, ValueKind::vm},
      {{"image rm", "name"}, ValueKind::image},
      {{"checkpoints show", "name"}, ValueKind::checkpoint},
      {{"checkpoints verify", "name"}, ValueKind::checkpoint},
      {{"checkpoints inspect", "name"}, ValueKind::checkpoint},
      {{"checkpoints diff", "checkpoints"}, ValueKind::checkpoint},
      {{"checkpoints rm", "names"}, ValueKind::checkpoint},
      {{"checkpoints export", "name"}, ValueKind::checkpoint},
      {{"checkpoints export", "--output"}, ValueKind::file},
      {{"checkpoints import", "file"}, ValueKind::file},
  };
  static const std::map<std::string, ValueKind> by_name = {
      {"vm", ValueKind::vm},
      {"--vm", ValueKind::vm},
      {"--to", ValueKind::vm},
      {"workload", ValueKind::workload},
      {"--workload", ValueKind::workload},
      {"checkpoint", ValueKind::checkpoint},
      {"--image", ValueKind::image},
      {"--scenario", ValueKind::scenario},
      {"--config", ValueKind::file},
      {"--agent", ValueKind::file},
      {"--kernel-deb", ValueKind::file},
      {"config_file", ValueKind::file},
      {"--import", ValueKind::file},
      {"--export", ValueKind::file},
  };
  if (auto it = by_command.find({command, name}); it != by_command.end()) return it->second;
  if (auto it = by_name.find(name); it != by_name.end()) return it->second;
  return ValueKind::none;
}

// CLI11's IsMember shows its set as "TEXT:{auto,kvm,tcg}".
std::vector<std::string> choices_of(const std::string& type_name) {
  auto open = type_name.find('{');
  auto close = type_name.find('}', open);
  if (open == std::string::npos || close == std::string::npos) return {};
  std::vector<std::string> out;
  std::string set = type_name.substr(open + 1, close - open - 1);
  for (std::size_t start = 0; start <= set.size();) {
    auto comma = std::min(set.find(',', start), set.size());
    if (comma > start) out.push_back(set.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

std::string placeholder(std::string s) {
  for (char& c : s) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return s;
}

OptionDoc describe_option(const std::string& command, const CLI::Option& opt) {
  OptionDoc o;
  for (const auto& s : opt.get_snames()) o.names.push_back("-" + s);
  for (const auto& l : opt.get_lnames()) o.names.push_back("--" + l);
  std::string key = o.names.empty() ? opt.get_name(true) : o.names.back();
  if (o.names.empty()) o.positional = key;
  o.help = opt.get_description();
  o.default_value = opt.get_default_str();
  o.required = opt.get_required();
  o.repeatable = opt.get_expected_max() > 1;
  o.kind = kind_of(command, key);
  // A flag takes no value (CLI11 2.1 gives flags a type size of 1, an expected count of 0).
  if (opt.get_type_size() == 0 || opt.get_expected_max() == 0) return o;
  o.choices = choices_of(opt.get_type_name());
  if (!o.choices.empty() && o.kind == ValueKind::none) o.kind = ValueKind::choice;
  if (o.kind == ValueKind::none || o.kind == ValueKind::choice) {
    std::string base = o.names.empty() ? key : key.substr(key.find_first_not_of('-'));
    // A repeatable positional's name is a plural: "names" takes NAME...
    if (o.repeatable && o.names.empty() && base.size() > 1 && base.back() == 's') base.pop_back();
    o.value = placeholder(base);
  } else {
    o.value = placeholder(to_string(o.kind));
  }
  return o;
}

bool is_example_heading(const std::string& line) {
  return line == "Example:" || line == "Examples:";
}

CommandDoc describe_command(const CLI::App& app, std::vector<std::string> path) {
  CommandDoc c;
  c.path = std::move(path);
  c.description = app.get_description();
  std::string command = c.command();
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_group().empty()) continue;  // hidden
    OptionDoc o = describe_option(command, *opt);
    (o.names.empty() ? c.positionals : c.options).push_back(std::move(o));
  }
  // The footer: prose, then "Example(s):" and indented example lines; a line that is not
  // indented after the examples is prose again.
  bool in_examples = false;
  std::string footer = app.get_footer();
  for (std::size_t start = 0; start < footer.size();) {
    auto end = std::min(footer.find('\n', start), footer.size());
    std::string line = footer.substr(start, end - start);
    start = end + 1;
    if (is_example_heading(line)) {
      in_examples = true;
    } else if (in_examples && line.rfind("  ", 0) == 0) {
      c.examples.push_back(line.substr(2));
    } else {
      in_examples = false;
      c.prose.push_back(line);
    }
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name().empty() || sub->get_group().empty()) continue;  // option group, hidden
    auto sub_path = c.path;
    sub_path.push_back(sub->get_name());
    c.subcommands.push_back(describe_command(*sub, sub_path));
  }
  return c;
}

}  // namespace

std::string to_string(ValueKind kind) {
  switch (kind) {
    case ValueKind::none:
      return "none";
    case ValueKind::file:
      return "file";
    case ValueKind::choice:
      return "choice";
    case ValueKind::vm:
      return "vm";
    case ValueKind::workload:
      return "workload";
    case ValueKind::checkpoint:
      return "checkpoint";
    case ValueKind::image:
      return "image";
    case ValueKind::scenario:
      return "scenario";
  }
  return "none";
}

std::string CommandDoc::command() const {
  std::string out;
  for (const auto& p : path) out += (out.empty() ? "" : " ") + p;
  return out;
}

std::string CommandDoc::page() const {
  std::string out = "kcr";
  for (const auto& p : path) out += "-" + p;
  return out;
}

CommandDoc describe_commands(const CLI::App& app) {
  return describe_command(app, {});
}

void for_each_command(const CommandDoc& root, const std::function<void(const CommandDoc&)>& f) {
  f(root);
  for (const auto& sub : root.subcommands) for_each_command(sub, f);
}

}  // namespace kcr::cli
