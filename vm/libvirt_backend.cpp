#include "vm/libvirt_backend.hpp"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/format.hpp"
#include "core/log.hpp"
#include "vm/agent_client.hpp"
#include "vm/data_disk.hpp"
#include "vm/libvirt_remote.hpp"
#include "vm/qemu_backend.hpp"
#include "vm/qemu_command.hpp"

namespace kcr::vm {

namespace {

// The domain's UUID, written before the domain is created.
constexpr const char* k_uuid_file = "libvirt.uuid";

struct ConnectCloser {
  void operator()(virConnectPtr c) const { virConnectClose(c); }
};
struct DomainFreer {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using Connection = std::unique_ptr<virConnect, ConnectCloser>;
using Domain = std::unique_ptr<virDomain, DomainFreer>;

std::string in_dir(const std::string& dir, const char* file) {
  return dir + "/" + file;
}

// libvirt's message for its last error on this thread.
std::string last_error() {
  const char* m = virGetLastErrorMessage();
  return m && *m ? m : "unknown libvirt error";
}

int last_error_code() {
  virErrorPtr e = virGetLastError();
  return e ? e->code : VIR_ERR_OK;
}

// libvirt prints every error to stderr unless told not to; kcr reports its own.
void quiet_libvirt() {
  static bool done = [] {
    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
    return true;
  }();
  (void)done;
}

// A connection to URI; throws kcr::Error naming it when there is none.
Connection open_connection(const std::string& uri) {
  quiet_libvirt();
  // Another host's VM is reached through streams, which need libvirt's event loop.
  if (!libvirt_uri_is_local(uri)) libvirt_event_loop();
  Connection c(virConnectOpen(uri.c_str()));
  if (!c) {
    std::string msg = last_error();
    int code = last_error_code();
    std::string hint =
        code == VIR_ERR_AUTH_FAILED || code == VIR_ERR_AUTH_UNAVAILABLE ||
                msg.find("ermission denied") != std::string::npos
            ? "kcr may not use that daemon: run kcr as root, or as a member of the libvirt group"
            : "check the URI (--connect, 'connect' in the config file, $KCR_CONNECT); for "
              "qemu:///system on this host, scripts/libvirt-up.sh starts a daemon";
    throw Error("cannot connect to libvirt at '" + uri + "': " + msg, hint);
  }
  return c;
}

std::string read_uuid(const std::string& dir) {
  return core::trim(core::try_read_file(in_dir(dir, k_uuid_file), 128).value_or(""));
}

// The domain of the VM in DIR on C, or null when there is none (or no UUID).
Domain find_domain(virConnectPtr c, const std::string& dir) {
  std::string uuid = read_uuid(dir);
  if (uuid.empty()) return nullptr;
  return Domain(virDomainLookupByUUIDString(c, uuid.c_str()));
}

std::string new_uuid() {
  std::string uuid =
      core::trim(core::try_read_file("/proc/sys/kernel/random/uuid", 64).value_or(""));
  if (uuid.size() != 36) throw Error("cannot read a UUID from /proc/sys/kernel/random/uuid");
  return uuid;
}

std::string xml_escape(const std::string& text) {
  return core::markup_escape(text);
}

bool active(virDomainPtr d) {
  return virDomainIsActive(d) == 1;
}

// Waits up to TIMEOUT for the domain to stop running (a transient domain
// that stopped is gone: lookups fail, or it reads inactive).
bool wait_inactive(virConnectPtr c, const std::string& dir, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    Domain d = find_domain(c, dir);
    if (!d || !active(d.get())) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// The QEMU pid of domain NAME when libvirt's system daemon runs on this host
// (it keeps a pid file there), else 0: shown by kcr vm ls, never signalled.
pid_t local_qemu_pid(const std::string& uri, const std::string& domain_name) {
  if (uri != k_libvirt_default_uri) return 0;
  std::string text =
      core::try_read_file("/run/libvirt/qemu/" + domain_name + ".pid", 64).value_or("");
  try {
    long pid = std::stol(text);
    return pid > 1 ? static_cast<pid_t>(pid) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

std::string uri_of(const VmInfo& info) {
  return info.connect.empty() ? k_libvirt_default_uri : info.connect;
}

}  // namespace

std::string libvirt_domain_name(const std::string& vm_name) {
  return "kcr-" + vm_name;
}

std::string libvirt_domain_xml(const VmStartOptions& options, Accel accel, const std::string& dir,
                               const std::string& uuid, const std::string& dac_label,
                               bool data_disks, bool remote) {
  auto path = [&](const char* file) { return xml_escape(in_dir(dir, file)); };
  const QemuSpec spec = guest_spec(options, accel, dir);
  std::string x;
  x += "<domain type='" + std::string(accel == Accel::kvm ? "kvm" : "qemu") +
       "' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n";
  x += "  <name>" + xml_escape(libvirt_domain_name(options.name)) + "</name>\n";
  x += "  <uuid>" + xml_escape(uuid) + "</uuid>\n";
  x += "  <title>kcr VM " + xml_escape(options.name) + "</title>\n";
  x += "  <memory unit='MiB'>" + std::to_string(options.memory_mib) + "</memory>\n";
  x += "  <vcpu>" + std::to_string(options.cpus) + "</vcpu>\n";
  x += "  <os>\n";
  x += "    <type arch='x86_64' machine='microvm'>hvm</type>\n";
  x += "    <kernel>" + xml_escape(options.kernel) + "</kernel>\n";
  x += "    <initrd>" + xml_escape(options.initrd) + "</initrd>\n";
  x += "    <cmdline>" + xml_escape(kernel_cmdline(spec)) + "</cmdline>\n";
  x += "  </os>\n";
  // Without ACPI, microvm describes its virtio-mmio devices on the kernel
  // command line only, which Debian's kernel does not read.
  x += "  <features><acpi/></features>\n";
  x += std::string("  <cpu mode='") + (accel == Accel::kvm ? "host-passthrough" : "maximum") +
       "'/>\n";
  // The guest panics (panic=1) or powers off: the domain ends, as QEMU's
  // -no-reboot does for the QEMU backend.
  x += "  <on_poweroff>destroy</on_poweroff>\n";
  x += "  <on_reboot>destroy</on_reboot>\n";
  x += "  <on_crash>destroy</on_crash>\n";
  if (!dac_label.empty()) {
    x += "  <seclabel type='static' model='dac' relabel='no'><label>" + xml_escape(dac_label) +
         "</label></seclabel>\n";
  }
  x += "  <devices>\n";
  if (remote) {
    // On another host nothing is a file of kcr's: the console is a pty there, reached
    // through libvirt (virDomainOpenConsole), and libvirt picks the agent socket's path.
    x += "    <serial type='pty'>\n";
    x += "      <target port='0'/>\n";
    x += "    </serial>\n";
  } else {
    x += "    <serial type='unix'>\n";
    x += "      <source mode='bind' path='" + path(k_console_socket) + "'/>\n";
    x += "      <log file='" + path(k_serial_log) + "' append='off'/>\n";
    x += "      <target port='0'/>\n";
    x += "    </serial>\n";
  }
  // microvm has no PCI bus: no USB controller, the virtio-serial controller on virtio-mmio.
  x += "    <controller type='usb' model='none'/>\n";
  x +=
      "    <controller type='virtio-serial' index='0'><address type='virtio-mmio'/></controller>\n";
  x += "    <channel type='unix'>\n";
  x += remote ? std::string("      <source mode='bind'/>\n")
              : "      <source mode='bind' path='" + path(k_agent_socket) + "'/>\n";
  x += "      <target type='virtio' name='kcr.agent'/>\n";
  x += "      <address type='virtio-serial' controller='0' bus='0' port='1'/>\n";
  x += "    </channel>\n";
  // The data disks (vm/data_disk.hpp), as the QEMU backend attaches them: raw, an I/O error
  // reported to the guest rather than pausing it, found by the guest by their serials.
  if (data_disks && !remote) {  // files of the state directory: this host only
    for (std::size_t i = 0; i < spec.disks.size(); ++i) {
      const auto& disk = spec.disks[i];
      x += "    <disk type='file' device='disk'>\n";
      x += "      <driver name='qemu' type='raw' cache='writeback' error_policy='report' "
           "rerror_policy='report'/>\n";
      x += "      <source file='" + xml_escape(disk.path) + "'/>\n";
      x += "      <target dev='vd" + std::string(1, static_cast<char>('a' + i)) +
           "' bus='virtio'/>\n";
      x += "      <serial>" + xml_escape(disk.serial) + "</serial>\n";
      if (disk.read_only) x += "      <readonly/>\n";
      x += "      <address type='virtio-mmio'/>\n";
      x += "    </disk>\n";
    }
  }
  x += "    <memballoon model='none'/>\n";
  x += "  </devices>\n";
  // The migration link: the QEMU backend's own datagram NIC (net.sock, peer.sock), which
  // libvirt's interface types cannot spell, passed through to QEMU.
  if (!remote) {
    x += "  <qemu:commandline>\n";
    for (const auto& arg : link_args(spec)) {
      x += "    <qemu:arg value='" + xml_escape(arg) + "'/>\n";
    }
    x += "  </qemu:commandline>\n";
  }
  x += "</domain>\n";
  return x;
}

std::string LibvirtBackend::connect_uri(const std::string& requested) const {
  return requested.empty() ? k_libvirt_default_uri : requested;
}

std::string LibvirtBackend::version(const core::Config& cfg) {
  // The daemon's libvirt version only: virConnectGetVersion (QEMU's) takes
  // seconds on some hosts, and this is asked at every vm start.
  try {
    Connection c = open_connection(connect_uri(cfg.connect));
    unsigned long v = 0;
    if (virConnectGetLibVersion(c.get(), &v) != 0) return "unknown";
    return "libvirt " + std::to_string(v / 1000000) + "." + std::to_string(v / 1000 % 1000) + "." +
           std::to_string(v % 1000);
  } catch (const Error&) {
    return "unknown";
  }
}

pid_t LibvirtBackend::launch(const core::Config&, const VmStartOptions& options, Accel accel,
                             const std::string& dir) {
  std::string uri = connect_uri(options.connect);
  Connection c = open_connection(uri);
  std::string domain_name = libvirt_domain_name(options.name);
  if (Domain taken{virDomainLookupByName(c.get(), domain_name.c_str())}) {
    throw Error("a libvirt domain named '" + domain_name + "' already exists on " + uri,
                "it is not this VM's (another kcr state directory's, or someone else's): stop it "
                "(virsh -c " +
                    uri + " destroy " + domain_name + ") or pick another VM name",
                ExitCode::usage);
  }
  std::string uuid = new_uuid();
  // Written first: a kcr that dies mid-create leaves a domain the next command finds.
  core::write_file_atomic(in_dir(dir, k_uuid_file), uuid + "\n");
  // On a system daemon QEMU runs as kcr's own user and group, which own the
  // VM's private state directory; libvirt changes no file's owner.
  std::string dac_label;
  if (uri.size() >= 7 && uri.compare(uri.size() - 7, 7, "/system") == 0) {
    dac_label = "+" + std::to_string(::geteuid()) + ":+" + std::to_string(::getegid());
  }
  // The data disks are files in the state directory: only a daemon on this host opens them.
  const bool local = libvirt_uri_is_local(uri);
  const bool data_disks = local && !guest_spec(options, accel, dir).disks.empty();
  if (data_disks) create_data_disks(dir, options.memory_mib);
  VmStartOptions placed = options;
  if (!local) {
    // Another host boots the kernel and initrd from kcr's storage pool there, uploaded once
    // per image (named after its content).
    std::unique_ptr<virStoragePool, decltype(&virStoragePoolFree)> pool(kcr_storage_pool(c.get()),
                                                                        &virStoragePoolFree);
    std::string key = options.image_hash.empty() ? "vm-" + options.name
                                                 : "image-" + options.image_hash.substr(0, 16);
    if (options.image_hash.empty()) {
      // No content to name them by: uploaded again (without the mark upload_volume trusts).
      for (const char* part : {"-kernel.done", "-initrd.done"}) {
        if (virStorageVolPtr mark = virStorageVolLookupByName(pool.get(), (key + part).c_str())) {
          virStorageVolDelete(mark, 0);
          virStorageVolFree(mark);
        }
      }
    }
    placed.kernel = upload_volume(c.get(), pool.get(), key + "-kernel", options.kernel);
    placed.initrd = upload_volume(c.get(), pool.get(), key + "-initrd", options.initrd);
  }
  std::string xml = libvirt_domain_xml(placed, accel, dir, uuid, dac_label, data_disks, !local);
  core::log(core::LogLevel::debug, "libvirt domain XML:\n" + xml);
  Domain d(virDomainCreateXML(c.get(), xml.c_str(), VIR_DOMAIN_NONE));
  if (!d) {
    std::string msg = last_error();
    throw Error("libvirt did not start domain '" + domain_name + "' on " + uri + ": " + msg);
  }
  if (local) {
    for (const char* f : {k_agent_socket, k_console_socket, k_serial_log}) {
      ::chmod(in_dir(dir, f).c_str(), 0600);
    }
  }
  return local_qemu_pid(uri, domain_name);
}

bool LibvirtBackend::alive(const VmInfo& info) const {
  if (read_uuid(info.dir).empty()) return false;  // never created
  Connection c;
  try {
    c = open_connection(uri_of(info));
  } catch (const Error& e) {
    core::log(core::LogLevel::warn,
              std::string("VM '") + info.name + "': " + e.what() + "; taken for running");
    return true;
  }
  Domain d = find_domain(c.get(), info.dir);
  return d && active(d.get());
}

void LibvirtBackend::terminate(const VmInfo& info, bool ask_agent) {
  if (read_uuid(info.dir).empty()) return;
  Connection c;
  try {
    c = open_connection(uri_of(info));
  } catch (const Error& e) {
    core::log(core::LogLevel::warn, std::string("VM '") + info.name + "': " + e.what());
    return;
  }
  Domain d = find_domain(c.get(), info.dir);
  if (!d || !active(d.get())) return;
  if (ask_agent) {
    try {
      auto agent = connect_agent(info);
      proto::Request req;
      req.mutable_shutdown();
      agent->call(req, std::chrono::seconds(3));
      if (wait_inactive(c.get(), info.dir, std::chrono::seconds(3))) return;
    } catch (const Error&) {
    }
  }
  d = find_domain(c.get(), info.dir);
  if (!d || !active(d.get())) return;
  if (virDomainDestroy(d.get()) != 0) {
    core::log(core::LogLevel::warn,
              "VM '" + info.name + "': virDomainDestroy failed: " + last_error());
  }
  wait_inactive(c.get(), info.dir, std::chrono::seconds(5));
}

namespace {

// A stream to the agent's port (CONSOLE: the serial console) of the VM on another host,
// through libvirt, bridged to a socket.
UniqueFd open_remote_stream(const VmInfo& info, bool console,
                            std::shared_ptr<std::atomic<bool>> closed = nullptr) {
  const std::string what =
      (console ? "the serial console of VM '" : "the agent port of VM '") + info.name + "'";
  Connection c = open_connection(uri_of(info));
  Domain d = find_domain(c.get(), info.dir);
  if (!d || !active(d.get())) {
    throw Error("VM '" + info.name + "' does not run on " + uri_of(info) + ": no " + what);
  }
  virStreamPtr st = virStreamNew(c.get(), VIR_STREAM_NONBLOCK);
  if (!st) throw Error("cannot open " + what + ": " + last_error());
  // FORCE: a kcr that died left its stream open; kcr commands on a VM take turns (its lock).
  int rc = console ? virDomainOpenConsole(d.get(), nullptr, st, VIR_DOMAIN_CONSOLE_FORCE)
                   : virDomainOpenChannel(d.get(), "kcr.agent", st, VIR_DOMAIN_CHANNEL_FORCE);
  if (rc != 0) {
    std::string msg = last_error();
    virStreamFree(st);
    throw Error("cannot open " + what + " through libvirt at " + uri_of(info) + ": " + msg);
  }
  return bridge_libvirt_stream(c.get(), st, what, std::move(closed));
}

}  // namespace

std::unique_ptr<AgentChannel> LibvirtBackend::connect_agent(const VmInfo& info) {
  if (!libvirt_uri_is_local(uri_of(info))) {
    auto closed = std::make_shared<std::atomic<bool>>(false);
    auto client = std::make_unique<AgentClient>(open_remote_stream(info, false, closed));
    client->explain_close([closed, uri = uri_of(info)] {
      return *closed ? "the libvirt daemon at " + uri +
                           " went away (the connection to it closed); the VM may still run there"
                     : std::string();
    });
    return client;
  }
  return std::make_unique<AgentClient>(in_dir(info.dir, k_agent_socket));
}

UniqueFd LibvirtBackend::connect_console(const VmInfo& info) {
  if (!libvirt_uri_is_local(uri_of(info))) return open_remote_stream(info, true);
  return core::connect_unix(in_dir(info.dir, k_console_socket),
                            "the serial console of VM '" + info.name + "'");
}

std::string LibvirtBackend::keep_on_vm_host(const VmInfo& info, const std::string& name,
                                            const std::function<void(const std::string&)>& write) {
  if (libvirt_uri_is_local(uri_of(info))) return {};
  Connection c = open_connection(uri_of(info));
  std::unique_ptr<virStoragePool, decltype(&virStoragePoolFree)> pool(kcr_storage_pool(c.get()),
                                                                      &virStoragePoolFree);
  // Made in the VM's state directory on this host, gone once uploaded or failed.
  const std::string file = in_dir(info.dir, "keep.tmp");
  struct Remove {
    std::string path;
    ~Remove() { ::unlink(path.c_str()); }
  } remove{file};
  ::unlink(file.c_str());
  write(file);
  std::string path = upload_volume(c.get(), pool.get(), name, file, true);
  return "volume " + name + " of pool 'kcr' on " + uri_of(info) + " (" + path + ")";
}

std::string LibvirtBackend::serial_log_path(const VmInfo& info) const {
  if (!libvirt_uri_is_local(uri_of(info))) return {};
  return in_dir(info.dir, k_serial_log);
}

SaveResult LibvirtBackend::save(const VmInfo& info, const std::string&) {
  throw Error(
      "VM '" + info.name + "': saving a whole VM is not supported on the libvirt backend yet",
      "start the VM with --backend qemu for kcr vm save");
}

void LibvirtBackend::link(const VmInfo& a, const VmInfo& b) {
  // The link's sockets are files in the VMs' state directories: both QEMUs must run here.
  for (const VmInfo* v : {&a, &b}) {
    if (uri_of(*v).rfind("qemu:///", 0) != 0) {
      throw Error("VM '" + v->name + "' runs on libvirt at '" + uri_of(*v) +
                      "': a migration link (--lazy-pages) joins VMs on this host only",
                  "migrate to that host without --lazy-pages, or between VMs on this host");
    }
  }
  join_link_sockets(a, b);
}

}  // namespace kcr::vm
