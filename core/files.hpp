#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/unique_fd.hpp"

namespace kcr::core {

// The whole content of PATH; throws kcr::Error when it cannot be read or is larger than MAX.
std::string read_file(const std::string& path, std::size_t max = SIZE_MAX);

// Up to MAX bytes of PATH, or nullopt when it cannot be read.
std::optional<std::string> try_read_file(const std::string& path, std::size_t max = SIZE_MAX);

// Writes CONTENT to PATH atomically (temp file, fsync, rename, fsync of the directory).
void write_file_atomic(const std::string& path, std::string_view content, mode_t mode = 0600);

// A connected unix stream socket to PATH; throws kcr::Error naming WHAT.
UniqueFd connect_unix(const std::string& path, const std::string& what = "socket");

// Milliseconds since START on the steady clock.
uint64_t ms_since(std::chrono::steady_clock::time_point start);

// TEXT without leading and trailing white space.
std::string trim(std::string_view text);

}  // namespace kcr::core
