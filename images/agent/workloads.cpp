#include "images/agent/workloads.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <initializer_list>
#include <vector>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.hpp"
#include "core/id_mapping.hpp"
#include "core/names.hpp"
#include "core/unique_fd.hpp"
#include "images/agent/process.hpp"

namespace kcr::agent {

namespace {

constexpr std::uint32_t k_max_log_read = 1024 * 1024;
constexpr auto k_start_timeout = std::chrono::seconds(10);

// Moves FDS (in order) to 3, 4, ... and closes every other fd: nothing of the agent's may
// stay open in a workload, the port above all. FDS become close-on-exec but the first.
void keep_only(std::initializer_list<int*> fds) {
  int next = k_init_error_fd;
  std::vector<int> high;
  for (int* fd : fds) high.push_back(::fcntl(*fd, F_DUPFD_CLOEXEC, 100));
  ::close_range(0, 99, 0);
  for (std::size_t i = 0; i < high.size(); ++i) {
    ::dup3(high[i], next, O_CLOEXEC);
    *fds.begin()[i] = next++;
  }
  ::close_range(static_cast<unsigned>(next), ~0U, 0);
}

// The workload's mounts, in a new mount namespace: the agent's /run (its state, checkpoint
// staging) and the guest's /tmp and /dev/shm are tmpfs mounts that CRIU would archive whole
// (and find changing under it): detach them and give the workload one fresh private tmpfs on
// /run, with /tmp and /dev/shm bind-mounted from it. Everything the workload writes there
// travels in its checkpoint, and CRIU archives one filesystem instead of three (each tar costs
// ~0.1 s under TCG).
void private_mounts(int error_fd) {
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    fail_setup(error_fd, "make / private");
  }
  for (const char* path : {"/run", "/tmp", "/dev/shm"}) {
    if (::umount2(path, MNT_DETACH) != 0 && errno != EINVAL) {
      fail_setup(error_fd, std::string("umount ") + path);
    }
  }
  if (::mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") != 0) {
    fail_setup(error_fd, "mount /run");
  }
  for (const char* dir : {"/run/kcr", "/run/kcr/tmp", "/run/kcr/shm"}) {
    if (::mkdir(dir, 0755) != 0) fail_setup(error_fd, std::string("mkdir ") + dir);
  }
  ::chmod("/run/kcr/tmp", 01777);
  ::chmod("/run/kcr/shm", 01777);
  for (auto [from, to] :
       {std::pair{"/run/kcr/tmp", "/tmp"}, std::pair{"/run/kcr/shm", "/dev/shm"}}) {
    if (::mount(from, to, nullptr, MS_BIND, nullptr) != 0) {
      fail_setup(error_fd, std::string("bind-mount ") + to);
    }
  }
}

// PID 1 of the workload's new PID namespace, its mounts made: mounts /proc, names the host,
// opens stdio, then re-executes the agent binary (self, found again inside the new mount
// namespace: CRIU cannot dump mappings of a file from a mount outside it) as the workload's
// init, which starts the command (workload_init_main).
// With a root filesystem of its own, /proc is mounted already and the init is kcr-init in its
// /run (SELF).
[[noreturn]] void exec_init(const std::string& hostname, const std::string& cwd, const char* self,
                            char** init_argv, char** envp, int error_fd, bool proc_mounted = false,
                            const proto::RunUser* user = nullptr) {
  if (!proc_mounted &&
      ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    fail_setup(error_fd, "mount /proc");
  }
  if (::sethostname(hostname.data(), hostname.size()) != 0) fail_setup(error_fd, "sethostname");
  // CRIU refuses a session leader outside the workload's PID namespace.
  if (::setsid() < 0) fail_setup(error_fd, "setsid");

  // Stdio is opened inside the new mount namespace, or CRIU cannot find its mount.
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd < 0) fail_setup(error_fd, "open /dev/null");
  if (null_fd != STDIN_FILENO) {
    ::dup2(null_fd, STDIN_FILENO);
    ::close(null_fd);
  }
  const std::string log_path = std::string(k_workload_run) + "/" + k_workload_log;
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (log_fd < 0) fail_setup(error_fd, "open " + log_path);
  ::dup2(log_fd, STDOUT_FILENO);
  ::dup2(log_fd, STDERR_FILENO);
  if (log_fd > STDERR_FILENO) ::close(log_fd);
  const std::string dir = cwd.empty() ? "/" : cwd;
  if (::chdir(dir.c_str()) != 0) fail_setup(error_fd, "chdir " + dir);
  if (user) {
    std::vector<gid_t> groups(user->additional_gids().begin(), user->additional_gids().end());
    if (::setgroups(groups.size(), groups.data()) != 0 ||
        ::setresgid(user->gid(), user->gid(), user->gid()) != 0 ||
        ::setresuid(user->uid(), user->uid(), user->uid()) != 0) {
      fail_setup(error_fd,
                 "become user " + std::to_string(user->uid()) + ":" + std::to_string(user->gid()));
    }
  }

