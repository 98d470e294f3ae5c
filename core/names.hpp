#pragma once

#include <string>
#include <string_view>

namespace kcr::core {

// Checks a user-chosen name (VM, workload, image, checkpoint): 1-64 chars of
// [A-Za-z0-9_.-], starting with a letter or digit, so it is safe as a single
// path component. Throws kcr::Error naming WHAT ("VM name", ...) otherwise.
void validate_name(std::string_view what, std::string_view name);

// The same check as a predicate, for input from the guest.
bool is_valid_name(std::string_view name);

}  // namespace kcr::core
