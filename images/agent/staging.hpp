#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kcr::agent {

// Pure rules for checkpoint files moving between the host and the agent.

// Largest chunk the agent sends or accepts (a frame holds 8 MiB).
inline constexpr std::size_t k_max_chunk = 4 * 1024 * 1024;
inline constexpr std::size_t k_default_chunk = 1024 * 1024;

// The chunk size for a checkpoint: requested (0 means the default), capped at k_max_chunk.
std::size_t checkpoint_chunk_bytes(std::uint32_t requested);

// True for a file name CRIU may write into its images directory: 1-255 of [A-Za-z0-9._-], not
// "." or "..".
bool is_valid_image_name(std::string_view name);

// True for a path a checkpoint file may have: "images/NAME" (is_valid_image_name),
// "parents/K/images/NAME" (a pre-dump round, K in 1..999), "dump.log", or "stats-dump".
bool is_valid_checkpoint_path(std::string_view path);

// True for CRIU's page images (pages-N.img): big, written once sequentially, so the agent streams
// them as they grow and frees what it sent.
bool is_pages_image(std::string_view name);

// Parses a pidfile's content: a positive decimal pid, optionally followed by a newline. Returns 0
// when it is anything else.
pid_t parse_pidfile(std::string_view text);

// Whether size more bytes may be staged when the filesystem has avail bytes free: some room must
// stay for the restored workload and CRIU itself.
bool staging_fits(std::uint64_t size, std::uint64_t avail, std::uint64_t total);

}  // namespace kcr::agent
