#include "vm/qemu_command.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::vm {

std::string kernel_cmdline(const QemuSpec& spec) {
  // panic=1 with -no-reboot turns a guest panic (the agent, PID 1, dying)
  // into QEMU exiting, which kcr notices, instead of a hung VM.
  std::string line = "console=ttyS0 panic=1 rdinit=/init";
  if (spec.tsc_khz) line += " tsc_early_khz=" + std::to_string(*spec.tsc_khz);
  if (spec.accel == Accel::tcg && spec.tcg_plain_copies) line += " clearcpuid=erms,rep_good";
  for (const auto& extra : spec.extra_append) line += " " + extra;
  return line;
}

std::string mac_for(const std::string& name) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  char buf[32];
  std::snprintf(buf, sizeof buf, "52:54:%02x:%02x:%02x:%02x", static_cast<unsigned>(h & 0xff),
                static_cast<unsigned>((h >> 8) & 0xff), static_cast<unsigned>((h >> 16) & 0xff),
                static_cast<unsigned>((h >> 24) & 0xff));
  return buf;
}

std::vector<std::string> link_args(const QemuSpec& spec) {
  auto in_state = [&](const char* file) { return spec.state_dir + "/" + file; };
  // The migration link (lazy-pages): no host network, no bridge.
  return {"-netdev",
          "dgram,id=link0,local.type=unix,local.path=" + in_state(k_net_socket) +
              ",remote.type=unix,remote.path=" + in_state(k_peer_socket),
          "-device", "virtio-net-device,netdev=link0,mac=" + mac_for(spec.name)};
}

std::vector<std::string> build_qemu_argv(const QemuSpec& spec) {
  auto in_state = [&](const char* file) { return spec.state_dir + "/" + file; };
  std::vector<std::string> argv = {
      spec.qemu,
      "-name",
      spec.name,
      "-M",
      "microvm",
      "-accel",
      to_string(spec.accel),
      "-cpu",
      spec.accel == Accel::kvm ? "host" : "max",
      "-m",
      std::to_string(spec.memory_mib) + "M",
      "-smp",
      std::to_string(spec.cpus),
      "-nodefaults",
      "-no-user-config",
      "-display",
      "none",
      "-no-reboot",
      "-kernel",
      spec.kernel,
      "-initrd",
      spec.initrd,
      "-append",
      kernel_cmdline(spec),
      "-chardev",
      "socket,id=con0,path=" + in_state(k_console_socket) +
          ",server=on,wait=off,logfile=" + in_state(k_serial_log),
      "-serial",
      "chardev:con0",
      "-chardev",
      "socket,id=qmp0,path=" + in_state(k_qmp_socket) + ",server=on,wait=off",
      "-mon",
      "chardev=qmp0,mode=control",
      "-device",
      "virtio-serial-device",
      "-chardev",
      "socket,id=agent0,path=" + in_state(k_agent_socket) + ",server=on,wait=off",
      "-device",
      "virtserialport,chardev=agent0,name=kcr.agent",
      "-pidfile",
      in_state(k_pid_file),
      "-daemonize",
  };
  auto link = link_args(spec);
  argv.insert(argv.end(), link.begin(), link.end());
  for (std::size_t i = 0; i < spec.disks.size(); ++i) {
    // QEMU's option syntax doubles a comma inside a value. An I/O error (the host's disk full)
    // goes to the guest, which then sends through the port, rather than pausing the VM.
    std::string file;
    for (char c : spec.disks[i].path) file += c == ',' ? std::string(",,") : std::string(1, c);
    std::string id = "data" + std::to_string(i);
    argv.insert(argv.end(),
                {"-drive",
                 "file=" + file + ",if=none,id=" + id +
                     ",format=raw,cache=writeback,werror=report,rerror=report" +
                     (spec.disks[i].read_only ? ",readonly=on" : ""),
                 "-device", "virtio-blk-device,drive=" + id + ",serial=" + spec.disks[i].serial});
  }
  return argv;
}

std::optional<uint64_t> parse_tsc_khz(const std::string& cpuinfo) {
  std::istringstream in(cpuinfo);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu MHz", 0) != 0) continue;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    try {
      double mhz = std::stod(line.substr(colon + 1));
      if (mhz < 100 || mhz > 100000) return std::nullopt;
      return static_cast<uint64_t>(mhz * 1000.0 + 0.5);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> host_tsc_khz() {
  return parse_tsc_khz(core::try_read_file("/proc/cpuinfo", 1 << 20).value_or(""));
}

}  // namespace kcr::vm
