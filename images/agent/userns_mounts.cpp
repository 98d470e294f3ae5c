#include "images/agent/userns_mounts.hpp"

#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <map>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::agent {

namespace {

// Mounts a FSTYPE of its own on AT unless one is there (another filesystem than its parent).
void mount_once(const std::string& fstype, const std::string& at, const std::string& parent) {
  core::make_dir(at, 0755);
  struct stat here {
  }, above{};
  if (::stat(at.c_str(), &here) != 0 || ::stat(parent.c_str(), &above) != 0) {
    throw_errno("stat " + at);
  }
  if (here.st_dev == above.st_dev &&
      ::mount(fstype.c_str(), at.c_str(), fstype.c_str(), 0, nullptr) != 0) {
    throw_errno("mount " + fstype + " on " + at);
  }
}

}  // namespace

bool in_own_user_namespace(pid_t pid) {
  std::error_code a, b;
  auto own = std::filesystem::read_symlink("/proc/self/ns/user", a);
  auto its = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/user", b);
  return !a && !b && own != its;
}

bool has_user_namespace_image(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.starts_with("userns-") && n.ends_with(".img")) return true;
  }
  return false;
}

std::vector<core::CriuRestoreTarget::ExternalMount> userns_external_sources() {
  // The filesystem of its own each needs; the guest's own where it is absent.
  static const std::map<std::string, std::string> fstype = {
      {"/sys", "sysfs"}, {"/sys/fs/cgroup", "cgroup2"}, {"/dev", "devtmpfs"}};
  const std::string ext = "/run/kcr-ext";
  core::make_dir(ext, 0755);
  std::vector<core::CriuRestoreTarget::ExternalMount> out;
  for (const auto& path : core::k_userns_external_mounts) {
    auto it = fstype.find(path);
    if (it == fstype.end()) {
      out.push_back({path, path});
      continue;
    }
    const std::string at = ext + "/" + core::external_mount_key(path);
    mount_once(it->second, at, ext);
    out.push_back({path, at});
  }
  return out;
}

std::string bare_root() {
  const std::string at = "/run/kcr-root";
  core::make_dir(at, 0755);
  struct stat here {
  }, root{};
  if (::stat(at.c_str(), &here) != 0 || ::stat("/", &root) != 0) throw_errno("stat " + at);
  bool bound = here.st_dev == root.st_dev && here.st_ino == root.st_ino;
  if (!bound && ::mount("/", at.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    throw_errno("bind / on " + at);
  }
  return at;
}

}  // namespace kcr::agent
