#include "images/agent/rootfs.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.hpp"
#include "core/files.hpp"
#include "images/agent/log.hpp"
#include "images/agent/process.hpp"
#include "images/agent/staging.hpp"

namespace kcr::agent {

namespace {

using core::make_dir;

constexpr std::chrono::minutes k_tar_timeout{10};
constexpr std::size_t k_etc_file_max = 64 * 1024;
// The three files kcr writes for each workload and bind-mounts over its root's own (as CRI
// does): their names in /etc, and in a checkpoint's images directory.
constexpr const char* k_etc_files[] = {"hosts", "hostname", "resolv.conf"};
std::string etc_image_name(const char* file) {
  return std::string("kcr-etc-") + file;
}

// Runs tar with ARGS and fails with its output unless it exits 0.
void run_tar(const std::vector<std::string>& args, const std::string& what) {
  std::vector<std::string> argv = {"tar"};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = run_command(argv, k_tar_timeout);
  if (r.timed_out || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
    throw Error(what + " failed (" + (r.timed_out ? "timed out" : describe_status(r.status)) +
                "): " + core::trim(r.output.substr(0, 2048)));
  }
}

// Forks tar extracting its stdin (READ_FD) into DIR, its output into LOG.
pid_t spawn_extract(int read_fd, const std::string& dir, const std::string& log) {
  UniqueFd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!log_fd) throw_errno("open " + log);
  // The host writes names that are not UTF-8 as raw bytes (hdrcharset=BINARY), a keyword GNU
  // tar extracts right but warns about.
  std::vector<std::string> args = {"tar",
                                   "--extract",
                                   "--file=-",
                                   "--directory",
                                   dir,
                                   "--numeric-owner",
                                   "--same-owner",
                                   "--same-permissions",
                                   "--warning=no-unknown-keyword"};
  CStringArray argv(args);
  CStringArray env(default_env());
  pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    reset_signals_in_child();
    ::dup2(read_fd, STDIN_FILENO);
    ::dup2(log_fd.get(), STDOUT_FILENO);
    ::dup2(log_fd.get(), STDERR_FILENO);
    ::close_range(3, ~0U, 0);
    exec_or_die(argv.data(), env.data());
  }
  return pid;
}

// The base's directory for DIGEST (checked).
std::string base_dir(const std::string& digest) {
  if (!is_base_digest(digest)) throw Error("'" + digest + "' is not a root filesystem digest");
  return std::string(k_bases_dir) + "/" + digest.substr(7);
}

// The fd of NAME in PARENT as a directory of its own, made (0755) when missing: never through
// a link (one in its place is removed), never a mount over a file of the root filesystem's.
UniqueFd ensure_dir(int parent, const char* name, const std::string& shown) {
  struct stat st {};
  if (::fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      if (::unlinkat(parent, name, 0) != 0) throw_errno("remove the link " + shown);
    } else if (!S_ISDIR(st.st_mode)) {
      throw Error("the root filesystem has a file where the directory " + shown + " must be",
                  "remove it from the root filesystem");
    }
  }
  if (::mkdirat(parent, name, 0755) != 0 && errno != EEXIST) throw_errno("mkdir " + shown);
  int fd = ::openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + shown);
  return UniqueFd(fd);
}

// The fd of the regular file NAME in PARENT, made empty when missing; a link in its place is
// replaced by a file (/etc/resolv.conf is often one, to a path of the host's).
UniqueFd ensure_file(int parent, const char* name, const std::string& shown) {
  struct stat st {};
  if (::fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode)) {
      if (::unlinkat(parent, name, 0) != 0) throw_errno("remove the link " + shown);
    } else if (!S_ISREG(st.st_mode)) {
      throw Error("the root filesystem has something else than a file at " + shown,
                  "remove it from the root filesystem");
    }
  }
  int made = ::openat(parent, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (made < 0) throw_errno("create " + shown);
  ::close(made);
  int fd = ::openat(parent, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + shown);
  return UniqueFd(fd);
}

