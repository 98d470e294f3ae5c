#include "vm/qemu_backend.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "core/error.hpp"
#include "core/fault.hpp"
#include "core/files.hpp"
#include "core/format.hpp"
#include "core/log.hpp"
#include "core/subprocess.hpp"
#include "vm/agent_client.hpp"
#include "vm/data_disk.hpp"
#include "vm/qemu_command.hpp"
#include "vm/qmp_client.hpp"

namespace kcr::vm {

namespace {

std::string in_dir(const VmInfo& info, const char* file) {
  return info.dir + "/" + file;
}

std::optional<pid_t> read_pid_file(const std::string& dir) {
  std::string text = core::try_read_file(dir + "/" + k_pid_file, 64).value_or("");
  try {
    long pid = std::stol(text);
    if (pid > 1) return static_cast<pid_t>(pid);
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// The QEMU pid of INFO: from its record, or from QEMU's pid file while the
// record does not have it yet (a kcr that died right after starting QEMU).
pid_t qemu_pid(const VmInfo& info) {
  return info.pid > 1 ? info.pid : read_pid_file(info.dir).value_or(0);
}

bool qemu_alive(pid_t pid, const std::string& dir) {
  if (pid <= 1) return false;
  auto cmdline = core::try_read_file("/proc/" + std::to_string(pid) + "/cmdline");
  // A zombie has an empty cmdline; a reused PID will not name our socket.
  return cmdline && cmdline->find(dir + "/" + k_qmp_socket) != std::string::npos;
}

void wait_gone(pid_t pid, const std::string& dir, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (qemu_alive(pid, dir) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string find_qemu(const core::Config& cfg) {
  auto qemu = core::find_program(cfg.qemu);
  if (!qemu) {
    throw Error("QEMU ('" + cfg.qemu + "') was not found",
                "run scripts/setup.sh, or apt-get install qemu-system-x86, or set 'qemu' in the "
                "config file");
  }
  return *qemu;
}

}  // namespace

QemuSpec guest_spec(const VmStartOptions& options, Accel accel, const std::string& dir) {
  QemuSpec spec;
  spec.name = options.name;
  spec.kernel = options.kernel;
  spec.initrd = options.initrd;
  spec.state_dir = dir;
  spec.memory_mib = options.memory_mib;
  spec.cpus = options.cpus;
  spec.accel = accel;
  if (accel == Accel::tcg) spec.tsc_khz = host_tsc_khz();
  // KCR_TCG_STRING_OPS=1 keeps the guest kernel's string instructions under TCG (to compare).
  if (const char* keep = std::getenv("KCR_TCG_STRING_OPS"); keep && std::string(keep) == "1") {
    spec.tcg_plain_copies = false;
  }
  spec.extra_append = options.extra_append;
  // Agent-side fault injection for the tests (core/fault.hpp), checked before it
  // reaches the kernel command line.
  if (const char* fault = std::getenv("KCR_AGENT_FAULT"); fault && *fault) {
    core::validate_agent_fault_spec(fault);
    spec.extra_append.push_back(std::string("kcr.fault=") + fault);
  }
  // For the tests: a guest whose mounts are shared, as systemd makes a host's, so a
  // workload's copies arrive peers of the guest's (the Kata prototype's hazard).
  if (const char* shared = std::getenv("KCR_GUEST_SHARED_MOUNTS"); shared && *shared == '1') {
    spec.extra_append.push_back("kcr.shared-mounts");
  }
  // The data disks, unless KCR_DATA_DISKS=0 asks for a VM that moves images through the agent's
  // port only (the benchmark's and the tests' other channel).
  if (const char* disks = std::getenv("KCR_DATA_DISKS"); !disks || std::string(disks) != "0") {
    spec.disks = {{dir + "/" + k_out_disk_file, k_out_disk_serial},
                  {dir + "/" + k_in_disk_file, k_in_disk_serial, true}};
  }
  return spec;
}

std::string QemuBackend::version(const core::Config& cfg) {
  core::SubprocessOptions so;
  so.timeout = std::chrono::seconds(10);
  auto r = core::run_subprocess({find_qemu(cfg), "--version"}, so);
  std::string first = r.out.substr(0, r.out.find('\n'));
  return r.ok() && !first.empty() ? core::trim(first) : "unknown";
}

pid_t QemuBackend::launch(const core::Config& cfg, const VmStartOptions& options, Accel accel,
                          const std::string& dir) {
  QemuSpec spec = guest_spec(options, accel, dir);
  spec.qemu = find_qemu(cfg);
  if (!spec.disks.empty()) create_data_disks(dir, spec.memory_mib);

  mode_t old_umask = ::umask(077);  // sockets and logs QEMU creates are the owner's only
  core::SubprocessOptions so;
  so.timeout = std::chrono::seconds(60);
  core::SubprocessResult r;
  auto argv = build_qemu_argv(spec);
  core::log(core::LogLevel::debug, "QEMU command line: " + core::shell_join(argv));
  try {
    r = core::run_subprocess(argv, so);
  } catch (...) {
    ::umask(old_umask);
    throw;
  }
  ::umask(old_umask);
  if (!r.ok()) {
    throw Error("QEMU failed to start: " + (core::trim(r.err).empty()
                                                ? "exit status " + std::to_string(r.exit_code)
                                                : core::trim(r.err)));
  }
  pid_t pid = read_pid_file(dir).value_or(0);
  if (!qemu_alive(pid, dir)) throw Error("QEMU exited right after starting");
  // QEMU sets its own umask when it daemonizes; the directory is 0700
  // already, and the sockets are tightened too.
  for (const char* f : {k_agent_socket, k_qmp_socket, k_console_socket, k_serial_log}) {
    ::chmod((dir + "/" + f).c_str(), 0600);
  }
  return pid;
}

bool QemuBackend::alive(const VmInfo& info) const {
  return qemu_alive(qemu_pid(info), info.dir);
}

void QemuBackend::terminate(const VmInfo& info, bool ask_agent) {
  pid_t pid = qemu_pid(info);
  const std::string& dir = info.dir;
  if (!qemu_alive(pid, dir)) return;
  if (ask_agent) {
    try {
      AgentClient agent(in_dir(info, k_agent_socket));
      proto::Request req;
      req.mutable_shutdown();
      agent.call(req, std::chrono::seconds(3));
      wait_gone(pid, dir, std::chrono::seconds(3));
    } catch (const Error&) {
    }
  }
  if (!qemu_alive(pid, dir)) return;
  try {
    QmpClient qmp(in_dir(info, k_qmp_socket), std::chrono::seconds(2));
    qmp.execute("quit");
  } catch (const Error&) {
  }
  wait_gone(pid, dir, std::chrono::seconds(3));
  if (!qemu_alive(pid, dir)) return;
  ::kill(pid, SIGKILL);
  wait_gone(pid, dir, std::chrono::seconds(5));
}

std::unique_ptr<AgentChannel> QemuBackend::connect_agent(const VmInfo& info) {
  return std::make_unique<AgentClient>(in_dir(info, k_agent_socket));
}

UniqueFd QemuBackend::connect_console(const VmInfo& info) {
  return core::connect_unix(in_dir(info, k_console_socket),
                            "the serial console of VM '" + info.name + "'");
}

std::string QemuBackend::serial_log_path(const VmInfo& info) const {
  return in_dir(info, k_serial_log);
}

SaveResult QemuBackend::save(const VmInfo& info, const std::string& path) {
  UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out) throw_errno("create " + path);
  auto started = std::chrono::steady_clock::now();
  try {
    QmpClient qmp(in_dir(info, k_qmp_socket), std::chrono::seconds(10));
    // QEMU 7.2 caps migration at 32 MiB/s by default; a file takes all it can.
    qmp.execute("migrate-set-parameters", R"({"max-bandwidth":107374182400})");
    qmp.send_fd("kcrsave", out.get());
    qmp.execute("migrate", R"({"uri":"fd:kcrsave"})");
    auto deadline = started + std::chrono::minutes(10);
    for (;;) {
      std::string status = qmp.execute("query-migrate");
      if (status.find("\"completed\"") != std::string::npos) break;
      if (status.find("\"failed\"") != std::string::npos) {
        throw Error("QEMU's migration to " + path + " failed: " + status);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        qmp.execute("migrate_cancel");
        throw Error("QEMU's migration to " + path + " did not finish in 10 minutes");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    SaveResult result;
    result.ms = core::ms_since(started);
    qmp.execute("cont");
    struct stat st {};
    if (::fstat(out.get(), &st) == 0) result.bytes = static_cast<uint64_t>(st.st_size);
    return result;
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
}

void QemuBackend::link(const VmInfo& a, const VmInfo& b) {
  join_link_sockets(a, b);
}

void join_link_sockets(const VmInfo& a, const VmInfo& b) {
  // Each VM's NIC sends to STATE/peer.sock: point it at the other's net.sock.
  auto point = [](const VmInfo& from, const VmInfo& to) {
    std::string link = in_dir(from, k_peer_socket);
    std::string tmp = link + ".new";
    ::unlink(tmp.c_str());
    std::string target = in_dir(to, k_net_socket);
    if (::symlink(target.c_str(), tmp.c_str()) != 0) throw_errno("symlink " + tmp);
    if (::rename(tmp.c_str(), link.c_str()) != 0) throw_errno("rename " + tmp);
  };
  point(a, b);
  point(b, a);
}

}  // namespace kcr::vm
