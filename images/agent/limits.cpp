#include "images/agent/limits.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::agent {

namespace {

constexpr const char* k_cgroup_fs = "/sys/fs/cgroup";

void write_control(const std::string& path, const std::string& value) {
  // write_file_atomic would rename over a cgroup file: write in place.
  FILE* f = std::fopen(path.c_str(), "we");
  if (!f) throw_errno("open " + path);
  bool ok = std::fputs(value.c_str(), f) >= 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw_errno("write " + value + " to " + path);
}

uint64_t number_after(const std::string& text, const std::string& key, const std::string& file) {
  auto at = text.find(key + "=");
  if (at == std::string::npos) return 0;
  std::size_t end = 0;
  std::string digits = text.substr(at + key.size() + 1, 20);
  try {
    uint64_t v = std::stoull(digits, &end);
    if (end == 0) throw std::invalid_argument(key);
    return v;
  } catch (const std::exception&) {
    throw Error("the checkpoint's " + file + " has a malformed " + key);
  }
}

}  // namespace

std::string workload_cgroup(const std::string& name) {
  return "/kcr/" + name;
}

void make_limited_cgroup(const std::string& cgroup, const Limits& limits) {
  std::string top = k_cgroup_fs;
  std::string kcr = top + "/kcr";
  if (::mkdir(kcr.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir " + kcr);
  for (const auto& dir : {top, kcr})
    write_control(dir + "/cgroup.subtree_control", "+memory +pids");
  std::string dir = top + cgroup;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir " + dir);
  write_control(dir + "/memory.max",
                limits.memory_max ? std::to_string(limits.memory_max) : std::string("max"));
  write_control(dir + "/pids.max",
                limits.pids_max ? std::to_string(limits.pids_max) : std::string("max"));
}

void write_limits_file(const std::string& images_dir, const Limits& limits) {
  core::write_file_atomic(images_dir + "/" + k_limits_file,
                          "memory_max=" + std::to_string(limits.memory_max) +
                              "\npids_max=" + std::to_string(limits.pids_max) + "\n",
                          0644);
}

std::optional<Limits> read_limits_file(const std::string& images_dir) {
  auto text = core::try_read_file(images_dir + "/" + k_limits_file, 4096);
  if (!text) return std::nullopt;
  Limits l;
  l.memory_max = number_after(*text, "memory_max", k_limits_file);
  l.pids_max = number_after(*text, "pids_max", k_limits_file);
  if (!l.any()) return std::nullopt;
  return l;
}

namespace {

// The cgroup v2 path PID is in ("/kcr/NAME"); empty for the root or when unknown.
std::string cgroup_of(pid_t pid) {
  auto text = core::try_read_file("/proc/" + std::to_string(pid) + "/cgroup", 4096);
  if (!text) return {};
  auto at = text->find("0::");
  if (at == std::string::npos) return {};
  std::string path = core::trim(text->substr(at + 3, text->find('\n', at) - at - 3));
  if (path.empty() || path == "/" || path.find("..") != std::string::npos) return {};
  return path;
}

}  // namespace

void join_cgroup_of(pid_t pid) {
  std::string path = cgroup_of(pid);
  if (!path.empty()) write_control(std::string(k_cgroup_fs) + path + "/cgroup.procs", "0");
}

std::vector<std::string> thaw_cgroup_of(pid_t pid) {
  std::vector<std::string> thawed;
  std::string path = cgroup_of(pid);
  for (std::string at = path; !at.empty(); at = at.substr(0, at.rfind('/'))) {
    const std::string dir = std::string(k_cgroup_fs) + at;
    if (core::trim(core::try_read_file(dir + "/cgroup.freeze", 16).value_or("0")) != "1") continue;
    write_control(dir + "/cgroup.freeze", "0");
    thawed.push_back(at);
  }
  if (thawed.empty()) return thawed;
  // Thawing is asynchronous: wait until the workload's group says it is no longer frozen.
  const std::string events = std::string(k_cgroup_fs) + path + "/cgroup.events";
  for (int i = 0; i < 500; ++i) {
    auto text = core::try_read_file(events, 4096).value_or("");
    if (text.find("frozen 1") == std::string::npos) return thawed;
    ::usleep(10000);
  }
  throw Error("the workload's cgroup " + path + " did not thaw within 5 s");
}

}  // namespace kcr::agent
