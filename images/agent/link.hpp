#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kcr::agent {

// The guest's migration link: its first network interface besides lo
// (sorted by name); throws kcr::Error when there is none.
std::string link_interface();

// One IPv4 address of a guest interface, as "A.B.C.D/N".
struct InterfaceAddress {
  std::string interface;
  std::string address;
};

// The IPv4 addresses of the guest's interfaces (getifaddrs).
std::vector<InterfaceAddress> interface_addresses();

// Why giving WANTED to LINK_INTERFACE would clash with what the guest has
// (CURRENT), or nullopt when it would not: another address on the link
// interface than LAST_SET (the one kcr gave it before; a workload's then),
// or an address of WANTED's subnet on another interface. Workloads share the
// guest's network namespace, so either would break one of theirs.
std::optional<std::string> link_clash(const std::vector<InterfaceAddress>& current,
                                      const std::string& link_interface, const std::string& wanted,
                                      const std::string& last_set);

// Brings the migration link up with ADDRESS ("10.97.0.1/24"), replacing the
// address kcr gave it before; refuses (kcr::Error, before changing anything)
// when that would clash with an address kcr did not set.
void bring_up_link(const std::string& address);

// True for "A.B.C.D/N" made of digits, three dots and one slash.
bool is_valid_link_address(const std::string& address);

}  // namespace kcr::agent
