#include "vm/vm.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.hpp"
#include "core/fault.hpp"
#include "core/files.hpp"
#include "core/log.hpp"
#include "core/names.hpp"
#include "core/time.hpp"
#include "kcr/version.hpp"

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

void write_record(const VmInfo& info) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << info.name;
  out << YAML::Key << "backend" << YAML::Value << info.backend;
  if (!info.connect.empty()) out << YAML::Key << "connect" << YAML::Value << info.connect;
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
  core::write_file_atomic(info.dir + "/" + k_record, std::string(out.c_str()) + "\n");
}

// Reads a VM's record; nullopt when it is missing or unreadable (a VM that
// never finished starting).
std::optional<VmInfo> read_record(const std::string& dir) {
  try {
    YAML::Node n = YAML::LoadFile(dir + "/" + k_record);
    VmInfo info;
    info.dir = dir;
    info.name = n["name"].as<std::string>();
    info.backend = n["backend"].as<std::string>("qemu");
    info.connect = n["connect"].as<std::string>("");
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

void remove_dir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace

namespace {

std::string serial_tail(Backend& backend, const VmInfo& info, std::size_t lines) {
  std::ifstream in(backend.serial_log_path(info));
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

}  // namespace

std::string serial_tail(const VmInfo& info, std::size_t lines) {
  return serial_tail(backend_named(info.backend), info, lines);
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

namespace {

// A state directory left by a VM: its record, or a bare one for a VM whose
// record was never written (kcr died while starting it).
VmInfo record_or_bare(const std::string& dir, const std::string& name) {
  auto info = read_record(dir);
  if (info) return *info;
  VmInfo bare;
  bare.name = name;
  bare.dir = dir;
  return bare;
}

// A guest under working KVM reaches its agent in a second or two; one that
// has not after this long is taken for KVM not working here (guest.md: some
// hosts' KVM runs a guest that never prints a line).
constexpr std::chrono::seconds k_kvm_probe_timeout{20};

// Boots the VM in INFO.dir with ACCEL and waits up to WAIT for its agent;
// fills INFO.
proto::Hello boot(const core::Config& cfg, const VmStartOptions& options, Backend& backend,
                  Accel accel, std::chrono::seconds wait, VmInfo& info, const Progress& progress) {
  info.accel = to_string(accel);
  info.pid = 0;
  if (progress) {
    progress("starting VM '" + options.name + "' (" + info.accel + ", " +
             std::to_string(options.memory_mib) + " MiB, " + std::to_string(options.cpus) +
             " vCPU)");
  }
  auto started = std::chrono::steady_clock::now();
  // Recorded before the launch, so a kcr that dies mid-start leaves a VM the
  // next command can find and end.
  write_record(info);
  info.pid = backend.launch(cfg, options, accel, info.dir);
  write_record(info);

  auto agent = backend.connect_agent(info);
  auto still_alive = [&] {
    if (!backend.alive(info)) throw Error("the VM exited while the guest was booting");
  };
  proto::Hello h;
  const std::string hint =
      "the guest's serial log is below; 'boot_timeout' in the config file raises the limit";
  try {
    h = agent->wait_hello(wait, still_alive);
  } catch (const HelloTimeout&) {
    throw Error("the guest's agent did not answer within " + std::to_string(wait.count()) + " s",
                hint);
  } catch (const Error& e) {
    throw Error(e.what(), hint);
  }
  if (h.protocol_version() != kcr::k_protocol_version) {
    throw Error("the guest's agent speaks protocol " + std::to_string(h.protocol_version()) +
                    ", this kcr speaks " + std::to_string(kcr::k_protocol_version),
                "rebuild the guest image: kcr image build --force");
  }
  info.boot_ms = core::ms_since(started);
  write_record(info);
  return h;
}

// Ends a failed boot and empties its state directory for the next try.
void clear_failed_boot(Backend& backend, const VmInfo& info) {
  backend.terminate(info, false);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(info.dir, ec)) {
    if (entry.path().filename() != k_lock) fs::remove_all(entry.path(), ec);
  }
}

KvmVerdicts kvm_verdicts(const core::Config& cfg) {
  return KvmVerdicts(cfg.cache_dir + "/kvm-verdicts.yaml");
}

// What decides whether KVM works here: the hypervisor's version and the host kernel.
std::string kvm_verdict_key(const core::Config& cfg, Backend& backend) {
  return backend.name() + " | " + backend.version(cfg) + " | host kernel " + host_kernel_release();
}

// Boots with the accelerator OPTIONS asks for. "auto" takes KVM only once a
// boot has proved it works on this host, and falls back to TCG, saying why,
// when KVM aborts or never brings the guest up; the verdict is remembered
// per backend version and host kernel so the next boot does not pay again.
proto::Hello boot_with_accel(const core::Config& cfg, const VmStartOptions& options,
                             Backend& backend, VmInfo& info, const Progress& progress) {
  const std::chrono::seconds full_wait{cfg.boot_timeout_s};
  Accel accel = choose_accel(options.accel);
  if (options.accel != "auto" || accel == Accel::tcg) {
    return boot(cfg, options, backend, accel, full_wait, info, progress);
  }
  KvmVerdicts verdicts = kvm_verdicts(cfg);
  std::string key = kvm_verdict_key(cfg, backend);
  auto known = verdicts.find(key);
  if (known && !known->works) {
    if (progress) {
      progress("KVM does not work on this host (" + known->reason +
               "); using TCG (verdict remembered in " + verdicts.path() + ")");
    }
    return boot(cfg, options, backend, Accel::tcg, full_wait, info, progress);
  }
  try {
    auto wait = known ? full_wait : std::min(full_wait, k_kvm_probe_timeout);
    proto::Hello h = boot(cfg, options, backend, Accel::kvm, wait, info, progress);
    if (!known) verdicts.remember(key, {true, {}});
    return h;
  } catch (const Error& e) {
    // A refusal of what was asked (a name taken) is not KVM's doing.
    if (e.code() == ExitCode::usage) throw;
    std::string reason = e.what();
    reason = reason.substr(0, reason.find('\n'));
    clear_failed_boot(backend, info);
    if (progress) {
      progress("KVM does not work on this host (" + reason + "); falling back to TCG");
    }
    proto::Hello h = boot(cfg, options, backend, Accel::tcg, full_wait, info, progress);
    // Only a guest that boots under TCG shows that KVM was to blame.
    verdicts.remember(key, {false, reason});
    return h;
  }
}

}  // namespace

AccelChoice auto_accel(const core::Config& cfg, Backend& backend) {
  if (!kvm_device_usable()) return {"tcg", "no usable KVM device"};
  auto known = kvm_verdicts(cfg).find(kvm_verdict_key(cfg, backend));
  if (!known) return {"kvm", "not proven yet: the next boot tries KVM and falls back to TCG"};
  if (known->works) return {"kvm", "a boot proved it works here"};
  return {"tcg", "KVM does not work here: " + known->reason};
}

VmInfo start_vm(const core::Config& cfg, const VmStartOptions& options, proto::Hello* hello,
                const Progress& progress) {
  return start_vm(cfg, backend_named(options.backend), options, hello, progress);
}

VmInfo start_vm(const core::Config& cfg, Backend& backend, const VmStartOptions& options,
                proto::Hello* hello, const Progress& progress) {
  core::validate_name("VM name", options.name);

  make_private_dir(vms_root(cfg));
  std::string dir = vms_root(cfg) + "/" + options.name;
  if (::mkdir(dir.c_str(), 0700) != 0) {
    if (errno != EEXIST) throw_errno("create " + dir);
    // A VM of that name exists, or it died and left state behind.
    VmInfo existing = record_or_bare(dir, options.name);
    if (existing.backend == backend.name() ? backend.alive(existing)
                                           : backend_named(existing.backend).alive(existing)) {
      throw Error("VM '" + options.name + "' already exists",
                  "pick another name, or stop it first: kcr vm stop " + options.name,
                  ExitCode::usage);
    }
    UniqueFd lock = lock_vm_dir(dir, options.name, std::chrono::seconds(0));
    remove_dir(dir);
    if (::mkdir(dir.c_str(), 0700) != 0) throw_errno("create " + dir);
  }
  VmInfo info;
  info.name = options.name;
  info.backend = backend.name();
  info.connect = backend.connect_uri(options.connect);
  info.state = "running";
  info.dir = dir;
  info.image = options.image;
  info.image_hash = options.image_hash;
  info.kernel_release = options.kernel_release;
  info.created = core::now_iso8601();
  info.memory_mib = options.memory_mib;
  info.cpus = options.cpus;
  UniqueFd lock;
  try {
    lock = lock_vm_dir(dir, options.name, std::chrono::seconds(0));
    proto::Hello h = boot_with_accel(cfg, options, backend, info, progress);
    if (hello) *hello = h;
    return info;
  } catch (const Error& e) {
    std::string tail = serial_tail(backend, info, 15);
    backend.terminate(info, false);
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
  Backend& backend = backend_named(info.backend);
  backend.terminate(info, true);
  if (backend.alive(info)) {
    throw Error("VM '" + name + "': its " + backend.name() + " process (pid " +
                std::to_string(info.pid) + ") would not stop");
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
    auto record = read_record(dir);
    VmInfo info = record_or_bare(dir, name);
    Backend* backend = nullptr;
    try {
      backend = &backend_named(info.backend);
    } catch (const Error&) {
      // A backend this kcr does not know (a newer kcr's): shown, never touched.
      info.state = "unknown backend '" + info.backend + "'";
      out.push_back(info);
      continue;
    }
    if (backend->alive(info)) {
      if (!record) continue;  // still starting
      info.state = "running";
      out.push_back(info);
      continue;
    }
    // The VM is gone. Clean up unless a kcr command still holds it (it may
    // be starting it right now).
    try {
      UniqueFd lock = lock_vm_dir(dir, name, std::chrono::seconds(0));
      info.state = "exited";
      out.push_back(info);
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
  if (!backend_named(info->backend).alive(*info)) {
    std::string tail = serial_tail(*info, 10);
    try {
      UniqueFd lock = lock_vm_dir(dir, name, std::chrono::seconds(0));
      remove_dir(dir);
    } catch (const Error&) {
    }
    throw Error("VM '" + name + "' is not running: its " + info->backend + " process exited",
                "start it again with kcr vm start " + name +
                    (tail.empty() ? "" : "\nlast lines of its serial console:\n" + tail));
  }
  info->state = "running";
  return *info;
}

AgentConnection connect_running_agent(Backend& backend, const VmInfo& info,
                                      const std::function<void()>& still_alive, int tries,
                                      std::chrono::milliseconds each) {
  for (int attempt = 1;; ++attempt) {
    AgentConnection c;
    c.agent = backend.connect_agent(info);
    try {
      c.hello = c.agent->wait_hello(each, still_alive);
      return c;
    } catch (const HelloTimeout&) {
      if (attempt >= tries) throw;
      core::log(core::LogLevel::debug, "VM '" + info.name + "': no hello within " +
                                           std::to_string(each.count()) +
                                           " ms, connecting to its agent again");
    }
  }
}

VmSession::VmSession(const core::Config& cfg, const std::string& name,
                     std::chrono::seconds lock_wait) {
  m_info = get_vm(cfg, name);
  m_backend = &backend_named(m_info.backend);
  m_lock = lock_vm_dir(m_info.dir, name, lock_wait);
  core::fault_register_vm(name, m_info.pid);
  try {
    auto c = connect_running_agent(*m_backend, m_info, [&] {
      if (!alive()) throw Error("it exited");
    });
    m_agent = std::move(c.agent);
    m_hello = std::move(c.hello);
  } catch (const Error& e) {
    throw e.with_context("VM '" + name + "'");
  }
}

VmSession::VmSession(VmInfo info, Backend& backend, std::unique_ptr<AgentChannel> agent,
                     proto::Hello hello, UniqueFd lock)
    : m_info(std::move(info)),
      m_backend(&backend),
      m_lock(std::move(lock)),
      m_agent(std::move(agent)),
      m_hello(std::move(hello)) {}

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
  return session.backend().save(session.info(), path);
}

}  // namespace kcr::vm
