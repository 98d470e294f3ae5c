#include "core/config.hpp"

#include <cctype>

#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <cstdlib>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::core {

uint64_t parse_memory_mib(const std::string& text) {
  auto bad = [&] {
    return Error("memory size '" + text + "' is not valid",
                 "give a size such as 512M or 1G (at least 128M)", ExitCode::usage);
  };
  if (text.empty()) throw bad();
  std::size_t pos = 0;
  uint64_t value = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    value = value * 10 + static_cast<uint64_t>(text[pos] - '0');
    if (value > (1ull << 40)) throw bad();
    ++pos;
  }
  if (pos == 0) throw bad();
  std::string suffix = text.substr(pos);
  if (suffix == "" || suffix == "M" || suffix == "m" || suffix == "MiB") {
  } else if (suffix == "G" || suffix == "g" || suffix == "GiB") {
    value *= 1024;
  } else {
    throw bad();
  }
  if (value < 128 || value > 64 * 1024) throw bad();
  return value;
}

uint64_t parse_memory_limit(const std::string& text, const std::string& option) {
  auto bad = [&] {
    return Error(option + " '" + text + "' is not a memory size",
                 "give a size such as 256m or 1g (at least 4m)", ExitCode::usage);
  };
  std::size_t pos = 0;
  uint64_t value = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    value = value * 10 + static_cast<uint64_t>(text[pos] - '0');
    if (value > (uint64_t{1} << 50)) throw bad();
    ++pos;
  }
  if (pos == 0 || text.size() - pos > 1) throw bad();
  char unit = pos < text.size() ? static_cast<char>(std::tolower(text[pos])) : 'b';
  int shift = unit == 'b' ? 0 : unit == 'k' ? 10 : unit == 'm' ? 20 : unit == 'g' ? 30 : -1;
  if (shift < 0) throw bad();
  value <<= shift;
  if (value < (uint64_t{4} << 20)) throw bad();
  return value;
}

namespace {

std::string home_dir() {
  const char* h = std::getenv("HOME");
  return h && *h ? h : "/root";
}

Config defaults() {
  Config c;
  if (::geteuid() == 0) {
    c.state_dir = "/run/kcr";
    c.cache_dir = "/var/cache/kcr";
    c.data_dir = "/var/lib/kcr";
  } else {
    const char* rt = std::getenv("XDG_RUNTIME_DIR");
    c.state_dir = rt && *rt ? std::string(rt) + "/kcr" : "/tmp/kcr-" + std::to_string(::getuid());
    c.cache_dir = home_dir() + "/.cache/kcr";
    c.data_dir = home_dir() + "/.local/share/kcr";
  }
  return c;
}

}  // namespace

namespace {

// "10.97.0.1/24" -> (address, prefix); throws kcr::Error naming TEXT.
std::pair<uint32_t, unsigned> parse_cidr(const std::string& what, const std::string& text) {
  unsigned a[4], prefix;
  char end;
  if (std::sscanf(text.c_str(), "%u.%u.%u.%u/%u%c", &a[0], &a[1], &a[2], &a[3], &prefix, &end) !=
          5 ||
      a[0] > 255 || a[1] > 255 || a[2] > 255 || a[3] > 255 || prefix < 8 || prefix > 30) {
    throw Error(what + " '" + text + "' is not an IPv4 address with a prefix length (8 to 30)",
                "write it like 10.97.0.1/24");
  }
  return {(a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3], prefix};
}

}  // namespace

void validate_migration_link(const MigrationLink& l) {
  auto [src, src_prefix] = parse_cidr("migration_link source", l.source);
  auto [dst, dst_prefix] = parse_cidr("migration_link destination", l.destination);
  uint32_t mask = ~uint32_t{0} << (32 - src_prefix);
  if (src_prefix != dst_prefix || (src & mask) != (dst & mask) || src == dst) {
    throw Error("migration_link source " + l.source + " and destination " + l.destination +
                    " must be two different addresses in one subnet",
                "for example source: 10.97.0.1/24, destination: 10.97.0.2/24");
  }
  if (l.port < 1 || l.port > 65535) {
    throw Error("migration_link port " + std::to_string(l.port) + " is not in 1..65535");
  }
}

