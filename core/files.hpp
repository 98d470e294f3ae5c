#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/unique_fd.hpp"

// Small file, socket, time and text helpers that kcr and the agent share: libc and the
// standard library only, so the agent can link them.
namespace kcr::core {

// The whole content of PATH; throws kcr::Error ("cannot read PATH: strerror") when it cannot be
// opened or read, or when it is larger than MAX bytes.
std::string read_file(const std::string& path, std::size_t max = SIZE_MAX);

// Up to MAX bytes of PATH (the rest is not read), or nullopt when PATH cannot be opened/read.
// For /proc files and best-effort log reads.
std::optional<std::string> try_read_file(const std::string& path, std::size_t max = SIZE_MAX);

// Writes CONTENT to PATH atomically: a temp file in the same directory (O_CLOEXEC, MODE), write,
// fsync, rename over PATH, fsync the directory. Readers see the old or the new file, never a
// part. Throws kcr::Error; removes the temp file on failure.
void write_file_atomic(const std::string& path, std::string_view content, mode_t mode = 0600);

// Writes all of DATA to FD, retrying short writes and EINTR; false when a write fails.
bool write_all(int fd, std::string_view data);

// A connected AF_UNIX stream socket (SOCK_CLOEXEC) to PATH; throws kcr::Error naming WHAT and
// the path ("connect to WHAT (PATH): strerror"). Rejects paths longer than sun_path.
UniqueFd connect_unix(const std::string& path, const std::string& what = "socket");

// Milliseconds elapsed since START on the steady clock.
uint64_t ms_since(std::chrono::steady_clock::time_point start);

// Seconds elapsed since START on the steady clock.
double seconds_since(std::chrono::steady_clock::time_point start);

// TEXT without leading and trailing white space (space, \t, \r, \n, \v, \f).
std::string trim(std::string_view text);

// TEXT up to its first newline (all of it when it has none).
std::string first_line(const std::string& text);

// 16 random hex digits, for names of temporary files and directories beside their target.
std::string random_suffix();

// mkdir PATH with MODE; an existing PATH is fine. Throws kcr::Error naming the path otherwise.
void make_dir(const std::string& path, mode_t mode);

}  // namespace kcr::core
