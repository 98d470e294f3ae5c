#pragma once

#include <string>

namespace kcr::core {

// Parses "TERM", "SIGTERM", "term" or "15" into a signal number; throws
// kcr::Error (usage) for anything else.
int parse_signal(const std::string& text);

// "TERM" for 15, "SIG37" for signals without a classic name.
std::string signal_name(int signal);

}  // namespace kcr::core
