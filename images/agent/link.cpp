#include "images/agent/link.hpp"

#include <dirent.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
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

void bring_up_link(const std::string& address) {
  if (!is_valid_link_address(address)) {
    throw Error("link address '" + address + "' is not valid");
  }
  std::string dev = link_interface();
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
}

}  // namespace kcr::agent
