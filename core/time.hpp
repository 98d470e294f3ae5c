#pragma once

#include <string>

namespace kcr::core {

// The current time as ISO-8601 UTC, e.g. "2026-11-25T06:53:02Z".
std::string now_iso8601();

}  // namespace kcr::core
