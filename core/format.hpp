#pragma once

#include <cstdint>
#include <string>

namespace kcr::core {

// "3.41 s" style durations.
std::string format_seconds(double seconds);

// "252 KiB" style sizes.
std::string format_bytes(uint64_t bytes);

}  // namespace kcr::core