Config parse_config(const std::string& yaml_text, const std::string& source_name, Config c) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw Error(
        "config " + source_name + ": line " + std::to_string(e.mark.line + 1) + ": " + e.msg,
        "fix the YAML syntax", ExitCode::usage);
  }
  if (root.IsNull()) return c;
  if (!root.IsMap()) {
    throw Error("config " + source_name + ": expected a mapping of settings at the top level",
                "write settings as 'key: value' lines", ExitCode::usage);
  }
  for (const auto& item : root) {
    if (!item.first.IsScalar()) {
      throw Error("config " + source_name + ": line " + std::to_string(item.first.Mark().line + 1) +
                      ": a setting's name must be a single word",
                  "write settings as 'key: value' lines", ExitCode::usage);
    }
    std::string key = item.first.as<std::string>();
    const YAML::Node& v = item.second;
    auto str = [&]() {
      if (!v.IsScalar()) {
        throw Error("config " + source_name + ": '" + key + "' must be a single value", {},
                    ExitCode::usage);
      }
      return v.as<std::string>();
    };
    try {
      if (key == "state_dir")
        c.state_dir = str();
      else if (key == "cache_dir")
        c.cache_dir = str();
      else if (key == "data_dir")
        c.data_dir = str();
      else if (key == "qemu")
        c.qemu = str();
      else if (key == "image")
        c.image = str();
      else if (key == "memory")
        c.memory_mib = parse_memory_mib(str());
      else if (key == "cpus") {
        c.cpus = v.as<unsigned>();
        if (c.cpus < 1 || c.cpus > 64) throw Error("cpus must be between 1 and 64");
      } else if (key == "boot_timeout") {
        c.boot_timeout_s = v.as<unsigned>();
        if (c.boot_timeout_s < 1) throw Error("boot_timeout must be at least 1 second");
      } else if (key == "accel") {
        c.accel = str();
        if (c.accel != "auto" && c.accel != "kvm" && c.accel != "tcg") {
          throw Error("accel must be auto, kvm or tcg, not '" + c.accel + "'");
        }
      } else if (key == "backend") {
        c.backend = str();
      } else if (key == "connect") {
        c.connect = str();
      } else if (key == "migration_link") {
        if (!v.IsMap()) throw Error("migration_link must be a mapping (source, destination, port)");
        for (const auto& f : v) {
          std::string sub = f.first.as<std::string>();
          if (sub == "source")
            c.migration_link.source = f.second.as<std::string>();
          else if (sub == "destination")
            c.migration_link.destination = f.second.as<std::string>();
          else if (sub == "port")
            c.migration_link.port = f.second.as<unsigned>();
          else
            throw Error("unknown setting 'migration_link." + sub + "'");
        }
        validate_migration_link(c.migration_link);
      } else {
        throw Error("unknown setting '" + key + "'");
      }
    } catch (const YAML::Exception& e) {
      throw Error("config " + source_name + ": '" + key + "': " + e.msg, {}, ExitCode::usage);
    } catch (const Error& e) {
      throw Error(
          "config " + source_name + ": " + e.what(),
          "known settings: state_dir, cache_dir, data_dir, qemu, image, memory, cpus, "
          "boot_timeout, accel, backend, connect, migration_link (source, destination, port)",
          ExitCode::usage);
    }
  }
  return c;
}

Config load_config(const std::string& explicit_path) {
  Config c = defaults();
  std::string path = explicit_path;
  bool required = !path.empty();
  if (path.empty()) {
    if (const char* env = std::getenv("KCR_CONFIG"); env && *env) {
      path = env;
      required = true;
    } else {
      path = "/etc/kcr/config.yaml";
    }
  }
  if (auto text = try_read_file(path)) {
    c = parse_config(*text, path, c);
  } else if (required) {
    throw Error("config file " + path + " cannot be read", "check the path given to --config",
                ExitCode::usage);
  }
  if (const char* v = std::getenv("KCR_STATE_DIR"); v && *v) c.state_dir = v;
  if (const char* v = std::getenv("KCR_CACHE_DIR"); v && *v) c.cache_dir = v;
  if (const char* v = std::getenv("KCR_DATA_DIR"); v && *v) c.data_dir = v;
  if (const char* v = std::getenv("KCR_BACKEND"); v && *v) c.backend = v;
  if (const char* v = std::getenv("KCR_CONNECT"); v && *v) c.connect = v;
  return c;
}

}  // namespace kcr::core
