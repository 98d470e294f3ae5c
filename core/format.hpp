#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace kcr::core {

// "3.41 s" style durations.
std::string format_seconds(double seconds);

// "252 KiB" style sizes.
std::string format_bytes(uint64_t bytes);

// ARGV as a shell would read it back: words with anything but [A-Za-z0-9_./=:,+-@%]
// single-quoted ("qemu-system-x86_64 -append 'console=ttyS0 quiet'").
std::string shell_join(const std::vector<std::string>& argv);

// & < > " ' as entities, for HTML and XML text and attribute values.
std::string markup_escape(const std::string& text);

// ROWS under HEADERS, columns padded to their widest cell and two spaces apart, one line
// each (trailing spaces trimmed).
std::string format_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows);

}  // namespace kcr::core
