#include "images/agent/checkpoint.hpp"

#include "core/checksum64.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "core/criu_options.hpp"
#include "core/error.hpp"
#include "core/fault.hpp"
#include "core/files.hpp"
#include "core/names.hpp"
#include "core/unique_fd.hpp"
#include "images/agent/check.hpp"
#include "images/agent/log.hpp"
#include "images/agent/process.hpp"
#include "images/agent/rootfs.hpp"
#include "images/agent/staging.hpp"
#include "images/agent/streamer.hpp"
#include "images/agent/userns_mounts.hpp"

namespace kcr::agent {

namespace {

constexpr std::chrono::milliseconds k_idle_poll{10};
constexpr std::chrono::seconds k_restore_timeout{600};
constexpr std::chrono::seconds k_exit_wait{3};
constexpr std::size_t k_restore_log_tail = 4096;
constexpr std::size_t k_log_max = 64 * 1024 * 1024;

void make_dirs(const std::string& path, mode_t mode = 0700) {
  for (std::size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    core::make_dir(path.substr(0, pos), mode);
  }
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) log_line("cannot remove " + path + ": " + ec.message());
}

// Removes a directory tree when it goes out of scope.
class TreeGuard {
 public:
  explicit TreeGuard(std::string path) : m_path(std::move(path)) {}
  ~TreeGuard() {
    if (!m_path.empty()) remove_tree(m_path);
  }
  TreeGuard(const TreeGuard&) = delete;
  TreeGuard& operator=(const TreeGuard&) = delete;
  void release() { m_path.clear(); }

 private:
  std::string m_path;
};

// A CRIU log or output file, best effort: what a failure report shows, never a failure itself.
std::string read_log(const std::string& path, std::size_t max = k_log_max) {
  return core::try_read_file(path, max).value_or("");
}

std::string tail(const std::string& text, std::size_t max) {
  return text.size() <= max ? text : text.substr(text.size() - max);
}

// Starts criu with argv, stdout and stderr to out_path; returns its pid.
pid_t spawn_criu(const std::vector<std::string>& argv, const std::string& out_path,
                 int status_fd = -1) {
  UniqueFd out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) throw_errno("open " + out_path);
  return spawn_with_output(argv, out.get(), status_fd);
}

// A pipe for CRIU's --status-fd: CRIU writes one byte when it is ready.
struct StatusPipe {
  UniqueFd read_end, write_end;
  StatusPipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) throw_errno("pipe");
    read_end.reset(fds[0]);
    write_end.reset(fds[1]);
  }
  // True once the byte arrived.
  bool ready() const {
    char byte = 0;
    return ::read(read_end.get(), &byte, 1) == 1;
  }
};

void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

bool valid_port(std::uint32_t port) {
  return port > 0 && port < 65536;
}

}  // namespace

std::string Checkpointer::staging_dir(const std::string& staging) const {
  if (!core::is_valid_name(staging)) {
    throw Error("staging name '" + staging + "' is not valid");
  }
  return m_workloads.state_dir() + "/staging/" + staging;
}

