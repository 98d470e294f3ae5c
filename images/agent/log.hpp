#pragma once

#include <string_view>

namespace kcr::agent {

// Writes one line to stderr (the guest's serial console), prefixed "kcr-agent: "; lines beyond a
// small budget per time window are counted and summarised instead of printed.
void log_line(std::string_view message);

// Writes one line to stderr regardless of the rate limit, for rare important events.
void log_always(std::string_view message);

}  // namespace kcr::agent