// The directory at the absolute PATH inside TOP, each missing component made (0755); no
// component may be a link or anything but a directory.
UniqueFd open_dir_beneath(int top, const std::string& path) {
  UniqueFd dir(::fcntl(top, F_DUPFD_CLOEXEC, 3));
  if (!dir) throw_errno("dup");
  std::size_t at = 1;
  while (at < path.size()) {
    std::size_t end = path.find('/', at);
    if (end == std::string::npos) end = path.size();
    const std::string name = path.substr(at, end - at);
    const std::string shown = path.substr(0, end);
    struct stat st {};
    if (::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
      throw Error("the mount point " + path + " passes through " + shown +
                      ", which is not a directory in the root filesystem",
                  "mount it elsewhere, or make " + shown + " a directory");
    }
    if (::mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
      throw_errno("mkdir " + shown);
    }
    int next = ::openat(dir.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) throw_errno("open " + shown);
    dir = UniqueFd(next);
    at = end + 1;
  }
  return dir;
}

std::string fd_path(const UniqueFd& fd) {
  return "/proc/self/fd/" + std::to_string(fd.get());
}

void mount_on(const UniqueFd& at, const char* source, const char* fstype, unsigned long flags,
              const char* data, const std::string& shown) {
  if (::mount(source, fd_path(at).c_str(), fstype, flags, data) != 0) {
    throw_errno("mount " + std::string(fstype ? fstype : source) + " on " + shown);
  }
}

// Reopens NAME in PARENT after a mount on it: the fd then names the mount's root.
UniqueFd reopen(int parent, const char* name, const std::string& shown) {
  int fd = ::openat(parent, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + shown);
  return UniqueFd(fd);
}

void copy_file(const std::string& from, int to_dir, const char* name, mode_t mode) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) throw_errno("open " + from);
  UniqueFd out(::openat(to_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!out) throw_errno(std::string("create ") + name);
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("read " + from);
    if (n == 0) break;
    if (!core::write_all(out.get(), std::string_view(buf, static_cast<std::size_t>(n)))) {
      throw_errno(std::string("write ") + name);
    }
  }
  ::fchmod(out.get(), mode);
}

// The minimal /dev a container has: a tmpfs with the usual character devices, its own devpts
// and /dev/shm (bound from SHM, the workload's /run/kcr/shm, so CRIU archives one tmpfs).
void make_dev(int root, const std::string& shm) {
  UniqueFd dev = ensure_dir(root, "dev", "/dev");
  mount_on(dev, "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k", "/dev");
  dev = reopen(root, "dev", "/dev");
  struct Node {
    const char* name;
    unsigned major, minor;
  };
  for (Node n : {Node{"null", 1, 3}, Node{"zero", 1, 5}, Node{"full", 1, 7}, Node{"random", 1, 8},
                 Node{"urandom", 1, 9}, Node{"tty", 5, 0}}) {
    if (::mknodat(dev.get(), n.name, S_IFCHR | 0666, makedev(n.major, n.minor)) != 0 ||
        ::fchmodat(dev.get(), n.name, 0666, 0) != 0) {
      throw_errno(std::string("mknod /dev/") + n.name);
    }
  }
  for (auto [name, target] : {std::pair{"fd", "/proc/self/fd"},
                              {"stdin", "/proc/self/fd/0"},
                              {"stdout", "/proc/self/fd/1"},
                              {"stderr", "/proc/self/fd/2"},
                              {"ptmx", "pts/ptmx"}}) {
    if (::symlinkat(target, dev.get(), name) != 0) throw_errno(std::string("symlink /dev/") + name);
  }
  UniqueFd pts = ensure_dir(dev.get(), "pts", "/dev/pts");
  mount_on(pts, "devpts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620",
           "/dev/pts");
  UniqueFd shm_at = ensure_dir(dev.get(), "shm", "/dev/shm");
  if (::mount(shm.c_str(), fd_path(shm_at).c_str(), nullptr, MS_BIND, nullptr) != 0) {
    throw_errno("bind-mount /dev/shm");
  }
}

}  // namespace