proto::CheckpointReply Checkpointer::checkpoint(std::uint64_t id,
                                                const proto::CheckpointRequest& request,
                                                const SendFn& send) {
  const Workload& workload = m_workloads.get(request.workload());
  if (!workload.running) {
    throw Error("workload '" + workload.name + "' is not running", "kcr ps VM shows its state");
  }
  if (m_criu.version.empty()) throw Error("criu is not available in the guest");
  const std::string name = workload.name;
  const pid_t pid = workload.pid;
  proto::Workload as_it_was;
  to_proto(workload, &as_it_was);

  // Pre-copy rounds live in STATE/predump/K until the final dump used them.
  const std::string rounds_dir = m_workloads.state_dir() + "/predump";
  const std::uint32_t round = request.pre_dump_round();
  const bool pre_dump = round > 0;
  if (round == 1) remove_tree(rounds_dir);
  std::string dir = pre_dump
                        ? rounds_dir + "/" + std::to_string(round)
                        : m_workloads.state_dir() + "/checkpoints/" +
                              std::to_string(boottime_ms()) + "-" + std::to_string(++m_counter);
  core::CriuDumpTarget target;
  target.pid = pid;
  target.images_dir = dir + "/images";
  target.work_dir = dir + "/work";
  target.pre_dump = pre_dump;
  if (in_own_user_namespace(pid)) target.external_mounts = core::k_userns_external_mounts;
  // Its root and the three /etc files kcr binds into it are declared external, each mapped
  // back at restore: CRIU cannot make them again itself.
  if (workload.root) target.external_mounts = rootfs_external_mounts();
  if (request.parent_round() > 0) {
    std::string parent = rounds_dir + "/" + std::to_string(request.parent_round()) + "/images";
    struct stat st {};
    if (request.parent_round() >= round && pre_dump) {
      throw Error("pre-dump round " + std::to_string(round) + " cannot have round " +
                  std::to_string(request.parent_round()) + " as its parent");
    }
    if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      throw Error(
          "pre-dump round " + std::to_string(request.parent_round()) + " is not in the guest",
          "start the pre-copy again from round 1");
    }
    target.track_mem = true;
    target.prev_images_dir =
        std::filesystem::path(parent).lexically_relative(target.images_dir).string();
  }
  const bool lazy = request.lazy_pages() && !pre_dump;
  if (lazy) {
    if (!valid_port(request.page_server_port())) throw Error("page server port is not valid");
    if (m_lazy_dump && !m_lazy_dump->exited) {
      throw Error("a lazy migration is already running in this VM",
                  "wait for it to finish; its page server ends once the destination has all");
    }
    if (m_lazy_dump) {
      // Finished but never collected (the host went away): forget it.
      remove_tree(m_lazy_dump->dir);
      m_lazy_dump.reset();
    }
    target.lazy_port = request.page_server_port();
    target.status_fd = k_passed_fd;
  }
  std::vector<std::string> argv = core::criu_dump_argv(criu_binary(), target, request.options());
  remove_tree(dir);
  make_dirs(target.images_dir);
  // The workload's cgroup limits travel with the images (limits.hpp).
  if (!pre_dump && workload.limits.any()) write_limits_file(target.images_dir, workload.limits);
  // A pre-dump round stays for the next round unless it fails; the final
  // dump drops its own directory and every round.
  TreeGuard guard(dir);
  TreeGuard rounds_guard(pre_dump ? std::string() : rounds_dir);
  core::make_dir(target.work_dir, 0700);

  // CRIU cannot seize the tasks of a frozen cgroup (an engine froze it first): thaw it.
  for (const auto& group : thaw_cgroup_of(pid)) {
    log_always("thawed the frozen cgroup " + group + " of workload '" + name + "' for CRIU");
  }
  Streamer streamer(id, checkpoint_chunk_bytes(request.chunk_bytes()), send);
  if (request.data_disk()) {
    if (!m_out_disk.present()) throw Error("this guest has no data disk for checkpoint images");
    streamer.use_disk(&m_out_disk);
  }
  auto start = Clock::now();
  std::optional<StatusPipe> status_pipe;
  if (lazy) status_pipe.emplace();
  pid_t criu =
      spawn_criu(argv, target.work_dir + "/criu.out", lazy ? status_pipe->write_end.get() : -1);
  if (lazy) status_pipe->write_end.reset();
  int status = 0;
  std::uint64_t dump_ms = 0;
  bool serving = false;  // a lazy dump wrote its images and now serves memory
  for (;;) {
    pid_t r = ::waitpid(criu, &status, WNOHANG);
    if (r == criu || (r < 0 && errno != EINTR)) {
      dump_ms = core::ms_since(start);
      break;
    }
    if (lazy && status_pipe->ready()) {
      dump_ms = core::ms_since(start);
      serving = true;
      break;
    }
    // Reap the workloads' inits meanwhile (by pid: waitpid(-1) could take criu's status).
    m_workloads.reap_known();
    if (request.transfer_after_dump()) {
      std::this_thread::sleep_for(k_idle_poll);
      continue;
    }
    streamer.scan_images(target.images_dir);
    if (streamer.pump_all() == 0) std::this_thread::sleep_for(k_idle_poll);
  }
  m_workloads.reap_known();
  streamer.writer_done();
  const bool ok = serving || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const std::string log_path = target.work_dir + "/" + target.log_file;

  if (!ok) {
    if (pre_dump) remove_tree(rounds_dir);
    send_whole_file(id, send, "dump.log", log_path);
    std::string errors = core::criu_log_errors(read_log(log_path));
    if (errors.empty()) errors = read_log(target.work_dir + "/criu.out", 4096);
    const Workload* after = m_workloads.find(name);
    bool alive = after && after->running && after->pid == pid && ::kill(pid, 0) == 0;
    log_line("criu dump: " + describe_status(status));
    throw Error(std::string("criu ") + (pre_dump ? "pre-dump" : "dump") + " failed:\n" + errors,
                alive ? "the workload is still running; dump.log has CRIU's full log"
                      : "the workload did not survive the failed dump");
  }

  // From here on the dump is complete and, without leave_running, the tree
  // is stopped: any failure must resume it, or the workload would be lost.
  try {
    // The root filesystem's changes, taken while the tree is stopped.
    if (!pre_dump && workload.root) {
      const Workload* still = m_workloads.find(name);
      if (!still || !still->root) throw Error("workload '" + name + "' went away during the dump");
      save_root(*still->root, target.images_dir);
    }
    streamer.scan_images(target.images_dir);
    streamer.pump_all();
    const char* stream_point = pre_dump  ? "pre-dump.agent-stream"
                               : serving ? "lazy.agent-stream"
                                         : "checkpoint.agent-stream";
    if (int err = core::agent_fault_point(stream_point)) {
      throw Error(std::string("the checkpoint's image stream failed: ") + std::strerror(err));
    }
    std::vector<proto::FileDone> files = streamer.finish();
    for (const auto& [file, path] : {std::pair<std::string, std::string>{"dump.log", log_path},
                                     {"stats-dump", target.work_dir + "/stats-dump"}}) {
      if (auto done = send_whole_file(id, send, file, path)) files.push_back(*done);
    }
    if (streamer.host_gone()) throw Error("the host went away during the checkpoint");

    proto::CheckpointReply reply;
    *reply.mutable_workload() = as_it_was;
    reply.set_still_running(pre_dump || request.options().leave_running());
    for (auto& file : files) *reply.add_files() = file;
    reply.set_dump_ms(dump_ms);
    reply.set_criu_version(m_criu.version);
    reply.set_kernel_release(m_criu.kernel_release);

    // Without leave_running CRIU left the tree stopped (--leave-stopped): the
    // host kills it once the checkpoint is stored, or resumes it.
    if (pre_dump) guard.release();
    if (serving) {
      // CRIU keeps serving memory: its directory stays until lazy_wait sees it exit.
      reply.set_lazy(true);
      m_lazy_dump = LazyDump{criu, dir, log_path};
      guard.release();
    }
    return reply;
  } catch (...) {
    if (serving) kill_and_reap(criu);  // CRIU resumes the workload when its server dies
    if (pre_dump) remove_tree(rounds_dir);
    if (!pre_dump && !request.options().leave_running()) {
      try {
        m_workloads.kill(name, SIGCONT, true);
      } catch (const std::exception&) {
      }
    }
    throw;
  }
}

