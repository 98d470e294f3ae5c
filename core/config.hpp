#pragma once

#include <cstdint>
#include <string>

namespace kcr::core {

// The VM-to-VM link a post-copy migration's page server travels over: the
// guests' own addresses on it (IPv4 with a prefix length) and the port.
struct MigrationLink {
  std::string source = "10.97.0.1/24";
  std::string destination = "10.97.0.2/24";
  unsigned port = 7077;

  // The source's address without its prefix length ("10.97.0.1").
  std::string source_host() const { return source.substr(0, source.find('/')); }
};

// Throws kcr::Error unless L's addresses are IPv4 with a prefix length, in
// one subnet, different, and its port is in 1..65535.
void validate_migration_link(const MigrationLink& l);

// Settings that apply to every command. Sources, later winning: built-in
// defaults, the YAML file (--config, $KCR_CONFIG, /etc/kcr/config.yaml), then
// the KCR_STATE_DIR / KCR_CACHE_DIR / KCR_DATA_DIR / KCR_BACKEND / KCR_CONNECT
// environment variables.
struct Config {
  std::string state_dir;  // running VMs: sockets, pid files, serial logs
  std::string cache_dir;  // guest images and downloaded packages
  std::string data_dir;   // checkpoints
  std::string qemu = "qemu-system-x86_64";
  std::string image = "default";  // guest image a VM boots unless --image says otherwise
  uint64_t memory_mib = 512;
  unsigned cpus = 1;
  unsigned boot_timeout_s = 60;  // TCG boots take seconds; allow a slow, shared machine
  std::string accel = "auto";    // auto | kvm | tcg
  std::string backend = "qemu";  // the VM backend new VMs use (vm/backend.hpp: qemu, libvirt)
  std::string connect;           // the libvirt backend's connection URI; empty: qemu:///system
  MigrationLink migration_link;
};

// Parses a YAML config document; throws kcr::Error (ExitCode::usage) naming
// the file, the key and what is wrong.
Config parse_config(const std::string& yaml_text, const std::string& source_name, Config base);

// Loads the effective configuration. EXPLICIT_PATH (from --config) must exist;
// the default locations are optional.
Config load_config(const std::string& explicit_path = {});

// Parses a memory size such as "512M", "1G", "1024" (MiB); throws on nonsense.
uint64_t parse_memory_mib(const std::string& text);

// Parses a byte size as podman's --memory takes it: digits with an optional
// b, k, m or g (binary units, either case; "256m" is 256 MiB); at least 4 MiB,
// as the kernel needs. Throws kcr::Error (usage) naming OPTION.
uint64_t parse_memory_limit(const std::string& text, const std::string& option);

}  // namespace kcr::core
