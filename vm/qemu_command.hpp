#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vm/accel.hpp"

namespace kcr::vm {

// Everything needed to spell one QEMU microVM command line.
struct QemuSpec {
  std::string qemu = "qemu-system-x86_64";
  std::string name;
  std::string kernel;
  std::string initrd;
  std::string state_dir;  // sockets, pid file and serial log live here
  uint64_t memory_mib = 512;
  unsigned cpus = 1;
  Accel accel = Accel::tcg;
  std::optional<uint64_t> tsc_khz;  // passed as tsc_early_khz (guest.md: TCG boots hang without)
  // Under TCG the guest kernel is told to forget ERMS and REP_GOOD, so its memcpy, copy to and
  // from user space and page clearing use plain loops: TCG runs `rep movsb`/`rep stosb` one
  // byte per step, and those loops at the host's speed (ARCHITECTURE.md has the numbers).
  bool tcg_plain_copies = true;
  std::vector<std::string> extra_append;
  // Raw virtio-blk disks (vm/data_disk.hpp): each a file and the serial the guest finds it by.
  struct Disk {
    std::string path;
    std::string serial;
    bool read_only = false;  // the guest reads it only (a restore's images come in)
  };
  std::vector<Disk> disks;
};

// File names inside a VM's state directory.
inline constexpr const char* k_qmp_socket = "qmp.sock";
inline constexpr const char* k_agent_socket = "agent.sock";
inline constexpr const char* k_console_socket = "console.sock";
inline constexpr const char* k_serial_log = "serial.log";
inline constexpr const char* k_pid_file = "qemu.pid";
// The migration link: the VM's NIC sends datagrams to peer.sock (a symlink
// kcr points at another VM's net.sock) and receives on net.sock.
inline constexpr const char* k_net_socket = "net.sock";
inline constexpr const char* k_peer_socket = "peer.sock";

// A locally administered MAC address derived from the VM's name.
std::string mac_for(const std::string& name);

// The guest kernel command line for SPEC.
std::string kernel_cmdline(const QemuSpec& spec);

// QEMU's options for the VM's migration link NIC (net.sock, peer.sock): part of
// build_qemu_argv, and passed through by the libvirt backend's domain.
std::vector<std::string> link_args(const QemuSpec& spec);

// The full argv (argv[0] = spec.qemu) of a daemonizing microVM.
std::vector<std::string> build_qemu_argv(const QemuSpec& spec);

// The host's TSC frequency in kHz from /proc/cpuinfo text ("cpu MHz" of the
// first CPU), or nullopt when it cannot be read.
std::optional<uint64_t> parse_tsc_khz(const std::string& cpuinfo);

// Reads /proc/cpuinfo and returns parse_tsc_khz of it.
std::optional<uint64_t> host_tsc_khz();

}  // namespace kcr::vm
