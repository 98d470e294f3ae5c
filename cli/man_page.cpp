#include "cli/man_page.hpp"

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.hpp"
#include "core/files.hpp"
#include "kcr/version.hpp"

namespace kcr::cli {

namespace fs = std::filesystem;

namespace {

// The sections of a page, in this order; a source may add to any of them.
const std::vector<std::string> k_sections = {
    "NAME",     "SYNOPSIS",    "DESCRIPTION", "COMMANDS",    "OPTIONS", "CONFIGURATION",
    "EXAMPLES", "EXIT STATUS", "FILES",       "ENVIRONMENT", "SEE ALSO"};

using Sections = std::vector<std::pair<std::string, std::string>>;

// Plain text as roff: backslashes and hyphens escaped, no line taken for a request.
std::string roff(const std::string& text) {
  std::string out;
  bool line_start = true;
  for (char c : text) {
    if (line_start && (c == '.' || c == '\'')) out += "\\&";
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
    line_start = c == '\n';
  }
  return out;
}

std::string bold(const std::string& s) {
  return "\\fB" + roff(s) + "\\fR";
}
std::string italic(const std::string& s) {
  return "\\fI" + roff(s) + "\\fR";
}

// Help texts are phrases; a page reads better in sentences.
std::string sentence(std::string s) {
  if (!s.empty() && s.back() != '.' && s.back() != '?' && s.back() != '!') s += '.';
  return s;
}

std::string page_ref(const std::string& page) {
  return "\\fB" + roff(page) + "\\fR(1)";
}

std::string option_value(const OptionDoc& o) {
  if (o.kind == ValueKind::choice && !o.choices.empty()) {
    std::string out;
    for (const auto& c : o.choices) out += (out.empty() ? "" : "|") + italic(c);
    return out;
  }
  return italic(o.value);
}

std::string option_term(const OptionDoc& o) {
  std::string out;
  for (const auto& n : o.names) out += (out.empty() ? "" : ", ") + bold(n);
  if (!o.value.empty()) out += " " + option_value(o);
  return out;
}

std::string positional_term(const OptionDoc& p) {
  std::string out = p.positional == "command" ? "\\-\\- " : "";
  return out + italic(p.value) + (p.repeatable ? "..." : "");
}

std::string synopsis(const CommandDoc& c) {
  std::string out = ".B " + roff(c.path.empty() ? "kcr" : "kcr " + c.command()) + "\n";
  if (!c.subcommands.empty()) {
    if (c.path.empty()) {
      for (const auto& o : c.options) {
        if (o.names.front() == "-h" || o.names.front() == "--version") continue;
        out += "[" + option_term(o) + "] ";
      }
      return out + "\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]\n";
    }
    return out + "\\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n";
  }
  out += "[\\fIOPTIONS\\fR]";
  for (const auto& o : c.options) {
    if (o.required) out += " " + option_term(o);
  }
  for (const auto& p : c.positionals) {
    out += " " + (p.required ? positional_term(p) : "[" + positional_term(p) + "]");
  }
  return out + "\n";
}

// The footer's prose: running lines are filled, indented ones (a list) kept one a line.
std::string prose(const std::vector<std::string>& lines) {
  std::string out;
  bool in_list = false;
  for (const auto& line : lines) {
    bool indented = line.rfind("  ", 0) == 0;
    if (indented && !in_list) out += ".RS 2\n";
    if (!indented && in_list) out += ".RE\n";
    if (indented) {
      out += roff(line.substr(line.find_first_not_of(' '))) + "\n.br\n";
    } else if (!line.empty()) {
      out += roff(line) + "\n";
    }
    in_list = indented;
  }
  if (in_list) out += ".RE\n";
  return out;
}

std::string examples(const std::vector<std::string>& lines) {
  if (lines.empty()) return {};
  std::string out = ".nf\n.RS 4\n";
  for (const auto& l : lines) out += roff(l) + "\n";
  return out + ".RE\n.fi\n";
}

bool applies(const ExitCodeInfo& row, const CommandDoc& c) {
  if (row.commands.empty() || c.path.empty()) return true;
  std::string command = c.command();
  return std::any_of(row.commands.begin(), row.commands.end(), [&](std::string_view r) {
    // A group's page covers its subcommands' codes too.
    return r == command || (r.size() > command.size() && r.substr(0, command.size()) == command &&
                            r[command.size()] == ' ');
  });
}

std::string exit_status(const CommandDoc& c) {
  std::string out, after;
  const auto& table = exit_codes();
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& row = table[i];
    if (!applies(row, c)) continue;
    std::string who;
    if (!row.commands.empty() &&
        (c.path.empty() || c.command() != row.commands.front() || row.commands.size() > 1)) {
      for (auto cmd : row.commands) who += (who.empty() ? "" : ", ") + bold(std::string(cmd));
      who += ": ";
    }
    std::string text = who + roff(std::string(row.meaning)) + "\n";
    if (!row.code) {
      after += ".PP\n" + text;
      continue;
    }
    bool first_of_code = true;
    for (std::size_t j = 0; j < i; ++j) {
      if (table[j].code == row.code && applies(table[j], c)) first_of_code = false;
    }
    if (first_of_code)
      out += ".TP\n.B " + std::to_string(static_cast<int>(*row.code)) + "\n";
    else
      out += ".br\n";
    out += text;
  }
  return out + after;
}

std::string commands_list(const CommandDoc& c) {
  std::string out;
  auto entry = [&](const CommandDoc& sub) {
    out += ".TP\n.B " + roff(sub.command()) + "\n" + roff(sentence(sub.description)) + " See " +
           page_ref(sub.page()) + ".\n";
  };
  for (const auto& sub : c.subcommands) {
    if (!c.path.empty() || sub.subcommands.empty()) {
      entry(sub);
      continue;
    }
    for (const auto& leaf : sub.subcommands) entry(leaf);
  }
  return out;
}

std::string options_list(const CommandDoc& c) {
  std::string out;
  for (const auto& p : c.positionals) {
    out += ".TP\n" + positional_term(p) + "\n" + roff(sentence(p.help));
    out += p.required ? " Required.\n" : " Optional.\n";
  }
  for (const auto& o : c.options) {
    out += ".TP\n" + option_term(o) + "\n" + roff(sentence(o.help));
    if (o.required) out += " Required.";
    if (o.repeatable) out += " Repeatable.";
    if (!o.default_value.empty()) out += " Default: " + roff(o.default_value) + ".";
    out += "\n";
  }
  return out;
}

std::string see_also(const CommandDoc& root, const CommandDoc& c) {
  std::vector<std::string> pages;
  if (c.path.empty()) {
    for_each_command(root, [&](const CommandDoc& d) {
      if (!d.path.empty()) pages.push_back(d.page());
    });
  } else {
    pages.push_back("kcr");
    if (c.path.size() > 1) pages.push_back("kcr-" + c.path.front());
    for (const auto& sub : c.subcommands) pages.push_back(sub.page());
  }
  std::string out;
  for (std::size_t i = 0; i < pages.size(); ++i) {
    out += ".BR " + roff(pages[i]) + " (1)" + (i + 1 < pages.size() ? "," : "") + "\n";
  }
  return out;
}

Sections generate(const CommandDoc& root, const CommandDoc& c) {
  Sections s;
  std::string name = c.path.empty() ? "kcr" : c.page();
  std::string what = c.description;
  if (!what.empty()) what[0] = static_cast<char>(std::tolower(what[0]));
  s.push_back({"NAME", roff(name) + " \\- " + roff(what.substr(0, what.find('\n'))) + "\n"});
  s.push_back({"SYNOPSIS", synopsis(c)});
  s.push_back({"DESCRIPTION", roff(sentence(c.description)) + "\n" + prose(c.prose)});
  if (!c.subcommands.empty()) s.push_back({"COMMANDS", commands_list(c)});
  s.push_back({"OPTIONS", options_list(c)});
  if (!c.examples.empty()) s.push_back({"EXAMPLES", examples(c.examples)});
  s.push_back({"EXIT STATUS", exit_status(c)});
  s.push_back({"SEE ALSO", see_also(root, c)});
  return s;
}

// A source's sections: ".SH NAME" starts one; lines before the first are comments.
Sections parse_source(const std::string& path) {
  Sections out;
  std::string text = core::read_file(path);
  for (std::size_t start = 0; start < text.size();) {
    auto end = std::min(text.find('\n', start), text.size());
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.rfind(".SH ", 0) == 0) {
      std::string name = line.substr(4);
      if (name.size() > 1 && name.front() == '"') name = name.substr(1, name.size() - 2);
      if (std::find(k_sections.begin(), k_sections.end(), name) == k_sections.end()) {
        throw Error(path + ": unknown section '" + name + "'",
                    "use one of NAME, SYNOPSIS, DESCRIPTION, ... (see cli/man_page.cpp)");
      }
      out.push_back({name, ""});
    } else if (!out.empty()) {
      out.back().second += line + "\n";
    }
  }
  return out;
}