void Checkpointer::put_file(const proto::PutFileRequest& request) {
  std::string dir = staging_dir(request.staging());
  if (!is_valid_checkpoint_path(request.path())) {
    throw Error("'" + request.path() + "' is not a valid checkpoint file path");
  }
  std::string path = dir + "/" + request.path();
  // Readable by all: a workload in a user namespace of its own is restored by a CRIU that
  // opens some images (tty-info.img) after it entered that namespace, as its root's host
  // uid. Nothing else in the guest sees the agent's /run: each workload has a private one.
  make_dirs(path.substr(0, path.rfind('/')), 0755);

  struct stat st {};
  std::uint64_t staged = 0;
  if (::stat(path.c_str(), &st) == 0) staged = static_cast<std::uint64_t>(st.st_size);
  if (request.offset() != staged && request.offset() != 0) {
    throw Error("offset " + std::to_string(request.offset()) + " of " + request.path() +
                " does not follow the " + std::to_string(staged) + " bytes staged");
  }
  const std::uint64_t length = request.on_disk() ? request.disk_length() : request.data().size();
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) == 0 &&
      !staging_fits(length, static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize,
                    static_cast<std::uint64_t>(vfs.f_blocks) * vfs.f_frsize)) {
    throw Error("not enough space in the guest to stage the checkpoint",
                "start the VM with more memory");
  }
  int flags = (request.on_disk() ? O_RDWR : O_WRONLY) | O_CREAT | O_CLOEXEC |
              (request.offset() == 0 ? O_TRUNC : 0);
  UniqueFd fd(::open(path.c_str(), flags, 0644));
  if (!fd) throw_errno("open " + path);
  if (request.offset() == 0) m_uploads[path] = Upload{};
  // What was staged is hashed as it arrives, while the upload is in step.
  auto hash = [&](const char* bytes, std::size_t size) {
    auto upload = m_uploads.find(path);
    if (upload == m_uploads.end()) return;
    if (upload->second.size == request.offset()) {
      upload->second.hash.update(bytes, size);
      upload->second.size += size;
    } else {
      m_uploads.erase(upload);  // out of step: hash the file at the end instead
    }
  };
  auto fail = [&](int err) {
    ::unlink(path.c_str());
    m_uploads.erase(path);
    errno = err;
    if (err == ENOSPC) throw Error("not enough space in the guest to stage the checkpoint");
    throw_errno("write " + path);
  };
  if (request.on_disk()) {
    if (int injected = core::agent_fault_point("restore.agent-put-file")) fail(injected);
    try {
      m_in_disk.read_into(fd.get(), request.offset(), length, request.disk_offset(), hash);
    } catch (const Error&) {
      ::unlink(path.c_str());
      m_uploads.erase(path);
      throw;
    }
  } else {
    const std::string& data = request.data();
    std::size_t done = 0;
    while (done < data.size()) {
      int injected = done == 0 ? core::agent_fault_point("restore.agent-put-file") : 0;
      if (injected) errno = injected;
      ssize_t n = injected ? -1
                           : ::pwrite(fd.get(), data.data() + done, data.size() - done,
                                      static_cast<off_t>(request.offset() + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail(errno);
      done += static_cast<std::size_t>(n);
    }
    hash(data.data(), data.size());
  }

  if (!request.last()) return;
  auto upload = m_uploads.find(path);
  bool streamed = upload != m_uploads.end() && upload->second.size == request.offset() + length;
  if (request.checksum64().empty()) {
    if (upload != m_uploads.end()) m_uploads.erase(upload);
    ::unlink(path.c_str());
    throw Error("the last chunk of " + request.path() + " carries no checksum64",
                "the host and the agent must come from one kcr build: rebuild the image");
  }
  std::string digest =
      streamed ? upload->second.hash.hex_digest() : core::checksum64_file_hex(path);
  std::string expected = request.checksum64();
  if (upload != m_uploads.end()) m_uploads.erase(upload);
  std::transform(expected.begin(), expected.end(), expected.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (digest != expected) {
    ::unlink(path.c_str());
    throw Error("digest of " + request.path() + " is " + digest + ", expected " + expected,
                "the file was damaged on its way; send it again");
  }
}

pid_t Checkpointer::start_lazy_pages(const proto::RestoreRequest& request,
                                     const std::string& images_dir, const std::string& work_dir) {
  const std::string& address = request.page_server_address();
  bool valid = !address.empty() && address.size() <= 15 &&
               std::all_of(address.begin(), address.end(),
                           [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  if (!valid || !valid_port(request.page_server_port())) {
    throw Error("page server address '" + address + "' or port is not valid");
  }
  if (int err = core::agent_fault_point("lazy.agent-page-server")) {
    throw Error(std::string("criu lazy-pages did not start: ") + std::strerror(err));
  }
  core::CriuLazyPagesTarget lazy;
  lazy.images_dir = images_dir;
  lazy.work_dir = work_dir;
  lazy.address = address;
  lazy.port = request.page_server_port();
  lazy.status_fd = k_passed_fd;
  StatusPipe status_pipe;
  pid_t pid = spawn_criu(core::criu_lazy_pages_argv(criu_binary(), lazy),
                         work_dir + "/lazy-pages.out", status_pipe.write_end.get());
  status_pipe.write_end.reset();
  auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    if (status_pipe.ready()) return pid;
    int status = 0;
    bool exited = ::waitpid(pid, &status, WNOHANG) == pid;
    if (exited || Clock::now() >= deadline) {
      if (!exited) kill_and_reap(pid);
      std::string errors = core::criu_log_errors(read_log(work_dir + "/" + lazy.log_file));
      throw Error("criu lazy-pages did not start:\n" + errors,
                  "the source's page server must be reachable over the migration link");
    }
    m_workloads.reap_known();
    std::this_thread::sleep_for(k_idle_poll);
  }
}

proto::LazyWaitReply Checkpointer::lazy_wait(const proto::LazyWaitRequest& request) {
  if (!m_lazy_dump) throw Error("no lazy migration is running in this VM");
  LazyDump& lazy = *m_lazy_dump;
  if (request.abort() && !lazy.exited) ::kill(lazy.pid, SIGKILL);
  auto wait = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(request.timeout_ms()),
                                                  std::chrono::seconds(60));
  auto deadline = Clock::now() + wait;
  while (!lazy.exited) {
    int status = 0;
    if (::waitpid(lazy.pid, &status, WNOHANG) == lazy.pid) {
      lazy.exited = true;
      lazy.status = status;
      break;
    }
    m_workloads.reap_known();
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(k_idle_poll);
  }
  proto::LazyWaitReply reply;
  reply.set_finished(lazy.exited);
  if (!lazy.exited) return reply;
  reply.set_ok(WIFEXITED(lazy.status) && WEXITSTATUS(lazy.status) == 0);
  if (!reply.ok()) {
    reply.set_errors(core::criu_log_errors(read_log(lazy.log_path)));
    log_line("lazy criu dump: " + describe_status(lazy.status));
  }
  remove_tree(lazy.dir);
  m_lazy_dump.reset();
  return reply;
}

bool Checkpointer::child_exited(pid_t pid, int status) {
  if (m_lazy_dump && !m_lazy_dump->exited && m_lazy_dump->pid == pid) {
    m_lazy_dump->exited = true;
    m_lazy_dump->status = status;
    return true;
  }
  for (auto it = m_lazy_daemons.begin(); it != m_lazy_daemons.end(); ++it) {
    if (it->pid != pid) continue;
    // The lazy-pages daemon has every page: the staged images are no longer needed.
    std::string staging = it->staging;
    m_lazy_daemons.erase(it);
    log_line("criu lazy-pages for " + staging + ": " + describe_status(status));
    drop_staging(staging);
    return true;
  }
  return false;
}

void Checkpointer::drop_staging(const std::string& staging) {
  for (auto it = m_lazy_daemons.begin(); it != m_lazy_daemons.end();) {
    if (it->staging == staging) {
      kill_and_reap(it->pid);
      it = m_lazy_daemons.erase(it);
    } else {
      ++it;
    }
  }
  std::string dir = staging_dir(staging);
  for (auto it = m_uploads.begin(); it != m_uploads.end();) {
    it = it->first.rfind(dir + "/", 0) == 0 ? m_uploads.erase(it) : std::next(it);
  }
  remove_tree(dir);
}

int Checkpointer::drop_abandoned_staging() {
  int dropped = 0;
  std::vector<std::string> names;
  if (DIR* d = ::opendir((m_workloads.state_dir() + "/staging").c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (core::is_valid_name(name)) names.push_back(name);
    }
    ::closedir(d);
  }
  for (const auto& name : names) {
    bool in_use = std::any_of(m_lazy_daemons.begin(), m_lazy_daemons.end(),
                              [&](const LazyDaemon& l) { return l.staging == name; });
    if (in_use) continue;
    drop_staging(name);
    ++dropped;
  }
  return dropped;
}

proto::RestoreReply Checkpointer::restore(std::uint64_t id, const proto::RestoreRequest& request,
                                          const SendFn& send) {
  std::string dir = staging_dir(request.staging());
  struct stat st {};
  if (::stat((dir + "/images").c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw Error("no staged checkpoint '" + request.staging() + "' in the guest",
                "upload its files first");
  }
  if (!core::is_valid_name(request.name())) {
    throw Error("workload name '" + request.name() + "' is not valid");
  }
  m_workloads.check_name_free(request.name());
  if (m_criu.version.empty()) throw Error("criu is not available in the guest");

  if (request.parent_rounds() > 999) throw Error("too many pre-dump rounds");
  // CRIU finds a pre-dump round's pages through a "parent" link in each
  // images directory: images -> parents/N -> ... -> parents/1.
  for (std::uint32_t k = request.parent_rounds(); k >= 1; --k) {
    std::string from = k == request.parent_rounds()
                           ? dir + "/images"
                           : dir + "/parents/" + std::to_string(k + 1) + "/images";
    std::string to = k == request.parent_rounds() ? "../parents/" + std::to_string(k) + "/images"
                                                  : "../../" + std::to_string(k) + "/images";
    std::string round = dir + "/parents/" + std::to_string(k) + "/images";
    if (::stat(round.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      throw Error("pre-dump round " + std::to_string(k) + " of the checkpoint is not staged",
                  "upload its files first");
    }
    std::string link = from + "/parent";
    ::unlink(link.c_str());
    if (::symlink(to.c_str(), link.c_str()) != 0) throw_errno("symlink " + link);
  }

  core::CriuRestoreTarget target;
  target.images_dir = dir + "/images";
  target.work_dir = dir + "/work";
  target.pid_file = target.work_dir + "/restore.pid";
  target.lazy_pages = request.lazy_pages();
  target.mntns_compat = has_user_namespace_image(target.images_dir);
  if (target.mntns_compat) {
    target.external_mounts = userns_external_sources();
    target.root = bare_root();
  }
  // CRIU 3.17 puts the tree back into its cgroup v2 group but sets none of its limits: the
  // group is made first, with them, and the tree restored into it under its new name.
  // A root filesystem of its own: made again over its base, with the changes it had.
  std::optional<SavedRoot> saved_root = read_rootfs_file(target.images_dir);
  std::optional<WorkloadRoot> root;
  RootGuard root_guard;
  if (saved_root) {
    if (target.mntns_compat) {
      throw Error(
          "a checkpoint with both a root filesystem and a user namespace of its own "
          "cannot be restored yet");
    }
    root =
        prepare_root(request.name(), saved_root->digest, saved_root->hostname, target.images_dir);
    root_guard.name = request.name();
    root->readonly = saved_root->readonly;  // for the next checkpoint
    root->readonly_binds = saved_root->readonly_binds;
    target.root = root->merged;
    for (const auto& [path, source] : rootfs_external_sources(*root)) {
      target.external_mounts.push_back({path, source});
    }
  }
  std::optional<Limits> limits = read_limits_file(target.images_dir);
  if (limits) {
    make_limited_cgroup(workload_cgroup(request.name()), *limits);
    target.cgroup_root = workload_cgroup(request.name());
  }
  std::vector<std::string> argv = core::criu_restore_argv(criu_binary(), target, request.options());
  core::make_dir(target.work_dir, 0700);
  ::unlink(target.pid_file.c_str());  // --pidfile refuses an existing file
  const std::string log_path = target.work_dir + "/" + target.log_file;

  if (int err = core::agent_fault_point("restore.agent-before-criu")) {
    throw Error(std::string("writing the restore's work files failed: ") + std::strerror(err),
                "the staged files stay until dropped");
  }
  auto start = Clock::now();
  // Post-copy: the lazy-pages daemon must be up (its socket in the work
  // directory) before the restore asks it for memory.
  pid_t daemon =
      request.lazy_pages() ? start_lazy_pages(request, target.images_dir, target.work_dir) : 0;
  CommandResult result = run_command(argv, k_restore_timeout);
  std::uint64_t restore_ms = core::ms_since(start);
  bool ok = !result.timed_out && WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0;
  pid_t pid = 0;
  if (ok) {
    pid = parse_pidfile(core::try_read_file(target.pid_file, 64).value_or(""));
    if (pid == 0 || ::kill(pid, 0) != 0) {
      ok = false;
      result.output += "\nkcr-agent: criu wrote no valid pidfile";
    } else if (saved_root) {
      try {
        make_readonly_again(pid, *saved_root);
      } catch (const Error&) {
        // Writable where it was read-only: not the workload that was checkpointed.
        ::kill(pid, SIGKILL);
        if (daemon > 0) kill_and_reap(daemon);
        throw;
      }
    }
    if (ok) {
      if (int err = core::agent_fault_point("restore.agent-after-criu")) {
        // As if the reply could not be made: the restored tree must not outlive the failure.
        ::kill(pid, SIGKILL);
        if (daemon > 0) kill_and_reap(daemon);
        throw Error(std::string("the restored workload could not be recorded: ") +
                    std::strerror(err));
      }
    }
  }
  if (!ok) {
    if (daemon > 0) kill_and_reap(daemon);
    if (limits) ::rmdir(("/sys/fs/cgroup" + target.cgroup_root).c_str());
    send_whole_file(id, send, "restore.log", log_path);
    std::string errors = core::criu_log_errors(read_log(log_path));
    if (errors.empty()) errors = tail(result.output, 2048);
    log_line("criu restore: " +
             (result.timed_out ? std::string("timed out") : describe_status(result.status)));
    throw Error("criu restore failed:\n" + errors,
                "restore.log has CRIU's full log; the staged files stay until dropped");
  }

  if (request.options().tcp_established() && request.original().pid() > 0) {
    // CRIU 3.17 removes the network-lock table of the new pid and leaves the one named after
    // the dumped pid, which keeps dropping the restored connections (guest.md).
    CommandResult nft = run_command(
        {"nft", "delete", "table", "inet", "CRIU-" + std::to_string(request.original().pid())},
        std::chrono::seconds(10));
    if (!WIFEXITED(nft.status) || WEXITSTATUS(nft.status) != 0) {
      if (nft.output.find("No such file") == std::string::npos) {
        log_line("nft delete table: " + core::trim(nft.output));
      }
    }
  }

  Workload workload;
  workload.name = request.name();
  workload.pid = pid;
  workload.argv.assign(request.original().argv().begin(), request.original().argv().end());
  workload.limits = limits.value_or(Limits{});
  workload.root = std::move(root);
  root_guard.name.clear();
  workload.started_unix_ms =
      request.original().started_unix_ms() ? request.original().started_unix_ms() : unix_ms();
  try {
    workload.run_dir = open_run_dir(pid);
  } catch (const Error& e) {
    log_line(std::string("restored workload has no log: ") + e.what());
  }
  const Workload& adopted = m_workloads.adopt(std::move(workload));

  proto::RestoreReply reply;
  to_proto(adopted, reply.mutable_workload());
  reply.set_restore_ms(restore_ms);
  reply.set_stats_restore(
      core::try_read_file(target.work_dir + "/stats-restore", 1024 * 1024).value_or(""));
  reply.set_restore_log(tail(read_log(log_path), k_restore_log_tail));
  if (daemon > 0) {
    // The daemon reads the staged images until it has every page.
    m_lazy_daemons.push_back({daemon, request.staging()});
  } else {
    drop_staging(request.staging());
  }
  return reply;
}

}  // namespace kcr::agent
