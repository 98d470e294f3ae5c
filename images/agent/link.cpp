#include "images/agent/link.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"
#include "images/agent/process.hpp"

namespace kcr::agent {

bool is_valid_link_address(const std::string& address) {
  if (address.empty() || address.size() > 18) return false;
  if (std::count(address.begin(), address.end(), '.') != 3) return false;
  if (std::count(address.begin(), address.end(), '/') != 1) return false;
  return std::all_of(address.begin(), address.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == '.' || c == '/'; });
}

std::string link_interface() {
  std::vector<std::string> names;
  if (DIR* d = ::opendir("/sys/class/net")) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != ".." && name != "lo") names.push_back(name);
    }
    ::closedir(d);
  }
  if (names.empty()) {
    throw Error("the guest has no network interface for the migration link",
                "the VM needs the virtio-net device kcr gives every VM it starts");
  }
  std::sort(names.begin(), names.end());
  return names.front();
}

namespace {

// "10.97.0.1/24" -> (address, prefix); nullopt when it is not that.
std::optional<std::pair<uint32_t, unsigned>> parse_cidr(const std::string& text) {
  unsigned a[4], prefix;
  char end;
  if (std::sscanf(text.c_str(), "%u.%u.%u.%u/%u%c", &a[0], &a[1], &a[2], &a[3], &prefix, &end) !=
          5 ||
      a[0] > 255 || a[1] > 255 || a[2] > 255 || a[3] > 255 || prefix > 32) {
    return std::nullopt;
  }
  return std::pair<uint32_t, unsigned>{(a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3], prefix};
}

unsigned prefix_of_mask(uint32_t mask) {
  unsigned n = 0;
  while (mask & 0x80000000u) {
    ++n;
    mask <<= 1;
  }
  return n;
}

// The address kcr last gave the link: replacing it is no clash.
std::string g_last_link_address;

}  // namespace

std::vector<InterfaceAddress> interface_addresses() {
  std::vector<InterfaceAddress> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask) continue;
    uint32_t addr = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
    uint32_t mask = ntohl(reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr);
    char text[40];
    std::snprintf(text, sizeof text, "%u.%u.%u.%u/%u", addr >> 24, (addr >> 16) & 255,
                  (addr >> 8) & 255, addr & 255, prefix_of_mask(mask));
    out.push_back({i->ifa_name, text});
  }
  ::freeifaddrs(list);
  return out;
}

std::optional<std::string> link_clash(const std::vector<InterfaceAddress>& current,
                                      const std::string& link_interface, const std::string& wanted,
                                      const std::string& last_set) {
  auto want = parse_cidr(wanted);
  if (!want) return "link address '" + wanted + "' is not valid";
  uint32_t mask = want->second == 0 ? 0 : ~uint32_t{0} << (32 - want->second);
  for (const auto& a : current) {
    // getifaddrs names a labelled address "eth0:1": it is eth0's all the same.
    const std::string dev = a.interface.substr(0, a.interface.find(':'));
    if (dev == "lo") continue;
    if (dev == link_interface) {
      if (a.address != last_set && a.address != wanted) {
        return "the migration link would replace address " + a.address + " of " + a.interface +
               " in this guest (a workload's?)";
      }
      continue;
    }
    auto have = parse_cidr(a.address);
    if (have && (have->first & mask) == (want->first & mask)) {
      return "the migration link's " + wanted + " is in the subnet of " + a.interface + "'s " +
             a.address + " in this guest";
    }
  }
  return std::nullopt;
}

void bring_up_link(const std::string& address) {
  if (!is_valid_link_address(address)) {
    throw Error("link address '" + address + "' is not valid");
  }
  std::string dev = link_interface();
  if (auto clash = link_clash(interface_addresses(), dev, address, g_last_link_address)) {
    throw Error(*clash,
                "set migration_link in kcr's config file to addresses of another subnet "
                "(source, destination, port), or remove that address");
  }
  for (const auto& argv :
       std::vector<std::vector<std::string>>{{"ip", "link", "set", dev, "up"},
                                             {"ip", "addr", "flush", "dev", dev},
                                             {"ip", "addr", "add", address, "dev", dev}}) {
    CommandResult r = run_command(argv, std::chrono::seconds(10));
    if (r.timed_out || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
      std::string words;
      for (const auto& a : argv) words += (words.empty() ? "" : " ") + a;
      throw Error("'" + words + "' failed: " + core::trim(r.output));
    }
  }
  g_last_link_address = address;
}

}  // namespace kcr::agent