MountOptions parse_mount_options(const google::protobuf::RepeatedPtrField<std::string>& options) {
  static const std::pair<const char*, unsigned long> k_flags[] = {
      {"ro", MS_RDONLY},         {"nosuid", MS_NOSUID},           {"nodev", MS_NODEV},
      {"noexec", MS_NOEXEC},     {"noatime", MS_NOATIME},         {"nodiratime", MS_NODIRATIME},
      {"relatime", MS_RELATIME}, {"strictatime", MS_STRICTATIME}, {"sync", MS_SYNCHRONOUS}};
  static const char* const k_ignored[] = {"rw", "suid", "dev", "exec", "async", "atime"};
  MountOptions out;
  for (const auto& option : options) {
    bool known = false;
    for (auto [word, flag] : k_flags) {
      if (option == word) {
        out.flags |= flag;
        known = true;
      }
    }
    for (const char* word : k_ignored) known = known || option == word;
    if (known) continue;
    if (option == "bind" || option == "rbind" || option.find("private") != std::string::npos ||
        option.find("shared") != std::string::npos || option.find("slave") != std::string::npos) {
      throw Error("mount option '" + option + "' is not one kcr honours here",
                  "kcr makes every mount of a workload private itself");
    }
    if (option.empty() || option.find(',') != std::string::npos) {
      throw Error("mount option '" + option + "' is not valid");
    }
    out.data += (out.data.empty() ? "" : ",") + option;
  }
  return out;
}

