#include "core/criu_options.hpp"

#include <deque>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::core {

void validate_manage_cgroups_mode(const std::string& mode) {
  if (mode.empty() || mode == "soft" || mode == "full" || mode == "strict" || mode == "ignore") {
    return;
  }
  throw Error("--manage-cgroups-mode '" + mode + "' is not valid",
              "use soft, full, strict or ignore", ExitCode::usage);
}

namespace {

// Flags that mean the same on dump and restore.
void add_common(std::vector<std::string>& argv, const proto::CriuOptions& o) {
  if (o.tcp_established()) {
    argv.push_back("--tcp-established");
    // The guest has nftables and no iptables (guest.md).
    argv.push_back("--network-lock");
    argv.push_back("nftables");
  }
  if (o.ext_unix_sk()) argv.push_back("--ext-unix-sk");
  if (o.file_locks()) argv.push_back("--file-locks");
  if (o.shell_job()) argv.push_back("--shell-job");
  validate_manage_cgroups_mode(o.manage_cgroups_mode());
  if (!o.manage_cgroups_mode().empty()) {
    argv.push_back("--manage-cgroups=" + o.manage_cgroups_mode());
  }
}

}  // namespace

std::string external_mount_key(const std::string& path) {
  std::string key = "kcr";
  for (char c : path) key += c == '/' ? '-' : c;
  return key;
}

std::vector<std::string> criu_dump_argv(const std::string& criu, const CriuDumpTarget& target,
                                        const proto::CriuOptions& options) {
  std::vector<std::string> argv = {criu, target.pre_dump ? "pre-dump" : "dump",
                                   "-t", std::to_string(target.pid),
                                   "-D", target.images_dir,
                                   "-W", target.work_dir,
                                   "-o", target.log_file,
                                   "-v4"};
  if (target.track_mem || target.pre_dump) argv.push_back("--track-mem");
  if (!target.prev_images_dir.empty()) {
    argv.push_back("--prev-images-dir");
    argv.push_back(target.prev_images_dir);
  }
  // A pre-dump copies memory only and never stops the tree.
  if (target.pre_dump) return argv;
  add_common(argv, options);
  for (const auto& path : target.external_mounts) {
    argv.push_back("--external");
    argv.push_back("mnt[" + path + "]:" + external_mount_key(path));
  }
  // Without --leave-running the tree is left stopped, not killed: kcr kills
  // it only once the checkpoint is safely stored, and resumes it otherwise.
  argv.push_back(options.leave_running() ? "--leave-running" : "--leave-stopped");
  if (options.link_remap()) argv.push_back("--link-remap");
  if (target.lazy_port != 0) {
    argv.insert(argv.end(), {"--lazy-pages", "--address", "0.0.0.0", "--port",
                             std::to_string(target.lazy_port)});
  }
  if (target.status_fd >= 0) {
    argv.push_back("--status-fd");
    argv.push_back(std::to_string(target.status_fd));
  }
  if (options.tcp_skip_in_flight()) argv.push_back("--skip-in-flight");
  return argv;
}

std::vector<std::string> criu_restore_argv(const std::string& criu, const CriuRestoreTarget& target,
                                           const proto::CriuOptions& options) {
  // --root / : restoring a mount namespace needs it (guest.md: without it
  // "BUG at criu/mount.c:48"). -d: the agent, PID 1, adopts the tree.
  std::vector<std::string> argv = {criu,        "restore",       "-D",        target.images_dir,
                                   "-W",        target.work_dir, "-o",        target.log_file,
                                   "-v4",       "--root",        target.root, "-d",
                                   "--pidfile", target.pid_file};
  add_common(argv, options);
  for (const auto& m : target.external_mounts) {
    argv.push_back("--external");
    argv.push_back("mnt[" + external_mount_key(m.path) + "]:" + m.source);
  }
  if (target.mntns_compat) argv.push_back("--mntns-compat-mode");
  if (!target.cgroup_root.empty()) {
    argv.push_back("--cgroup-root");
    argv.push_back(target.cgroup_root);
  }
  if (target.lazy_pages) argv.push_back("--lazy-pages");
  return argv;
}

std::vector<std::string> criu_lazy_pages_argv(const std::string& criu,
                                              const CriuLazyPagesTarget& target) {
  std::vector<std::string> argv = {criu,
                                   "lazy-pages",
                                   "--page-server",
                                   "--address",
                                   target.address,
                                   "--port",
                                   std::to_string(target.port),
                                   "-D",
                                   target.images_dir,
                                   "-W",
                                   target.work_dir,
                                   "-o",
                                   target.log_file,
                                   "-v4"};
  if (target.status_fd >= 0) {
    argv.push_back("--status-fd");
    argv.push_back(std::to_string(target.status_fd));
  }
  return argv;
}

std::vector<std::string> criu_check_argv(const std::string& criu, const std::string& feature) {
  if (feature.empty()) return {criu, "check"};
  bool valid = feature.size() <= 32;
  for (char c : feature) {
    valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  }
  if (!valid) throw Error("'" + feature + "' is not a CRIU feature name");
  return {criu, "check", "--feature", feature};
}

std::vector<std::string> criu_version_argv(const std::string& criu) {
  return {criu, "--version"};
}

std::string parse_criu_version(const std::string& output) {
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.starts_with("Version:")) return trim(std::string_view(line).substr(8));
  }
  return {};
}

std::string criu_log_errors(const std::string& log, std::size_t max_lines) {
  std::deque<std::string> errors;
  std::deque<std::string> tail;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("Error (") != std::string::npos || line.find("BUG at") != std::string::npos) {
      errors.push_back(line);
      if (errors.size() > max_lines) errors.pop_front();
    }
    tail.push_back(line);
    if (tail.size() > 5) tail.pop_front();
  }
  const auto& picked = errors.empty() ? tail : errors;
  std::string out;
  for (const auto& l : picked) out += l + "\n";
  return out;
}

}  // namespace kcr::core
