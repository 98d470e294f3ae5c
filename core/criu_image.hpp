#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kcr::core {

// CRIU's image files (images v1.1): a u32 head magic (common, or service for
// stats and irmap-cache; inventory.img has none), the u32 magic of the
// image's kind, then entries, each a u32 size and a protobuf message of that
// size. Some kinds carry raw payload after an entry (pipe data, TCP queues);
// raw images (pages-N.img, the ip tool's dumps) have no magic at all.
inline constexpr uint32_t k_criu_common_magic = 0x54564319;
inline constexpr uint32_t k_criu_service_magic = 0x55105940;

// The most one entry may hold: CRIU's own entries are small (an mm entry with
// 65530 vmas is ~4 MB); anything larger is damage.
inline constexpr uint32_t k_criu_max_entry_bytes = 16u << 20;

struct CriuImageKind {
  uint32_t magic = 0;      // the kind's magic; 0: raw, no magic
  bool service = false;    // head magic is the service one (stats-*, irmap-cache)
  bool inventory = false;  // no head magic (inventory.img)
  // Entries run exactly to the end of the file, nothing else between.
  bool entries_only = false;
  std::string kind;  // "pstree", "core", "pages" (raw), ...
};

// What NAME (a file in a checkpoint's images directory, e.g. "core-12.img",
// "pages-1.img", "stats-dump") must be; nullopt for a name kcr does not know,
// whose head is only checked for the common magic.
std::optional<CriuImageKind> criu_image_kind(const std::string& name);

// Checks the head of image NAME and, for a kind whose entries run to the end,
// every entry's size; throws kcr::Error naming NAME and what is wrong. Raw
// images pass. The bytes are not trusted: every size is bounded first.
void check_criu_image(const std::string& name, std::string_view bytes);

// The entries of image NAME (of a kind with entries_only), in order, each a
// view into BYTES. Throws kcr::Error as check_criu_image does.
std::vector<std::string_view> criu_image_entries(const std::string& name, std::string_view bytes);

// The most of one dump's images (raw pages excluded) kept in memory to be
// checked or inspected.
inline constexpr uint64_t k_criu_images_max_bytes = uint64_t{256} << 20;

// Gathers CRIU image files as they stream in, chunk by chunk, and checks each
// once whole (check_criu_image). Kinds read entry by entry are kept whole, at
// most MAX_BYTES of them in all; of others only the head is kept, of raw
// images nothing.
class CriuImageCollector {
 public:
  explicit CriuImageCollector(uint64_t max_bytes = k_criu_images_max_bytes)
      : m_max_bytes(max_bytes) {}
  void data(const std::string& name, uint64_t offset, std::string_view bytes);
  // NAME arrived whole, SIZE bytes: checks it.
  void done(const std::string& name, uint64_t size);
  // The kept bytes and every file's size, by name.
  const std::map<std::string, std::string>& bytes() const { return m_bytes; }
  const std::map<std::string, uint64_t>& sizes() const { return m_sizes; }
  std::map<std::string, std::string> take_bytes() { return std::move(m_bytes); }

 private:
  uint64_t m_max_bytes;
  uint64_t m_kept = 0;
  std::map<std::string, std::string> m_bytes;
  std::map<std::string, uint64_t> m_sizes;
};

}  // namespace kcr::core