  // Signals stay blocked across the exec, so none is lost before the init waits for them.
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, nullptr);
  if (::fcntl(error_fd, F_SETFD, 0) != 0) fail_setup(error_fd, "fcntl");
  ::execve(self, init_argv, envp);
  fail_setup(error_fd, std::string("exec ") + self);
}

// Runs in the cloned child, PID 1 of the workload's new PID, mount, UTS and IPC namespaces.
[[noreturn]] void workload_init(const std::string& name, const std::string& cwd, const char* self,
                                char** init_argv, char** envp, int error_fd) {
  keep_only({&error_fd});
  private_mounts(error_fd);
  exec_init(name, cwd, self, init_argv, envp, error_fd);
}

// The same for a workload with a root filesystem of its own: its mounts inside ROOT, then
// kcr-init from its /run.
[[noreturn]] void workload_init_in_root(const WorkloadRoot& root, const std::string& cwd,
                                        char** init_argv, char** envp, int error_fd,
                                        const proto::RunUser* user) {
  keep_only({&error_fd});
  try {
    enter_root(root);
  } catch (const std::exception& e) {
    std::string message = std::string("setting up its root filesystem: ") + e.what();
    ssize_t ignored = ::write(error_fd, message.data(), message.size());
    (void)ignored;
    _exit(126);
  }
  exec_init(root.hostname, cwd, k_rootfs_init_path, init_argv, envp, error_fd, true, user);
}

// What a workload with a user or cgroup namespace of its own needs besides the rest.
struct OwnNamespaces {
  bool user = false;
  uid_t root_uid = 0;  // the host ids its root maps to: its /run is theirs
  gid_t root_gid = 0;
  bool cgroup = false;
  bool cgroup_dir = false;  // a cgroup of its own (limits), without a namespace
};

// Runs in a child cloned into a new mount namespace only (the helper): makes the workload's
// mounts while still the guest's root (in a mount namespace a user namespace owns, they would
// be locked to the guest's), then enters a new user namespace and waits for the agent to write
// its maps (and to move it into its cgroup), becomes root there, and unshares the workload's
// PID, mount, UTS, IPC (and cgroup) namespaces, now owned by that user namespace. Its child,
// cloned as the agent's, is PID 1 of the workload; the helper sends its pid and exits.
[[noreturn]] void namespace_helper(const std::string& hostname, const std::string& cwd,
                                   const char* self, char** init_argv, char** envp, int error_fd,
                                   int to_agent, int from_agent, const OwnNamespaces& own) {
  keep_only({&error_fd, &to_agent, &from_agent});
  private_mounts(error_fd);
  if (own.user) {
    for (const char* dir : {"/run", "/run/kcr", "/run/kcr/tmp", "/run/kcr/shm"}) {
      if (::chown(dir, own.root_uid, own.root_gid) != 0)
        fail_setup(error_fd, std::string("chown ") + dir);
    }
    if (::unshare(CLONE_NEWUSER) != 0) fail_setup(error_fd, "unshare a user namespace");
  }
  char c = 'u';
  if (::write(to_agent, &c, 1) != 1 || ::read(from_agent, &c, 1) != 1 || c != 'k') {
    errno = EPROTO;
    fail_setup(error_fd, "the agent did not set the namespace up");
  }
  if (own.user &&
      (::setgroups(0, nullptr) != 0 || ::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0)) {
    fail_setup(error_fd, "become root in the user namespace");
  }
  int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
  if (own.cgroup) flags |= CLONE_NEWCGROUP;
  if (::unshare(flags) != 0) fail_setup(error_fd, "unshare the workload's namespaces");
  long pid = ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) fail_setup(error_fd, "clone the workload's init");
  if (pid == 0) exec_init(hostname, cwd, self, init_argv, envp, error_fd);
  ssize_t ignored = ::write(to_agent, &pid, sizeof pid);
  (void)ignored;
  _exit(0);
}

