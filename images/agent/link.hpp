#pragma once

#include <string>

namespace kcr::agent {

// The guest's migration link: its first network interface besides lo
// (sorted by name); throws kcr::Error when there is none.
std::string link_interface();

// Brings the migration link up with ADDRESS ("10.97.0.1/24"), replacing any
// address it had. Throws kcr::Error naming what failed.
void bring_up_link(const std::string& address);

// True for "A.B.C.D/N" made of digits, three dots and one slash.
bool is_valid_link_address(const std::string& address);

}  // namespace kcr::agent
