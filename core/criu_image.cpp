#include "core/criu_image.hpp"

#include <cstring>

#include "core/criu_stats.hpp"
#include "core/error.hpp"

namespace kcr::core {

namespace {

// Magics from the image format's description (criu/include/magic.h).
struct Known {
  const char* stem;  // "pstree" for pstree.img, "core-" for core-N.img
  uint32_t magic;
  bool entries_only;
};

// Images named STEM.img.
constexpr Known k_single[] = {
    {"pstree", 0x50273030, true},      {"files", 0x56303138, true},
    {"seccomp", 0x64413049, true},     {"cgroup", 0x59383330, true},
    {"cpuinfo", 0x61404013, true},     {"remap-fpath", 0x59133954, true},
    {"file-locks", 0x54323616, true},  {"tty-info", 0x59453036, true},
    {"pipes-data", 0x56453709, false}, {"fifo-data", 0x59333054, false},
    {"sk-queues", 0x56264026, false},  {"tty-data", 0x59413026, false},
};

// Images named STEM-N.img.
constexpr Known k_numbered[] = {
    {"core-", 0x55053847, true},
    {"ids-", 0x54432030, true},
    {"mm-", 0x57492820, true},
    {"pagemap-", 0x56084025, true},
    {"pagemap-shmem-", 0x56084025, true},
    {"fdinfo-", 0x56213732, true},
    {"fs-", 0x51403912, true},
    {"mountpoints-", 0x55563928, true},
    {"utsns-", 0x54473203, true},
    {"ipcns-var-", 0x53115007, true},
    {"timens-", 0x43114433, true},
    {"userns-", 0x55474906, true},
    {"netdev-", 0x57373951, true},
    {"netns-", 0x55933752, true},
    {"tcp-stream-", 0x51465506, false},
    {"ipcns-shm-", 0x46283044, false},
    {"ipcns-msg-", 0x55453737, false},
    {"ipcns-sem-", 0x59573019, false},
    {"ghost-file-", 0x52583605, false},
};

// Raw images: no magic, not CRIU's framing (pages, the ip tool's dumps,
// tarballs of tmpfs).
constexpr const char* k_raw_numbered[] = {
    "pages-",     "ifaddr-",   "route-",    "route6-",    "rule-",      "iptables-",
    "ip6tables-", "nftables-", "netns-ct-", "netns-exp-", "tmpfs-dev-", "tmpfs-",
};

constexpr uint32_t k_inventory_magic = 0x58313116;
constexpr uint32_t k_irmap_magic = 0x57004059;

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// NAME is STEM + digits + ".img".
bool numbered(const std::string& name, std::string_view stem) {
  std::string_view n(name);
  if (n.size() <= stem.size() + 4 || n.substr(0, stem.size()) != stem) return false;
  if (n.substr(n.size() - 4) != ".img") return false;
  return all_digits(n.substr(stem.size(), n.size() - stem.size() - 4));
}

uint32_t u32_at(std::string_view b, std::size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;  // CRIU images are little-endian, as x86_64 is
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%#010x", v);
  return buf;
}

[[noreturn]] void bad_image(const std::string& name, const std::string& why) {
  throw Error("CRIU image " + name + " " + why, "the checkpoint is damaged or not made by CRIU");
}

// Where the entries of NAME start, after checking its magics.
std::size_t check_head(const std::string& name, std::string_view bytes, const CriuImageKind& k) {
  std::size_t at = 0;
  if (!k.inventory) {
    if (bytes.size() < 4)
      bad_image(name, "is too short for its magic (" + std::to_string(bytes.size()) + " bytes)");
    uint32_t head = u32_at(bytes, 0);
    uint32_t want = k.service ? k_criu_service_magic : k_criu_common_magic;
    if (head != want)
      bad_image(name, "starts with " + hex(head) + ", not CRIU's magic " + hex(want));
    at = 4;
  }
  if (bytes.size() < at + 4) bad_image(name, "ends before its " + k.kind + " magic");
  uint32_t magic = u32_at(bytes, at);
  if (magic != k.magic) {
    bad_image(name,
              "has magic " + hex(magic) + " where a " + k.kind + " image has " + hex(k.magic));
  }
  return at + 4;
}

// Splits BYTES from AT into entries; with ALL, they must end exactly at the end.
std::vector<std::string_view> split(const std::string& name, std::string_view bytes,
                                    std::size_t at) {
  std::vector<std::string_view> out;
  while (at < bytes.size()) {
    if (bytes.size() - at < 4)
      bad_image(name, "ends inside an entry's size (offset " + std::to_string(at) + ")");
    uint32_t size = u32_at(bytes, at);
    at += 4;
    if (size > k_criu_max_entry_bytes) {
      bad_image(name, "has an entry of " + std::to_string(size) + " bytes at offset " +
                          std::to_string(at - 4) + " (at most " +
                          std::to_string(k_criu_max_entry_bytes) + ")");
    }
    if (size > bytes.size() - at) {
      bad_image(name, "is truncated: an entry of " + std::to_string(size) + " bytes at offset " +
                          std::to_string(at - 4) + " runs past its end (" +
                          std::to_string(bytes.size()) + " bytes)");
    }
    out.push_back(bytes.substr(at, size));
    at += size;
  }
  return out;
}

}  // namespace

std::optional<CriuImageKind> criu_image_kind(const std::string& name) {
  CriuImageKind k;
  if (name == "inventory.img") {
    k.magic = k_inventory_magic;
    k.inventory = true;
    k.entries_only = true;
    k.kind = "inventory";
    return k;
  }
  if (name == "stats-dump" || name == "stats-restore" || name == "irmap-cache") {
    k.magic = name == "irmap-cache" ? k_irmap_magic : k_stats_magic;
    k.service = true;
    k.entries_only = true;
    k.kind = name == "irmap-cache" ? "irmap-cache" : "stats";
    return k;
  }
  for (const auto& s : k_single) {
    if (name == std::string(s.stem) + ".img") {
      k.magic = s.magic;
      k.entries_only = s.entries_only;
      k.kind = s.stem;
      return k;
    }
  }
  for (const auto& s : k_numbered) {
    if (numbered(name, s.stem)) {
      k.magic = s.magic;
      k.entries_only = s.entries_only;
      k.kind = std::string(s.stem, std::strlen(s.stem) - 1);
      return k;
    }
  }
  for (const char* stem : k_raw_numbered) {
    std::string_view n(name);
    if (n.substr(0, std::strlen(stem)) == stem && n.size() > std::strlen(stem)) {
      k.kind = std::string(stem, std::strlen(stem) - 1);
      return k;  // magic 0: raw
    }
  }
  return std::nullopt;
}

void check_criu_image(const std::string& name, std::string_view bytes) {
  auto k = criu_image_kind(name);
  if (!k || k->magic == 0) return;
  std::size_t at = check_head(name, bytes, *k);
  if (k->entries_only) split(name, bytes, at);
}

std::vector<std::string_view> criu_image_entries(const std::string& name, std::string_view bytes) {
  auto k = criu_image_kind(name);
  if (!k || k->magic == 0 || !k->entries_only) {
    throw Error("CRIU image " + name + " is not one kcr reads entry by entry");
  }
  return split(name, bytes, check_head(name, bytes, *k));
}

void CriuImageCollector::data(const std::string& name, uint64_t offset, std::string_view bytes) {
  auto k = criu_image_kind(name);
  if (k && k->magic == 0) return;  // raw: nothing to check
  std::string& kept = m_bytes[name];
  if (!k || !k->entries_only) {
    // Only the magics are checked: keep the first 8 bytes.
    if (offset < 8 && offset == kept.size()) kept.append(bytes.substr(0, 8 - offset));
    return;
  }
  if (offset != kept.size()) throw Error("CRIU image " + name + " arrived out of order");
  if (bytes.size() > m_max_bytes - m_kept) {
    throw Error("the CRIU images hold more than " + std::to_string(m_max_bytes >> 20) +
                    " MiB besides memory pages (at " + name + ")",
                "the checkpoint is damaged or not made by CRIU");
  }
  m_kept += bytes.size();
  kept.append(bytes);
}

void CriuImageCollector::done(const std::string& name, uint64_t size) {
  m_sizes[name] = size;
  auto it = m_bytes.find(name);
  if (it == m_bytes.end()) {
    auto k = criu_image_kind(name);
    if (k && k->magic == 0) return;
    it = m_bytes.emplace(name, std::string()).first;  // an empty file: its check names it
  }
  check_criu_image(name, it->second);
}

}  // namespace kcr::core