void write_proc_file(const std::string& path, const std::string& text) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw_errno("write " + path);
  }
}

}  // namespace

std::shared_ptr<UniqueFd> open_run_dir(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/root" + k_workload_run;
  int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + path);
  return std::make_shared<UniqueFd>(fd);
}

namespace {

bool process_stopped(pid_t pid) {
  return is_stopped_state(
      proc_stat_state(read_first_line("/proc/" + std::to_string(pid) + "/stat")));
}

// "stopped" when the workload's init or its command (the init's first child) is stopped: by
// kill --signal STOP, or by CRIU's --leave-stopped after a checkpoint that did not end it.
const char* live_state(pid_t init) {
  if (process_stopped(init)) return "stopped";
  const std::string task = "/proc/" + std::to_string(init) + "/task/" + std::to_string(init);
  pid_t command = std::atoi(read_first_line(task + "/children").c_str());
  return command > 0 && process_stopped(command) ? "stopped" : "running";
}

}  // namespace

void to_proto(const Workload& workload, proto::Workload* out) {
  out->set_name(workload.name);
  out->set_pid(workload.pid);
  for (const auto& arg : workload.argv) out->add_argv(arg);
  out->set_state(workload.running ? live_state(workload.pid) : "exited");
  out->set_exit_code(workload.exit_code);
  out->set_exit_signal(workload.exit_signal);
  out->set_started_unix_ms(workload.started_unix_ms);
  if (workload.root) out->set_rootfs_digest(workload.root->digest);
}

