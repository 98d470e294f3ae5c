#include "core/names.hpp"

#include "core/error.hpp"

namespace kcr::core {

bool is_valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name[0])) return false;
  for (char c : name) {
    if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

void validate_name(std::string_view what, std::string_view name) {
  if (is_valid_name(name)) return;
  throw Error(std::string(what) + " '" + std::string(name) + "' is not valid",
              "use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
              ExitCode::usage);
}

}  // namespace kcr::core
