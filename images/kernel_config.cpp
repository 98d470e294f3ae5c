#include "images/kernel_config.hpp"

#include <cctype>
#include <optional>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/files.hpp"
#include "images/kernel_fragment.hpp"

namespace kcr::images {

namespace {

template <typename OnLine>
void for_each_line(std::string_view text, OnLine&& on_line) {
  std::size_t start = 0;
  unsigned number = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    on_line(core::trim(text.substr(start, end - start)), ++number);
    start = end + 1;
  }
}

bool is_option_name(std::string_view name) {
  if (!name.starts_with("CONFIG_") || name.size() == 7) return false;
  for (char c : name) {
    // Mostly upper case, but not all: CONFIG_FONT_8x8.
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
      return false;
    }
  }
  return true;
}

// "# CONFIG_X is not set" -> "CONFIG_X"; anything else -> empty.
std::string_view unset_option(std::string_view line) {
  constexpr std::string_view suffix = " is not set";
  if (!line.starts_with("# ") || !line.ends_with(suffix)) return {};
  auto name = line.substr(2, line.size() - 2 - suffix.size());
  return is_option_name(name) ? name : std::string_view{};
}

}  // namespace

KernelConfig parse_kernel_config(std::string_view text, const std::string& source) {
  KernelConfig config;
  for_each_line(text, [&](std::string_view line, unsigned number) {
    if (line.empty() || line.front() == '#') return;
    auto eq = line.find('=');
    if (eq == std::string_view::npos || !is_option_name(line.substr(0, eq))) {
      throw Error(fmt::format("{}:{}: not a kernel config line: {}", source, number, line),
                  "pass a kernel .config (for example /boot/config-$(uname -r))");
    }
    config[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
  });
  return config;
}

std::vector<FragmentOption> parse_kernel_fragment(std::string_view text,
                                                  const std::string& source) {
  static const std::vector<std::pair<std::string_view, Need>> headers = {
      {"# needed by: ", Need::required},
      {"# recommended for: ", Need::recommended},
      {"# build choice: ", Need::build_choice}};
  std::vector<FragmentOption> options;
  std::optional<std::pair<Need, std::string>> group;
  for_each_line(text, [&](std::string_view line, unsigned number) {
    for (const auto& [prefix, need] : headers) {
      if (line.starts_with(prefix)) {
        group.emplace(need, std::string(line.substr(prefix.size())));
        return;
      }
    }
    FragmentOption o;
    if (auto unset = unset_option(line); !unset.empty()) {
      o.name = unset;
      o.value = "n";
    } else if (line.empty() || line.front() == '#') {
      return;
    } else {
      auto eq = line.find('=');
      if (eq == std::string_view::npos || !is_option_name(line.substr(0, eq))) {
        throw Error(fmt::format("{}:{}: not a kernel config line: {}", source, number, line));
      }
      o.name = line.substr(0, eq);
      o.value = line.substr(eq + 1);
    }
    if (!group) {
      throw Error(fmt::format("{}:{}: {} is not in a group ('# needed by: ...' before it)", source,
                              number, o.name));
    }
    o.need = group->first;
    o.needed_by = group->second;
    options.push_back(std::move(o));
  });
  return options;
}

std::string_view kcr_kernel_fragment_text() {
  return k_kernel_fragment;
}

const std::vector<FragmentOption>& kcr_kernel_fragment() {
  static const std::vector<FragmentOption> fragment =
      parse_kernel_fragment(k_kernel_fragment, "images/kernel/criu.config");
  return fragment;
}

std::vector<OptionCheck> KernelCheck::missing_required() const {
  std::vector<OptionCheck> missing;
  for (const auto& c : options) {
    if (c.option.need == Need::required && !c.present()) missing.push_back(c);
  }
  return missing;
}

KernelCheck check_kernel_config(const KernelConfig& config,
                                const std::vector<FragmentOption>& fragment) {
  KernelCheck check;
  for (const auto& o : fragment) {
    if (o.need == Need::build_choice) continue;
    OptionCheck c{o, OptionStatus::missing, {}};
    if (auto it = config.find(o.name); it != config.end()) {
      c.actual = it->second;
      if (c.actual == o.value) {
        c.status = OptionStatus::builtin;
      } else if (c.actual == "m" && o.value == "y") {
        c.status = OptionStatus::module;
      } else {
        c.status = OptionStatus::wrong_value;
      }
    }
    check.options.push_back(std::move(c));
  }
  return check;
}

std::vector<FragmentOption> dropped_options(const KernelConfig& config,
                                            const std::vector<FragmentOption>& fragment) {
  std::vector<FragmentOption> dropped;
  for (const auto& o : fragment) {
    auto it = config.find(o.name);
    bool kept = o.value == "n" ? it == config.end() : it != config.end() && it->second == o.value;
    if (!kept) dropped.push_back(o);
  }
  return dropped;
}

std::string describe_status(const OptionCheck& check) {
  switch (check.status) {
    case OptionStatus::builtin:
      return "built in";
    case OptionStatus::module:
      return "module";
    case OptionStatus::missing:
      return "missing";
    case OptionStatus::wrong_value:
      return "is " + check.actual + ", needs " + check.option.value;
  }
  return "?";
}

std::string describe_missing(const KernelCheck& check) {
  std::string out;
  for (const auto& c : check.missing_required()) {
    if (!out.empty()) out += ", ";
    out += c.option.name + " (needed by: " + c.option.needed_by + ")";
  }
  return out;
}

}  // namespace kcr::images