namespace {

// An absolute path without empty, "." or ".." components.
bool is_clean_path(const std::string& p) {
  if (p.empty() || p[0] != '/' || p.size() >= 4096 || p.find('\0') != std::string::npos) {
    return false;
  }
  if (p == "/") return true;
  if (p.back() == '/' || p.find("//") != std::string::npos) return false;
  const std::string dotted = p + "/";
  return dotted.find("/./") == std::string::npos && dotted.find("/../") == std::string::npos;
}

// Binds SOURCE (resolved inside TOP: its links cannot leave the root) onto the absolute
// DESTINATION inside TOP, a directory or file like the source, read-only with "ro".
void bind_inside(int top, const proto::RunMount& m, const MountOptions& o) {
  struct open_how how {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd src(
      static_cast<int>(::syscall(SYS_openat2, top, m.source().c_str() + 1, &how, sizeof how)));
  if (!src) throw_errno("open the bind mount source " + m.source());
  struct stat st {};
  if (::fstat(src.get(), &st) != 0) throw_errno("stat " + m.source());
  const std::string& d = m.destination();
  // The destination, made like the source when missing; opened again after the mount, the
  // same path names the mount.
  auto open_destination = [&] {
    if (S_ISDIR(st.st_mode)) return open_dir_beneath(top, d);
    const std::string parent = d.substr(0, d.rfind('/'));
    UniqueFd dir = open_dir_beneath(top, parent.empty() ? "/" : parent);
    return ensure_file(dir.get(), d.substr(d.rfind('/') + 1).c_str(), d);
  };
  UniqueFd dst = open_destination();
  if (::mount(fd_path(src).c_str(), fd_path(dst).c_str(), nullptr, MS_BIND | MS_REC, nullptr) !=
      0) {
    throw_errno("bind-mount " + m.source() + " on " + d);
  }
  if (o.flags & MS_RDONLY) {
    UniqueFd mounted = open_destination();
    if (::mount(nullptr, fd_path(mounted).c_str(), nullptr, MS_REMOUNT | MS_BIND | o.flags,
                nullptr) != 0) {
      throw_errno("make the bind mount at " + d + " read-only");
    }
  }
}

}  // namespace

void take_mounts(const proto::RunRequest& request, WorkloadRoot& root) {
  root.readonly = request.readonly_root();
  for (const auto& m : request.mounts()) {
    const std::string& d = m.destination();
    if (d == "/" || !is_clean_path(d)) {
      throw Error("mount destination '" + d + "' is not a clean absolute path");
    }
    const std::string& t = m.type();
    if (t != "tmpfs" && t != "proc" && t != "sysfs" && t != "devpts" && t != "mqueue" &&
        t != "bind") {
      throw Error("mount of type '" + t + "' at " + d + " is not one kcr makes",
                  "kcr makes tmpfs, proc, sysfs, devpts, mqueue and bind mounts");
    }
    if (t == "bind" && (!is_clean_path(m.source()) || m.source() == "/")) {
      throw Error("the bind mount at " + d + " has no clean source inside the root filesystem");
    }
    if (t == "bind" && (parse_mount_options(m.options()).flags & MS_RDONLY)) {
      root.readonly_binds.push_back(d);
    }
    root.mounts.push_back(m);
  }
}

bool is_base_digest(std::string_view digest) {
  if (digest.size() != 71 || digest.substr(0, 7) != "sha256:") return false;
  for (char c : digest.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void BaseUploads::abort() {
  if (!m_upload) return;
  m_upload->pipe.reset();
  if (m_upload->tar > 0) {
    ::kill(m_upload->tar, SIGKILL);
    while (::waitpid(m_upload->tar, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(m_upload->partial, ec);
  ::unlink(m_upload->log.c_str());
  m_upload.reset();
}

proto::PutBaseReply BaseUploads::put(const proto::PutBaseRequest& request) {
  const std::string dir = base_dir(request.digest());
  proto::PutBaseReply reply;
  // Offset 0 starts an upload, unless it is the first chunk of the one just started.
  const bool fresh = request.offset() == 0 &&
                     !(m_upload && m_upload->digest == request.digest() && m_upload->offset == 0);
  if (fresh) {
    abort();
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      reply.set_present(true);
      return reply;
    }
    make_dir(k_bases_dir, 0755);
    struct statvfs vfs {};
    if (::statvfs(k_bases_dir, &vfs) == 0 &&
        !staging_fits(request.total_bytes(),
                      static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize,
                      static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize)) {
      throw Error("the guest has not enough memory for the root filesystem (" +
                      std::to_string(request.total_bytes() >> 20) + " MiB)",
                  "start the VM with more memory: kcr vm start NAME --memory 2G");
    }
    Upload up;
    up.digest = request.digest();
    up.partial = std::string(k_bases_dir) + "/.partial-" + request.digest().substr(7);
    up.log = up.partial + ".log";
    up.total = request.total_bytes();
    std::error_code ec;
    std::filesystem::remove_all(up.partial, ec);
    make_dir(up.partial, 0755);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe");
    UniqueFd read_end(fds[0]);
    up.pipe = UniqueFd(fds[1]);
    m_upload = std::move(up);
    try {
      m_upload->tar = spawn_extract(read_end.get(), m_upload->partial, m_upload->log);
    } catch (...) {
      abort();
      throw;
    }
  } else if (!m_upload || m_upload->digest != request.digest() ||
             m_upload->offset != request.offset()) {
    abort();
    throw Error("a chunk of the root filesystem at offset " + std::to_string(request.offset()) +
                    " does not follow the upload in progress",
                "start the upload again from offset 0");
  }

  try {
    Upload& up = *m_upload;
    const std::string& data = request.data();
    if (data.size() > up.total - up.offset) {
      throw Error("the root filesystem upload is longer than the " + std::to_string(up.total) +
                  " bytes it announced");
    }
    if (!data.empty() && !core::write_all(up.pipe.get(), data)) {
      throw Error("extracting the root filesystem failed: " +
                  core::trim(core::try_read_file(up.log, 2048).value_or("")));
    }
    up.sum.update(data);
    up.offset += data.size();
    if (!request.last()) return reply;

    up.pipe.reset();
    int status = wait_for_child(up.tar, Clock::now() + k_tar_timeout);
    up.tar = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      throw Error("extracting the root filesystem failed (" + describe_status(status) +
                  "): " + core::trim(core::try_read_file(up.log, 2048).value_or("")));
    }
    if (up.offset != up.total || up.sum.hex_digest() != request.checksum64()) {
      throw Error("the root filesystem arrived damaged in the guest (" + std::to_string(up.offset) +
                      " of " + std::to_string(up.total) + " bytes, checksum " +
                      up.sum.hex_digest() + " where the host sent " + request.checksum64() + ")",
                  "run the command again");
    }
    if (::rename(up.partial.c_str(), dir.c_str()) != 0) throw_errno("rename " + up.partial);
    ::unlink(up.log.c_str());
    m_upload.reset();
    reply.set_present(true);
    return reply;
  } catch (...) {
    abort();
    throw;
  }
}

WorkloadRoot prepare_root(const std::string& name, const std::string& digest,
                          const std::string& hostname, const std::string& from_images) {
  const std::string base = base_dir(digest);
  struct stat st {};
  if (::stat(base.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw Error("the root filesystem " + digest + " is not in this VM",
                "kcr puts it there before a run or restore; run the command again");
  }
  WorkloadRoot root;
  root.name = name;
  root.digest = digest;
  root.hostname = hostname;
  root.dir = std::string(k_roots_dir) + "/" + name;
  root.upper = root.dir + "/upper";
  root.merged = root.dir + "/merged";
  root.etc = root.dir + "/etc";
  remove_root(name);
  make_dir(k_roots_dir, 0700);
  try {
    make_dir(root.dir, 0700);
    for (const auto& d : {root.upper, root.dir + "/work", root.merged, root.etc}) {
      make_dir(d, 0755);
    }
    if (!from_images.empty()) {
      // The upper layer as it was, whiteouts and opaque directories included.
      run_tar({"--extract", "--file", from_images + "/" + k_rootfs_diff, "--directory", root.upper,
               "--numeric-owner", "--same-owner", "--same-permissions", "--xattrs",
               "--xattrs-include=trusted.overlay.opaque"},
              "extracting the workload's root filesystem changes");
      for (const char* f : k_etc_files) {
        auto text = core::try_read_file(from_images + "/" + etc_image_name(f), k_etc_file_max);
        if (!text) throw Error("the checkpoint has no " + etc_image_name(f));
        core::write_file_atomic(root.etc + "/" + f, *text, 0644);
      }
    } else {
      core::write_file_atomic(root.etc + "/hostname", hostname + "\n", 0644);
      core::write_file_atomic(root.etc + "/hosts",
                              "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                              "127.0.1.1\t" +
                                  hostname + "\n",
                              0644);
      core::write_file_atomic(root.etc + "/resolv.conf",
                              core::try_read_file("/etc/resolv.conf", k_etc_file_max).value_or(""),
                              0644);
    }
    // redirect_dir, index and metacopy off: the upper layer then says everything by itself
    // (no file handles or redirects into the base), so a tar of it is the workload's changes.
    const std::string options = "lowerdir=" + base + ",upperdir=" + root.upper +
                                ",workdir=" + root.dir + "/work" +
                                ",redirect_dir=off,index=off,metacopy=off";
    if (::mount("overlay", root.merged.c_str(), "overlay", MS_NOSUID, options.c_str()) != 0) {
      throw_errno("mount the overlay of workload '" + name + "'");
    }
  } catch (...) {
    remove_root(name);
    throw;
  }
  return root;
}

void remove_root(const std::string& name) {
  const std::string dir = std::string(k_roots_dir) + "/" + name;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return;
  ::umount2((dir + "/merged").c_str(), MNT_DETACH);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) log_line("cannot remove " + dir + ": " + ec.message());
}

void enter_root(const WorkloadRoot& root) {
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    throw_errno("make / private");
  }
  UniqueFd top(::open(root.merged.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!top) throw_errno("open " + root.merged);

  // /run: a tmpfs of the workload's own (its log, kcr's state, /dev/shm's content, the init).
  UniqueFd run = ensure_dir(top.get(), "run", "/run");
  mount_on(run, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755", "/run");
  run = reopen(top.get(), "run", "/run");
  UniqueFd kcr = ensure_dir(run.get(), "kcr", "/run/kcr");
  UniqueFd shm = ensure_dir(kcr.get(), "shm", "/run/kcr/shm");
  if (::fchmodat(kcr.get(), "shm", 01777, 0) != 0) throw_errno("chmod /run/kcr/shm");
  UniqueFd kcr_dir(::openat(run.get(), "kcr", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!kcr_dir) throw_errno("open /run/kcr");
  copy_file(k_guest_init_binary, kcr_dir.get(), "init", 0755);

  make_dev(top.get(), fd_path(shm));
  UniqueFd proc = ensure_dir(top.get(), "proc", "/proc");
  mount_on(proc, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, "/proc");
  UniqueFd sys = ensure_dir(top.get(), "sys", "/sys");
  mount_on(sys, "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, "/sys");
  // The cgroup hierarchy, read-only, as a container sees it (its limits are readable).
  sys = reopen(top.get(), "sys", "/sys");
  UniqueFd fs_dir(::openat(sys.get(), "fs", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  UniqueFd cgroup(
      fs_dir ? ::openat(fs_dir.get(), "cgroup", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
             : -1);
  if (!cgroup) throw_errno("open /sys/fs/cgroup");
  mount_on(cgroup, "cgroup2", "cgroup2", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr,
           "/sys/fs/cgroup");

  UniqueFd etc = ensure_dir(top.get(), "etc", "/etc");
  for (const char* f : k_etc_files) {
    const std::string shown = std::string("/etc/") + f;
    UniqueFd at = ensure_file(etc.get(), f, shown);
    const std::string from = root.etc + "/" + f;
    if (::mount(from.c_str(), fd_path(at).c_str(), nullptr, MS_BIND, nullptr) != 0) {
      throw_errno("bind-mount " + shown);
    }
  }

  // An OCI bundle's mounts: the ones kcr makes anyway are there already.
  for (const auto& m : root.mounts) {
    const std::string& d = m.destination();
    if ((d == "/proc" && m.type() == "proc") || (d == "/sys" && m.type() == "sysfs") ||
        (d == "/dev/pts" && m.type() == "devpts") ||
        ((d == "/dev" || d == "/dev/shm") && m.type() == "tmpfs")) {
      continue;
    }
    MountOptions o = parse_mount_options(m.options());
    if (m.type() == "bind") {
      bind_inside(top.get(), m, o);
      continue;
    }
    if (m.type() == "sysfs") o.flags |= MS_RDONLY;  // the guest's /sys is not the workload's
    UniqueFd at = open_dir_beneath(top.get(), d);
    mount_on(at, m.type().c_str(), m.type().c_str(), o.flags,
             o.data.empty() ? nullptr : o.data.c_str(), d);
  }
  // Read-only to the workload: this mount only, the overlay under it stays writable (CRIU's
  // restore writes into the root it is given).
  if (root.readonly && ::mount(nullptr, fd_path(top).c_str(), nullptr,
                               MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, nullptr) != 0) {
    throw_errno("make the root read-only");
  }
  if (::fchdir(top.get()) != 0) throw_errno("chdir " + root.merged);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) throw_errno("pivot_root into " + root.merged);
  if (::umount2(".", MNT_DETACH) != 0) throw_errno("detach the guest's root");
  if (::chdir("/") != 0) throw_errno("chdir /");
}

const std::vector<std::string>& rootfs_external_mounts() {
  static const std::vector<std::string> mounts = {"/", "/etc/hosts", "/etc/hostname",
                                                  "/etc/resolv.conf"};
  return mounts;
}

std::vector<std::pair<std::string, std::string>> rootfs_external_sources(const WorkloadRoot& root) {
  std::vector<std::pair<std::string, std::string>> out = {{"/", root.merged}};
  for (const char* f : k_etc_files) out.emplace_back(std::string("/etc/") + f, root.etc + "/" + f);
  return out;
}

void save_root(const WorkloadRoot& root, const std::string& images_dir) {
  std::string text = "digest " + root.digest + "\nhostname " + root.hostname + "\nreadonly " +
                     (root.readonly ? "1" : "0") + "\n";
  for (const auto& b : root.readonly_binds) text += "readonly-bind " + b + "\n";
  core::write_file_atomic(images_dir + "/" + k_rootfs_file, text, 0644);
  for (const char* f : k_etc_files) {
    auto text = core::try_read_file(root.etc + "/" + f, k_etc_file_max);
    if (!text) throw Error(std::string("cannot read the workload's /etc/") + f);
    core::write_file_atomic(images_dir + "/" + etc_image_name(f), *text, 0644);
  }
  run_tar({"--create", "--file", images_dir + "/" + k_rootfs_diff, "--directory", root.upper,
           "--numeric-owner", "--xattrs", "--xattrs-include=trusted.overlay.opaque", "."},
          "archiving the workload's root filesystem changes");
}

std::optional<SavedRoot> read_rootfs_file(const std::string& images_dir) {
  auto text = core::try_read_file(images_dir + "/" + k_rootfs_file, 4096);
  if (!text) return std::nullopt;
  SavedRoot saved;
  std::size_t at = 0;
  while (at < text->size()) {
    std::size_t end = text->find('\n', at);
    if (end == std::string::npos) end = text->size();
    std::string_view line(text->data() + at, end - at);
    if (line.starts_with("digest ")) saved.digest = std::string(line.substr(7));
    if (line.starts_with("hostname ")) saved.hostname = std::string(line.substr(9));
    if (line == "readonly 1") saved.readonly = true;
    if (line.starts_with("readonly-bind ")) {
      saved.readonly_binds.emplace_back(line.substr(14));
      if (!is_clean_path(saved.readonly_binds.back()) || saved.readonly_binds.size() > 256) {
        throw Error(std::string("the checkpoint's ") + k_rootfs_file + " is malformed");
      }
    }
    at = end + 1;
  }
  if (!is_base_digest(saved.digest) || saved.hostname.empty() || saved.hostname.size() > 64) {
    throw Error(std::string("the checkpoint's ") + k_rootfs_file + " is malformed");
  }
  return saved;
}

void make_readonly_again(pid_t pid, const SavedRoot& saved) {
  if (!saved.readonly && saved.readonly_binds.empty()) return;
  const std::string ns = "/proc/" + std::to_string(pid) + "/ns/mnt";
  UniqueFd fd(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("open " + ns);
  pid_t child = ::fork();
  if (child < 0) throw_errno("fork");
  if (child == 0) {
    bool ok = ::setns(fd.get(), CLONE_NEWNS) == 0 && ::chdir("/") == 0;
    std::vector<std::string> paths = saved.readonly_binds;
    if (saved.readonly) paths.insert(paths.begin(), "/");
    for (const auto& p : paths) {
      // The flags the mount has beside read-only stay (a bind remount replaces them all).
      struct statvfs vfs {};
      unsigned long keep = 0;
      if (ok && ::statvfs(p.c_str(), &vfs) == 0) {
        if (vfs.f_flag & ST_NOSUID) keep |= MS_NOSUID;
        if (vfs.f_flag & ST_NODEV) keep |= MS_NODEV;
        if (vfs.f_flag & ST_NOEXEC) keep |= MS_NOEXEC;
      }
      ok = ok && ::mount(nullptr, p.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | keep,
                         nullptr) == 0;
    }
    _exit(ok ? 0 : 1);
  }
  int status = wait_for_child(child, Clock::now() + std::chrono::seconds(10));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw Error("the restored workload's root or bind mounts could not be made read-only again");
  }
}

}  // namespace kcr::agent