namespace {

// Reads exactly N bytes from FD within the start timeout; false on EOF, error or timeout.
bool read_within(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  const auto deadline = Clock::now() + k_start_timeout;
  while (n > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// The agent's side of namespace_helper: clones the helper (running HELPER), writes its maps,
// moves it into the workload's cgroup, and returns the pid of the workload's init, or -1 when
// the helper failed (its reason is then on the error pipe). Reaps the helper.
long start_with_own_namespaces(const proto::RunRequest& request,
                               const google::protobuf::RepeatedPtrField<proto::IdMapping>& gid_map,
                               const OwnNamespaces& own,
                               const std::function<void(int, int)>& helper) {
  int up[2], down[2];
  if (::pipe2(up, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd up_read(up[0]), up_write(up[1]);
  if (::pipe2(down, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd down_read(down[0]), down_write(down[1]);
  long helper_pid = ::syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (helper_pid < 0) throw_errno("clone");
  if (helper_pid == 0) {
    helper(up_write.get(), down_read.get());
    _exit(126);
  }
  up_write.reset();
  down_read.reset();
  long init_pid = -1;
  std::string failure;
  try {
    char c = 0;
    if (read_within(up_read.get(), &c, 1) && c == 'u') {
      const std::string proc = "/proc/" + std::to_string(helper_pid);
      if (own.cgroup || own.cgroup_dir) {
        const std::string dir = "/sys/fs/cgroup/kcr/" + request.name();
        for (const std::string& d : {std::string("/sys/fs/cgroup/kcr"), dir}) {
          if (::mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) throw_errno("mkdir " + d);
        }
        write_proc_file(dir + "/cgroup.procs", std::to_string(helper_pid));
      }
      if (own.user) {
        write_proc_file(proc + "/uid_map", core::id_map_text(request.uid_map()));
        write_proc_file(proc + "/gid_map", core::id_map_text(gid_map));
      }
      c = 'k';
      if (::write(down_write.get(), &c, 1) == 1 &&
          read_within(up_read.get(), &init_pid, sizeof init_pid) && init_pid <= 0) {
        init_pid = -1;
      }
    }
  } catch (const Error& e) {
    failure = e.what();
  }
  down_write.reset();  // a helper still waiting gives up
  int status = 0;
  while (::waitpid(static_cast<pid_t>(helper_pid), &status, 0) < 0 && errno == EINTR) {
  }
  if (!failure.empty()) {
    if (init_pid > 0) ::kill(static_cast<pid_t>(init_pid), SIGKILL);
    throw Error("the workload's namespaces could not be set up: " + failure);
  }
  return init_pid;
}

}  // namespace

const Workload& WorkloadTable::run(const proto::RunRequest& request) {
  const std::string& name = request.name();
  if (!core::is_valid_name(name)) {
    throw Error("workload name '" + name + "' is not valid",
                "use 1-64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit");
  }
  auto existing = m_workloads.find(name);
  if (existing != m_workloads.end() && existing->second.running) {
    throw Error("workload '" + name + "' already exists", "kill it first or choose another name");
  }
  if (request.argv().empty()) throw Error("workload '" + name + "' has no command to run");

  std::vector<std::string> argv(request.argv().begin(), request.argv().end());
  std::vector<std::string> env(request.env().begin(), request.env().end());
  if (env.empty()) env = default_env();
  char self[4096];
  ssize_t self_len = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (self_len <= 0) throw_errno("readlink /proc/self/exe");
  self[self_len] = '\0';
  std::vector<std::string> init_argv = {request.rootfs_digest().empty() ? self : k_rootfs_init_path,
                                        k_workload_init_flag, "--"};
  init_argv.insert(init_argv.end(), argv.begin(), argv.end());
  CStringArray c_init_argv(init_argv);
  CStringArray c_env(env);

  OwnNamespaces own;
  auto gid_map = request.gid_map().empty() ? request.uid_map() : request.gid_map();
  if (!request.uid_map().empty()) {
    core::validate_id_maps(request.uid_map(), "uid map");
    core::validate_id_maps(gid_map, "gid map");
    own.user = true;
    own.root_uid = core::host_id_of_root(request.uid_map());
    own.root_gid = core::host_id_of_root(gid_map);
  } else if (!request.gid_map().empty()) {
    throw Error("workload '" + name + "' has a gid map but no uid map", "give both, or a uid map");
  }
  own.cgroup = request.cgroupns();
  const std::string hostname = request.hostname().empty() ? name : request.hostname();
  if (!core::is_valid_name(hostname)) {
    throw Error("hostname '" + hostname + "' is not valid",
                "use 1-64 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit");
  }
  // A root filesystem of its own: an overlay over the base the host put into the guest.
  std::optional<WorkloadRoot> root;
  RootGuard root_guard;
  if (request.rootfs_digest().empty() &&
      (request.readonly_root() || !request.mounts().empty() || request.has_user())) {
    throw Error("a read-only root, mounts and a user need a root filesystem of its own",
                "give it one: kcr run --rootfs or --bundle");
  }
  if (!request.rootfs_digest().empty()) {
    if (own.user || own.cgroup) {
      throw Error(
          "a workload with a root filesystem of its own cannot have a user or cgroup "
          "namespace of its own yet",
          "leave out --uidmap/--cgroupns, or --rootfs");
    }
    root = prepare_root(name, request.rootfs_digest(), hostname);
    root_guard.name = name;
    take_mounts(request, *root);
  }
  Limits limits;
  limits.memory_max = request.memory_max();
  limits.pids_max = request.pids_max();
  // The workload's own cgroup, made with its limits before anything runs in it.
  UniqueFd cgroup_fd;
  if (limits.any()) {
    make_limited_cgroup(workload_cgroup(name), limits);
    std::string dir = "/sys/fs/cgroup" + workload_cgroup(name);
    cgroup_fd = UniqueFd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!cgroup_fd) throw_errno("open " + dir);
    own.cgroup_dir = true;
  }

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw_errno("pipe");
  UniqueFd error_read(pipe_fds[0]);
  UniqueFd error_write(pipe_fds[1]);

  long pid = 0;
  if (!own.user && !own.cgroup) {
    // A fork-style clone: the child continues here on a copy of this stack, PID 1 of its own
    // PID namespace, with the agent as its parent.
    // clone3 without a stack is fork-style too; CLONE_INTO_CGROUP puts the child in the
    // workload's cgroup from its first instruction.
    struct clone_args args {};
    args.flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC;
    args.exit_signal = SIGCHLD;
    if (cgroup_fd) {
      args.flags |= CLONE_INTO_CGROUP;
      args.cgroup = static_cast<uint64_t>(cgroup_fd.get());
    }
    pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) throw_errno("clone");
    if (pid == 0) {
      if (root) {
        workload_init_in_root(*root, request.cwd(), c_init_argv.data(), c_env.data(),
                              error_write.get(), request.has_user() ? &request.user() : nullptr);
      }
      workload_init(hostname, request.cwd(), self, c_init_argv.data(), c_env.data(),
                    error_write.get());
    }
  } else {
    pid = start_with_own_namespaces(request, gid_map, own, [&](int to_agent, int from_agent) {
      namespace_helper(hostname, request.cwd(), self, c_init_argv.data(), c_env.data(),
                       error_write.get(), to_agent, from_agent, own);
    });
  }
  error_write.reset();

  Output setup;
  bool done =
      pid > 0 && read_until_eof(error_read.get(), -1, 4096, Clock::now() + k_start_timeout, setup);
  if (pid <= 0) {
    read_until_eof(error_read.get(), -1, 4096, Clock::now() + k_start_timeout, setup);
    throw Error(
        "workload '" + name + "' could not start: " +
        (setup.out.empty() ? std::string("its namespaces could not be set up") : setup.out));
  }
  if (!done || !setup.out.empty()) {
    int status = wait_for_child(static_cast<pid_t>(pid), Clock::now());
    (void)status;
    throw Error("workload '" + name +
                "' could not start: " + (done ? setup.out : std::string("setup timed out")));
  }

  Workload workload;
  workload.name = name;
  workload.pid = static_cast<pid_t>(pid);
  workload.argv = std::move(argv);
  workload.started_unix_ms = unix_ms();
  workload.limits = limits;
  workload.root = std::move(root);
  // The setup pipe closed, so the init finished its mounts: its /run is the private one now.
  try {
    workload.run_dir = open_run_dir(workload.pid);
  } catch (const Error& e) {
    ::kill(workload.pid, SIGKILL);
    wait_for_child(workload.pid, Clock::now());
    throw Error("workload '" + name + "' could not start: " + e.what());
  }
  root_guard.name.clear();
  auto& slot = m_workloads[name];
  slot = std::move(workload);
  return slot;
}

bool WorkloadTable::record_exit(pid_t pid, int status) {
  for (auto& [name, workload] : m_workloads) {
    if (!workload.running || workload.pid != pid) continue;
    workload.running = false;
    if (WIFSIGNALED(status)) {
      workload.exit_signal = WTERMSIG(status);
    } else {
      workload.exit_code = WEXITSTATUS(status);
    }
    // The cgroup a cgroup namespace was rooted at, if any: empty now (ENOENT, EBUSY otherwise).
    ::rmdir(("/sys/fs/cgroup/kcr/" + name).c_str());
    if (workload.root) remove_root(name);
    return true;
  }
  return false;
}

const Workload& WorkloadTable::get(const std::string& name) const {
  auto it = m_workloads.find(name);
  if (it == m_workloads.end()) {
    throw Error("no workload named '" + name + "'", "kcr ps VM lists the workloads");
  }
  return it->second;
}

void WorkloadTable::kill(const std::string& name, int signal, bool all) {
  if (signal == 0) signal = SIGTERM;
  if (signal < 1 || signal > 64) throw Error("signal " + std::to_string(signal) + " is not valid");
  const Workload& workload = get(name);
  if (!workload.running) throw Error("workload '" + name + "' is not running");
  if (all) {
    // Every process whose PID namespace is the workload's (CRIU leaves them
    // all stopped after a dump with --leave-stopped).
    std::error_code ec;
    std::string own_ns =
        std::filesystem::read_symlink("/proc/" + std::to_string(workload.pid) + "/ns/pid", ec)
            .string();
    if (ec) throw Error("workload '" + name + "' is not running");
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
      std::string pid_text = entry.path().filename().string();
      if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) {
        continue;
      }
      std::error_code ec2;
      auto ns = std::filesystem::read_symlink(entry.path() / "ns" / "pid", ec2).string();
      if (!ec2 && ns == own_ns) ::kill(std::stoi(pid_text), signal);
    }
  }
  if (::kill(workload.pid, signal) != 0) throw_errno("kill workload '" + name + "'");
}

Workload* WorkloadTable::find(const std::string& name) {
  auto it = m_workloads.find(name);
  return it == m_workloads.end() ? nullptr : &it->second;
}

void WorkloadTable::check_name_free(const std::string& name) const {
  auto it = m_workloads.find(name);
  if (it != m_workloads.end() && it->second.running) {
    throw Error("workload '" + name + "' already exists", "restore it with --name NEW");
  }
}

const Workload& WorkloadTable::adopt(Workload workload) {
  check_name_free(workload.name);
  auto& slot = m_workloads[workload.name];
  slot = std::move(workload);
  return slot;
}

void WorkloadTable::reap_known() {
  for (auto& [name, workload] : m_workloads) {
    if (!workload.running) continue;
    int status = 0;
    if (::waitpid(workload.pid, &status, WNOHANG) == workload.pid)
      record_exit(workload.pid, status);
  }
}

proto::LogsReply WorkloadTable::logs(const proto::LogsRequest& request) const {
  const Workload& workload = get(request.workload());
  proto::LogsReply reply;
  reply.set_running(workload.running);
  reply.set_next_offset(request.offset());
  if (request.offset() > static_cast<std::uint64_t>(INT64_MAX / 2)) return reply;
  std::uint32_t max = request.max_bytes();
  if (max == 0 || max > k_max_log_read) max = k_max_log_read;
  if (!workload.run_dir || !*workload.run_dir) return reply;
  UniqueFd fd(::openat(workload.run_dir->get(), k_workload_log, O_RDONLY | O_CLOEXEC));
  if (!fd && errno == ENOENT) return reply;
  if (!fd) throw_errno(std::string("open the log of workload '") + workload.name + "'");
  std::string data(max, '\0');
  std::size_t got = 0;
  while (got < max) {
    ssize_t n =
        ::pread(fd.get(), data.data() + got, max - got, static_cast<off_t>(request.offset() + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno(std::string("read the log of workload '") + workload.name + "'");
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  reply.set_next_offset(request.offset() + got);
  reply.set_data(std::move(data));
  return reply;
}

proto::PsReply WorkloadTable::ps() const {
  proto::PsReply reply;
  for (const auto& [name, workload] : m_workloads) to_proto(workload, reply.add_workloads());
  return reply;
}

void WorkloadTable::signal_all(int signal) {
  for (const auto& [name, workload] : m_workloads) {
    if (workload.running) ::kill(workload.pid, signal);
  }
}

bool WorkloadTable::any_running() const {
  for (const auto& [name, workload] : m_workloads) {
    if (workload.running) return true;
  }
  return false;
}

}  // namespace kcr::agent
