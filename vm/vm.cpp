#include "vm/vm.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.hpp"
#include "core/names.hpp"
#include "core/subprocess.hpp"
#include "core/time.hpp"
#include "kcr/version.hpp"
#include "vm/qemu_command.hpp"
#include "vm/qmp_client.hpp"

namespace fs = std::filesystem;

namespace kcr::vm {

namespace {

constexpr const char* k_record = "vm.yaml";
constexpr const char* k_lock = "lock";

std::string vms_root(const core::Config& cfg) {
  return cfg.state_dir + "/vms";
}

void make_private_dir(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw Error("cannot create " + path + ": " + ec.message());
  ::chmod(path.c_str(), 0700);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_record(const VmInfo& info) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << info.name;
  out << YAML::Key << "backend" << YAML::Value << "qemu";
  out << YAML::Key << "image" << YAML::Value << info.image;
  out << YAML::Key << "image_hash" << YAML::Value << info.image_hash;
  out << YAML::Key << "kernel_release" << YAML::Value << info.kernel_release;
  out << YAML::Key << "accel" << YAML::Value << info.accel;
  out << YAML::Key << "pid" << YAML::Value << info.pid;
  out << YAML::Key << "memory_mib" << YAML::Value << info.memory_mib;
  out << YAML::Key << "cpus" << YAML::Value << info.cpus;
  out << YAML::Key << "boot_ms" << YAML::Value << info.boot_ms;
  out << YAML::Key << "created" << YAML::Value << info.created;
  out << YAML::EndMap;
  std::string tmp = info.dir + "/" + k_record + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << out.c_str() << "\n";
    if (!f) throw Error("cannot write " + tmp);
  }
  fs::rename(tmp, info.dir + "/" + k_record);
}

// Reads a VM's record; nullopt when it is missing or unreadable (a VM that
// never finished starting).
std::optional<VmInfo> read_record(const std::string& dir) {
  try {
    YAML::Node n = YAML::LoadFile(dir + "/" + k_record);
    VmInfo info;
    info.dir = dir;
    info.name = n["name"].as<std::string>();
    info.image = n["image"].as<std::string>("");
    info.image_hash = n["image_hash"].as<std::string>("");
    info.kernel_release = n["kernel_release"].as<std::string>("");
    info.accel = n["accel"].as<std::string>("");
    info.pid = n["pid"].as<pid_t>(0);
    info.memory_mib = n["memory_mib"].as<uint64_t>(0);
    info.cpus = n["cpus"].as<unsigned>(0);
    info.boot_ms = n["boot_ms"].as<uint64_t>(0);
    info.created = n["created"].as<std::string>("");
    return info;
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
}

std::optional<pid_t> read_pid_file(const std::string& dir) {
  std::string text = read_file(dir + "/" + k_pid_file);
  try {
    long pid = std::stol(text);
    if (pid > 1) return static_cast<pid_t>(pid);
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

void wait_gone(pid_t pid, const std::string& dir, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (qemu_alive(pid, dir) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Ends QEMU by every means, gentlest first, and returns once it is gone.
void terminate_qemu(pid_t pid, const std::string& dir, bool ask_agent) {
  if (!qemu_alive(pid, dir)) return;
  if (ask_agent) {
    try {
      AgentClient agent(dir + "/" + k_agent_socket);
      proto::Request req;
      req.mutable_shutdown();
      agent.call(req, std::chrono::seconds(3));
      wait_gone(pid, dir, std::chrono::seconds(3));
    } catch (const Error&) {
    }
  }
  if (!qemu_alive(pid, dir)) return;
  try {
    QmpClient qmp(dir + "/" + k_qmp_socket, std::chrono::seconds(2));
    qmp.execute("quit");
  } catch (const Error&) {
  }
  wait_gone(pid, dir, std::chrono::seconds(3));
  if (!qemu_alive(pid, dir)) return;
  ::kill(pid, SIGKILL);
  wait_gone(pid, dir, std::chrono::seconds(5));
}

void remove_dir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace

bool qemu_alive(pid_t pid, const std::string& dir) {
  if (pid <= 1) return false;
  std::string cmdline = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  if (cmdline.empty()) return false;
  // A zombie has an empty cmdline; a reused PID will not name our socket.
  return cmdline.find(dir + "/" + k_qmp_socket) != std::string::npos;
}

std::string serial_tail(const std::string& vm_dir, std::size_t lines) {
  std::ifstream in(vm_dir + "/" + k_serial_log);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) out += "  | " + l + "\n";
  return out;
}

UniqueFd lock_vm_dir(const std::string& dir, const std::string& name, std::chrono::seconds wait) {
  UniqueFd fd(::open((dir + "/" + k_lock).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) throw_errno("open lock of VM '" + name + "'");
  auto deadline = std::chrono::steady_clock::now() + wait;
  bool told = false;
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) throw_errno("lock VM '" + name + "'");
    if (std::chrono::steady_clock::now() >= deadline) {
      throw Error("VM '" + name + "' is busy: another kcr command is using it",
                  "wait for it to finish (kcr logs --follow holds the VM until you stop it)");
    }
    if (!told && ::isatty(2)) {
      ::dprintf(2, "kcr: waiting for another kcr command using VM '%s'...\n", name.c_str());
      told = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return fd;
}

VmInfo start_vm(const core::Config& cfg, const VmStartOptions& options, proto::Hello* hello,
                const Progress& progress) {
  core::validate_name("VM name", options.name);
  auto qemu = core::find_program(cfg.qemu);
  if (!qemu) {
    throw Error("QEMU ('" + cfg.qemu + "') was not found",
                "run scripts/setup.sh, or apt-get install qemu-system-x86, or set 'qemu' in the "
                "config file");
  }
  Accel accel = choose_accel(options.accel);

  make_private_dir(vms_root(cfg));
  std::string dir = vms_root(cfg) + "/" + options.name;
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno != EEXIST) throw_errno("create " + dir);
    // A VM of that name exists, or its QEMU died and left state behind.
    auto existing = read_record(dir);
    auto pid = existing ? existing->pid : read_pid_file(dir).value_or(0);
    if (qemu_alive(pid, dir)) {
      throw Error("VM '" + options.name + "' already exists",
                  "pick another name, or stop it first: kcr vm stop " + options.name,
                  ExitCode::usage);
    }
    UniqueFd lock = lock_vm_dir(dir, options.name, std::chrono::seconds(0));
    remove_dir(dir);
    if (::mkdir(dir.c_str(), 0700) != 0) throw_errno("create " + dir);
  }
  UniqueFd lock;
  pid_t pid = 0;
  try {
    lock = lock_vm_dir(dir, options.name, std::chrono::seconds(0));

    QemuSpec spec;
    spec.qemu = *qemu;
    spec.name = options.name;
    spec.kernel = options.kernel;
    spec.initrd = options.initrd;
    spec.state_dir = dir;
    spec.memory_mib = options.memory_mib;
    spec.cpus = options.cpus;
    spec.accel = accel;
    if (accel == Accel::tcg) spec.tsc_khz = host_tsc_khz();
    spec.extra_append = options.extra_append;

    if (progress) {
      progress("starting VM '" + options.name + "' (" + to_string(accel) + ", " +
               std::to_string(options.memory_mib) + " MiB, " + std::to_string(options.cpus) +
               " vCPU)");
    }
    auto started = std::chrono::steady_clock::now();
    mode_t old_umask = ::umask(077);  // sockets and logs QEMU creates are the owner's only
    core::SubprocessOptions so;
    so.timeout = std::chrono::seconds(60);
    core::SubprocessResult r;
    try {
      r = core::run_subprocess(build_qemu_argv(spec), so);
    } catch (...) {
      ::umask(old_umask);
      throw;
    }
    ::umask(old_umask);
    if (!r.ok()) {
      std::string err = r.err;
      while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
      throw Error("QEMU failed to start: " +
                  (err.empty() ? "exit status " + std::to_string(r.exit_code) : err));
    }
    pid = read_pid_file(dir).value_or(0);
    if (!qemu_alive(pid, dir)) throw Error("QEMU exited right after starting");
    // QEMU sets its own umask when it daemonizes; the directory is 0700
    // already, and the sockets are tightened too.
    for (const char* f : {k_agent_socket, k_qmp_socket, k_console_socket, k_serial_log}) {
      ::chmod((dir + "/" + f).c_str(), 0600);
    }

    VmInfo info;
    info.name = options.name;
    info.state = "running";
    info.dir = dir;
    info.image = options.image;
    info.image_hash = options.image_hash;
    info.kernel_release = options.kernel_release;
    info.accel = to_string(accel);
    info.created = core::now_iso8601();
    info.pid = pid;
    info.memory_mib = options.memory_mib;
    info.cpus = options.cpus;
    write_record(info);

    AgentClient agent(dir + "/" + k_agent_socket);
    auto still_alive = [&] {
      if (!qemu_alive(pid, dir)) throw Error("QEMU exited while the guest was booting");
    };
    proto::Hello h;
    try {
      h = agent.wait_hello(std::chrono::seconds(cfg.boot_timeout_s), still_alive);
    } catch (const Error& e) {
      std::string msg = e.what();
      if (msg == "the agent did not say hello in time") {
        msg =
            "the guest's agent did not answer within " + std::to_string(cfg.boot_timeout_s) + " s";
      }
      throw Error(msg,
                  "the guest's serial log is below; 'boot_timeout' in the config file "
                  "raises the limit");
    }
    if (h.protocol_version() != kcr::k_protocol_version) {
      throw Error("the guest's agent speaks protocol " + std::to_string(h.protocol_version()) +
                      ", this kcr speaks " + std::to_string(kcr::k_protocol_version),
                  "rebuild the guest image: kcr image build --force");
    }
    info.boot_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - started)
                                             .count());
    write_record(info);
    if (hello) *hello = h;
    return info;
  } catch (const Error& e) {
    std::string tail = serial_tail(dir, 15);
    if (pid) terminate_qemu(pid, dir, false);
    remove_dir(dir);
    std::string hint = e.hint();
    if (!tail.empty())
      hint +=
          (hint.empty() ? "" : "\n") + std::string("last lines of the serial console:\n") + tail;
    throw Error("VM '" + options.name + "': " + e.what(), hint, e.code());
  }
}

void stop_vm(const core::Config& cfg, const std::string& name) {
  VmInfo info = get_vm(cfg, name);
  UniqueFd lock = lock_vm_dir(info.dir, name, std::chrono::seconds(30));
  terminate_qemu(info.pid, info.dir, true);
  if (qemu_alive(info.pid, info.dir)) {
    throw Error("VM '" + name + "': QEMU (pid " + std::to_string(info.pid) + ") would not stop");
  }
  remove_dir(info.dir);
}

std::vector<VmInfo> list_vms(const core::Config& cfg) {
  std::vector<VmInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(vms_root(cfg), ec)) {
    if (!entry.is_directory()) continue;
    std::string dir = entry.path().string();
    std::string name = entry.path().filename().string();
    if (!core::is_valid_name(name)) continue;
    auto info = read_record(dir);
    pid_t pid = info ? info->pid : read_pid_file(dir).value_or(0);
    if (qemu_alive(pid, dir)) {
      if (!info) continue;  // still starting
      info->state = "running";
      out.push_back(*info);
      continue;
    }
    // QEMU is gone. Clean up unless a kcr command still holds the VM (it may
    // be starting it right now).
    try {
      UniqueFd lock = lock_vm_dir(dir, name, std::chrono::seconds(0));
      VmInfo gone = info.value_or(VmInfo{});
      gone.name = name;
      gone.dir = dir;
      gone.state = "exited";
      out.push_back(gone);
      remove_dir(dir);
    } catch (const Error&) {
    }
  }
  std::sort(out.begin(), out.end(),
            [](const VmInfo& a, const VmInfo& b) { return a.name < b.name; });
  return out;
}

VmInfo get_vm(const core::Config& cfg, const std::string& name) {
  core::validate_name("VM name", name);
  std::string dir = vms_root(cfg) + "/" + name;
  auto info = read_record(dir);
  if (!info) {
    throw Error("no VM named '" + name + "'",
                "kcr vm ls lists the VMs; kcr vm start " + name + " starts one");
  }
  if (!qemu_alive(info->pid, dir)) {
    std::string tail = serial_tail(dir, 10);
    try {
      UniqueFd lock = lock_vm_dir(dir, name, std::chrono::seconds(0));
      remove_dir(dir);
    } catch (const Error&) {
    }
    throw Error("VM '" + name + "' is not running: its QEMU exited",
                "start it again with kcr vm start " + name +
                    (tail.empty() ? "" : "\nlast lines of its serial console:\n" + tail));
  }
  info->state = "running";
  return *info;
}

VmSession::VmSession(const core::Config& cfg, const std::string& name,
                     std::chrono::seconds lock_wait) {
  m_info = get_vm(cfg, name);
  m_lock = lock_vm_dir(m_info.dir, name, lock_wait);
  try {
    m_agent = std::make_unique<AgentClient>(m_info.dir + "/" + k_agent_socket);
    m_hello = m_agent->wait_hello(std::chrono::seconds(15), [&] {
      if (!qemu_alive(m_info.pid, m_info.dir)) throw Error("its QEMU exited");
    });
  } catch (const Error& e) {
    throw e.with_context("VM '" + name + "'");
  }
}

proto::Response VmSession::call(proto::Request request, std::chrono::milliseconds timeout) {
  try {
    return m_agent->call(std::move(request), timeout);
  } catch (const Error& e) {
    throw e.with_context("VM '" + m_info.name + "'");
  }
}

SaveResult save_vm_state(const core::Config& cfg, const std::string& name,
                         const std::string& path) {
  VmSession session(cfg, name);
  UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out) throw_errno("create " + path);
  auto started = std::chrono::steady_clock::now();
  try {
    QmpClient qmp(session.info().dir + "/" + k_qmp_socket, std::chrono::seconds(10));
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
    result.ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - started)
                                          .count());
    qmp.execute("cont");
    struct stat st {};
    if (::fstat(out.get(), &st) == 0) result.bytes = static_cast<uint64_t>(st.st_size);
    return result;
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
}

}  // namespace kcr::vm
