#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kcr::images {

// The fields of a kernel module's .modinfo section that loading order needs.
struct ModInfo {
  std::string name;                  // "name=", normalised; empty when the module lacks it
  std::vector<std::string> depends;  // "depends=", normalised, in file order
};

// Returns NAME with '-' replaced by '_': the kernel treats them as the same in module names.
std::string normalize_module_name(std::string_view name);

// Returns the module name for a .ko path: "net/foo-bar.ko" -> "foo_bar".
std::string module_name_from_path(std::string_view path);

// Parses the .modinfo section of the ELF object BYTES; throws kcr::Error naming WHAT
// when it is not an ELF file or has no .modinfo section.
ModInfo parse_modinfo(std::string_view bytes, const std::string& what);

// Returns REQUESTED plus every module they depend on, transitively, ordered so that each
// module comes after its dependencies (ties keep REQUESTED's order). DEPENDS maps a
// normalised module name to its dependencies. Throws kcr::Error naming a module that is
// required but absent from DEPENDS, or the modules of a dependency cycle.
std::vector<std::string> order_modules(
    const std::vector<std::string>& requested,
    const std::map<std::string, std::vector<std::string>>& depends);

}  // namespace kcr::images
