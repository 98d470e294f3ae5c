#include "images/modules.hpp"

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "images/elf.hpp"

namespace kcr::images {

std::string normalize_module_name(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

std::string module_name_from_path(std::string_view path) {
  auto slash = path.rfind('/');
  std::string_view base = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (base.ends_with(".ko")) base.remove_suffix(3);
  return normalize_module_name(base);
}

ModInfo parse_modinfo(std::string_view bytes, const std::string& what) {
  ElfSection section = find_elf_section(bytes, ".modinfo", what);
  if (!section.found) throw Error(what + ": no .modinfo section (not a kernel module?)");
  ModInfo info;
  std::string_view rest = section.data;
  while (!rest.empty()) {
    auto end = rest.find('\0');
    std::string_view field = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end + 1);
    if (field.starts_with("name=")) {
      info.name = normalize_module_name(field.substr(5));
    } else if (field.starts_with("depends=")) {
      std::string_view list = field.substr(8);
      while (!list.empty()) {
        auto comma = list.find(',');
        std::string_view dep = list.substr(0, comma);
        if (!dep.empty()) info.depends.push_back(normalize_module_name(dep));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      }
    }
  }
  return info;
}

std::vector<std::string> order_modules(
    const std::vector<std::string>& requested,
    const std::map<std::string, std::vector<std::string>>& depends) {
  std::vector<std::string> order;
  std::set<std::string> done;
  std::vector<std::string> stack;  // the path being visited, to report cycles

  // Depth-first post-order: a module is emitted after all its dependencies.
  auto visit = [&](auto& self, const std::string& name, const std::string& wanted_by) -> void {
    if (done.count(name)) return;
    auto on_stack = std::find(stack.begin(), stack.end(), name);
    if (on_stack != stack.end()) {
      std::string cycle;
      for (auto it = on_stack; it != stack.end(); ++it) cycle += *it + " -> ";
      throw Error("kernel module dependency cycle: " + cycle + name);
    }
    auto it = depends.find(name);
    if (it == depends.end()) {
      throw Error(wanted_by.empty() ? "kernel module '" + name + "' is not in the kernel package"
                                    : "kernel module '" + name + "' (needed by '" + wanted_by +
                                          "') is not in the kernel package");
    }
    stack.push_back(name);
    for (const auto& dep : it->second) self(self, normalize_module_name(dep), name);
    stack.pop_back();
    done.insert(name);
    order.push_back(name);
  };
  for (const auto& name : requested) visit(visit, normalize_module_name(name), "");
  return order;
}

}  // namespace kcr::images
