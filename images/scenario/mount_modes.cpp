// Scenarios of cgroups and mounts, each a workload answering the generic probe (checker.hpp).

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include <dirent.h>

#include "images/scenario/checker.hpp"
#include "images/scenario/modes.hpp"

namespace kcr::scenario {

namespace {

constexpr const char* k_cgroup_root = "/sys/fs/cgroup";

void write_text(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 || !write_all(fd, text.data(), text.size())) fail_errno("write " + path);
  ::close(fd);
}

std::string read_text(const std::string& path) {
  auto t = read_small_file(path);
  return t ? first_line(*t) : "(unreadable: " + errno_text(errno) + ")";
}

// The line of /proc/self/cgroup for the unified hierarchy: "0::/PATH" -> "/PATH".
std::string own_cgroup() {
  auto t = read_small_file("/proc/self/cgroup");
  if (!t) return "";
  auto p = t->find("0::");
  return p == std::string::npos ? "" : first_line(t->substr(p + 3));
}

// cgroup-v2: the workload moves itself into a cgroup of its own (its name from the seed) with
// the memory and pids controllers enabled and seed-derived memory.max and pids.max. The check:
// it is still in that cgroup, and the cgroup still has its limits.
int run_cgroup_v2(const Args& a) {
  const std::string name = "kcr-scenario-" + seed().substr(0, 8);
  const std::string dir = std::string(k_cgroup_root) + "/" + name;
  write_text(std::string(k_cgroup_root) + "/cgroup.subtree_control", "+memory +pids");
  if (::mkdir(dir.c_str(), 0755) != 0) fail_errno("mkdir " + dir);
  const std::string memory_max = std::to_string((64 + seed_number() % 64) << 20);
  const std::string pids_max = std::to_string(50 + seed_number() % 50);
  write_text(dir + "/memory.max", memory_max);
  write_text(dir + "/pids.max", pids_max);
  write_text(dir + "/cgroup.procs", std::to_string(::getpid()));
  log_startup("cgroup-v2: in " + dir + ", memory.max " + memory_max + ", pids.max " + pids_max);
  serve_checks(a, "cgroup-v2", [&] {
    std::string in = own_cgroup();
    if (in != "/" + name) return "bad the workload is in cgroup '" + in + "', not /" + name;
    std::string mem = read_text(dir + "/memory.max"), pids = read_text(dir + "/pids.max");
    if (mem != memory_max || pids != pids_max) {
      return "bad the cgroup's limits changed: memory.max " + mem + " (was " + memory_max +
             "), pids.max " + pids + " (was " + pids_max + ")";
    }
    return "ok " + seed() + " cgroup=/" + name + " memory.max=" + mem + " pids.max=" + pids;
  });
}

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  DIR* d = ::opendir(path.c_str());
  if (!d) return names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

void put_file(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || !write_all(fd, content.data(), content.size())) fail_errno("write " + path);
  ::close(fd);
}

// Whether /proc/self/mountinfo has an overlay mounted on PATH ("ID PARENT DEV ROOT PATH OPTS
// [OPTIONAL...] - overlay SOURCE SUPER").
bool is_overlay_mount(const std::string& path) {
  auto info = read_small_file("/proc/self/mountinfo");
  if (!info) return false;
  std::size_t start = 0;
  while (start < info->size()) {
    std::size_t end = info->find('\n', start);
    if (end == std::string::npos) end = info->size();
    std::string line = info->substr(start, end - start);
    start = end + 1;
    if (line.find(" " + path + " ") != std::string::npos &&
        line.find(" - overlay ") != std::string::npos) {
      return true;
    }
  }
  return false;
}

// overlayfs: an overlay mount in /tmp (lower, upper and work directories beside it): a file
// of the lower layer kept open, a file written and one deleted through the merged view. The
// check: the merged view lists what it did, the written file holds its bytes, the open file
// still reads the lower layer's bytes, the mount is still an overlay.
int run_overlayfs(const Args& a) {
  const std::string base = state_dir(a) + "/overlay-" + seed().substr(0, 8);
  for (const char* sub : {"", "/lower", "/upper", "/work", "/merged"}) {
    if (::mkdir((base + sub).c_str(), 0755) != 0) fail_errno("mkdir " + base + sub);
  }
  const std::string lower_text = "lower " + seed() + "\n", upper_text = "upper " + seed() + "\n";
  put_file(base + "/lower/kept", lower_text);
  put_file(base + "/lower/deleted", "gone\n");
  const std::string opts =
      "lowerdir=" + base + "/lower,upperdir=" + base + "/upper,workdir=" + base + "/work";
  if (::mount("overlay", (base + "/merged").c_str(), "overlay", 0, opts.c_str()) != 0) {
    fail_errno("mount overlay on " + base + "/merged");
  }
  put_file(base + "/merged/written", upper_text);
  if (::unlink((base + "/merged/deleted").c_str()) != 0) fail_errno("unlink in the overlay");
  int kept = ::open((base + "/merged/kept").c_str(), O_RDONLY | O_CLOEXEC);
  if (kept < 0) fail_errno("open in the overlay");
  log_startup("overlayfs: " + base + "/merged, a file open, one written, one deleted");
  serve_checks(a, "overlayfs", [&] {
    auto names = list_dir(base + "/merged");
    if (names != std::vector<std::string>{"kept", "written"}) {
      std::string got;
      for (auto& n : names) got += (got.empty() ? "" : ",") + n;
      return "bad the merged view lists [" + got + "], not [kept,written]";
    }
    std::string buf(256, '\0');
    ssize_t n = ::pread(kept, buf.data(), buf.size(), 0);
    if (n < 0 || buf.substr(0, static_cast<std::size_t>(n)) != lower_text) {
      return std::string("bad the open file no longer reads the lower layer");
    }
    auto w = read_small_file(base + "/merged/written");
    if (!w || *w != upper_text) return std::string("bad the written file lost its bytes");
    if (!is_overlay_mount(base + "/merged")) {
      return std::string("bad " + base + "/merged is no longer an overlay mount");
    }
    return "ok " + seed() + " merged=[kept,written] kept=lower written=upper";
  });
}

}  // namespace

void add_mount_modes(ModeTable& t) {
  t["cgroup-v2"] = {
      run_cgroup_v2, {}, true, "move into a cgroup of its own with memory.max and pids.max"};
  t["overlayfs"] = {run_overlayfs,
                    {},
                    true,
                    "an overlay mount in /tmp: a lower file open, one written, one deleted"};
}

}  // namespace kcr::scenario