// NAME and SYNOPSIS from a source replace the generated ones; other text is appended.
void merge(Sections& page, const Sections& source) {
  for (const auto& [name, body] : source) {
    auto it =
        std::find_if(page.begin(), page.end(), [&](const auto& s) { return s.first == name; });
    if (it == page.end()) {
      page.push_back({name, body});
    } else if (name == "NAME" || name == "SYNOPSIS") {
      it->second = body;
    } else {
      // SEE ALSO is a comma-separated list; the generated part ends without its comma.
      if (name == "SEE ALSO" && !it->second.empty()) it->second.insert(it->second.size() - 1, ",");
      it->second += (name == "SEE ALSO" ? "" : ".PP\n") + body;
    }
  }
  auto rank = [](const std::string& n) {
    return std::find(k_sections.begin(), k_sections.end(), n) - k_sections.begin();
  };
  std::stable_sort(page.begin(), page.end(),
                   [&](const auto& a, const auto& b) { return rank(a.first) < rank(b.first); });
}

std::string upper_case(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::toupper(ch));
  return s;
}

}  // namespace

void write_man_pages(const CommandDoc& root, const std::string& source_dir,
                     const std::string& out_dir) {
  fs::create_directories(out_dir);
  // Pages of commands that are gone must not linger.
  std::vector<fs::path> old;
  for (const auto& entry : fs::directory_iterator(out_dir)) {
    auto name = entry.path().filename().string();
    if (name.rfind("kcr", 0) == 0 && entry.path().extension() == ".1") old.push_back(entry.path());
  }
  for (const auto& p : old) fs::remove(p);
  std::set<std::string> pages;
  Sections common = parse_source(source_dir + "/common.1.in");
  for_each_command(root, [&](const CommandDoc& c) {
    std::string page = c.page();
    pages.insert(page + ".1.in");
    Sections s = generate(root, c);
    if (!c.path.empty()) merge(s, common);
    std::string source = source_dir + "/" + page + ".1.in";
    if (fs::exists(source)) merge(s, parse_source(source));
    std::string out = ".\\\" Generated by 'kcr __describe' from kcr's command definitions and " +
                      std::string("man/") + page + ".1.in; edit those.\n";
    out +=
        ".TH " + roff(upper_case(page)) + " 1 \"\" \"kcr " + k_version + "\" \"User Commands\"\n";
    for (const auto& [name, body] : s) {
      if (body.empty()) continue;
      out +=
          ".SH " + (name.find(' ') == std::string::npos ? name : "\"" + name + "\"") + "\n" + body;
    }
    core::write_file_atomic(out_dir + "/" + page + ".1", out, 0644);
  });
  for (const auto& entry : fs::directory_iterator(source_dir)) {
    auto name = entry.path().filename().string();
    if (name != "common.1.in" && name.size() > 5 && name.ends_with(".1.in") && !pages.count(name)) {
      throw Error("man/" + name + " belongs to no command",
                  "rename or remove it; pages are named kcr-COMMAND-SUBCOMMAND");
    }
  }
}

}  // namespace kcr::cli
