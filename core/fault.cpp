#include "core/fault.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::core {
namespace {

// "POINT[:ACTION],..." as (point, action) pairs; the action is empty when absent.
std::vector<std::pair<std::string, std::string>> parse_spec(const std::string& all) {
  std::vector<std::pair<std::string, std::string>> items;
  std::size_t start = 0;
  while (start <= all.size()) {
    std::size_t end = all.find(',', start);
    std::string item =
        all.substr(start, end == std::string::npos ? std::string::npos : end - start);
    std::size_t colon = item.find(':');
    items.emplace_back(item.substr(0, colon),
                       colon == std::string::npos ? std::string() : item.substr(colon + 1));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return items;
}

// The kcr.fault=... word of the kernel command line, or "".
std::string agent_spec() {
  std::string cmdline = try_read_file("/proc/cmdline", 64 * 1024).value_or("");
  const std::string key = "kcr.fault=";
  std::size_t at = cmdline.find(key);
  while (at != std::string::npos && at > 0 && cmdline[at - 1] != ' ') {
    at = cmdline.find(key, at + 1);
  }
  if (at == std::string::npos) return "";
  std::size_t from = at + key.size();
  std::size_t end = cmdline.find_first_of(" \n", from);
  return cmdline.substr(from, end == std::string::npos ? std::string::npos : end - from);
}

std::map<std::string, int>& opened_vms() {
  static std::map<std::string, int> vms;
  return vms;
}

void kill_qemu(const std::string& only) {
  for (const auto& [vm, pid] : opened_vms()) {
    if (pid <= 1 || (!only.empty() && vm != only)) continue;
    std::fprintf(stderr, "kcr: injected fault: killing the QEMU of VM '%s' (pid %d)\n", vm.c_str(),
                 pid);
    ::kill(pid, SIGKILL);
    for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) ::usleep(50 * 1000);
  }
}

}  // namespace

void fault_register_vm(const std::string& name, int pid) {
  if (std::getenv("KCR_FAULT")) opened_vms()[name] = pid;
}

void fault_point(const char* point) {
  const char* spec = std::getenv("KCR_FAULT");
  if (!spec || !*spec) return;
  for (const auto& [name, action] : parse_spec(spec)) {
    if (name != point) continue;
    if (action == "fail") throw Error(std::string("injected fault at ") + point);
    if (action == "kill-qemu" || action.rfind("kill-qemu=", 0) == 0) {
      kill_qemu(action.size() > 10 ? action.substr(10) : std::string());
      continue;
    }
    ::kill(::getpid(), SIGKILL);
    ::pause();
  }
}

int agent_fault_point(const char* point) {
  static const std::vector<std::pair<std::string, std::string>> items = parse_spec(agent_spec());
  static std::set<std::string> fired;
  for (const auto& [name, action] : items) {
    if (name != point || !fired.insert(name).second) continue;
    std::fprintf(stderr, "kcr-agent: injected fault at %s: %s\n", point, action.c_str());
    if (action == "exit") ::_exit(1);
    if (action == "stall") ::sleep(k_agent_stall_seconds);
    if (action == "enospc") return ENOSPC;
    if (action == "eio") return EIO;
    return 0;
  }
  return 0;
}

void validate_agent_fault_spec(const std::string& spec) {
  for (const auto& [name, action] : parse_spec(spec)) {
    bool name_ok =
        !name.empty() && name.size() <= 64 &&
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") == std::string::npos;
    if (!name_ok) throw Error("KCR_AGENT_FAULT: '" + name + "' is not a fault point name");
    if (action != "exit" && action != "enospc" && action != "eio" && action != "stall") {
      throw Error("KCR_AGENT_FAULT: point " + name +
                  " needs an action: exit, enospc, eio or stall");
    }
  }
}

}  // namespace kcr::core
