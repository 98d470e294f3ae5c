#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/checkpoint_store.hpp"
#include "core/json.hpp"

namespace kcr::core {

// One dump's CRIU image files: the bytes of every image but the raw pages,
// and the size of each (pages included). Names are as in CRIU's images
// directory: "pstree.img", "pages-1.img".
struct ImageFiles {
  std::map<std::string, std::string> bytes;
  std::map<std::string, uint64_t> sizes;
  // A pre-dump round: its memory images over the final dump's others (a
  // pre-dump writes only inventory, pagemaps and pages).
  bool pre_dump = false;
};

// Which dump of a checkpoint: the final one (0), or pre-dump round K.
std::string dump_prefix(unsigned round);  // "images/" or "parents/K/images/"

// The images of ROUND of checkpoint M in STORE, read from disk (for a
// pre-dump round, its memory with the final dump's process tree and files).
ImageFiles load_store_images(const CheckpointStore& store, const CheckpointManifest& m,
                             unsigned round);
// The images of ROUND of the archive FILE, read while the whole archive is
// checked as import checks it (names, types, sizes, digests); *MANIFEST gets
// its manifest.
ImageFiles load_archive_images(const std::string& file, unsigned round,
                               CheckpointManifest* manifest);

struct InspectedFd {
  int fd = -1;
  std::string type;  // CRIU's: REG, PIPE, UNIXSK, INETSK, EVENTFD, ...
  uint32_t id = 0;   // the file's id in files.img
  std::string what;  // a path, pipe[ID], unix[INO], tcp 0.0.0.0:80 ...
};

struct InspectedMemory {
  uint64_t vmas = 0;
  uint64_t mapped_bytes = 0;  // sum of the vmas' sizes
  uint64_t dumped_pages = 0;  // pages this dump holds (pagemap entries not in a parent)
  uint64_t parent_pages = 0;  // pages left to a parent (pre-dump) image
};

struct InspectedProcess {
  uint32_t pid = 0, ppid = 0, pgid = 0, sid = 0;
  std::vector<uint32_t> threads;
  std::string comm;
  std::string state;  // alive, dead (zombie), stopped, ... (core's task_state)
  std::string cwd, root;
  std::vector<InspectedFd> fds;
  std::optional<InspectedMemory> memory;  // absent for a zombie
};

struct InspectedSocket {
  uint32_t id = 0, ino = 0;
  std::string family;       // unix, inet, inet6
  std::string type;         // stream, dgram, seqpacket, raw
  std::string state;        // listen, established, close, ...
  std::string local, peer;  // "0.0.0.0:80", a unix path, "@abstract"; peer ino for unix
  uint32_t peer_ino = 0;
};

struct InspectedMount {
  uint32_t mnt_id = 0, parent_mnt_id = 0;
  std::string mountpoint, root, fstype, source, options;
  bool external = false;
  std::string ext_key;
};

struct Inspection {
  unsigned img_version = 0;
  std::vector<InspectedProcess> processes;  // pstree order: the root first
  std::vector<InspectedSocket> sockets;
  std::vector<InspectedMount> mounts;
  uint64_t pages_bytes = 0;  // bytes of pages-*.img
  uint64_t image_bytes = 0;  // bytes of every image file
  std::optional<CriuDumpStats> stats;
};

// Reads the images: every size, id and string from them is bounded and
// checked; a missing or malformed image throws kcr::Error naming it.
Inspection inspect_images(const ImageFiles& images);

// The whole inspection as JSON (every number a JSON number).
Json inspection_json(const Inspection& in);

// What changed from A to B.
struct InspectionDiff {
  std::vector<InspectedProcess> added, removed;  // processes, by pid
  struct Changed {
    uint32_t pid = 0;
    std::string what;  // "comm sh -> sleep", "threads 1 -> 3", "state ..."
  };
  std::vector<Changed> changed;
  struct FdChange {
    uint32_t pid = 0;
    char sign = '+';  // + added, - removed, ~ now names another file
    InspectedFd fd;
    std::string before;  // for ~
  };
  std::vector<FdChange> fds;
  std::vector<InspectedSocket> sockets_added, sockets_removed;
  struct SocketChange {
    uint32_t ino = 0;
    std::string before, after;  // states
  };
  std::vector<SocketChange> sockets_changed;
  struct MemoryChange {
    uint32_t pid = 0;
    InspectedMemory before, after;
  };
  std::vector<MemoryChange> memory;  // processes in both whose memory differs
  bool empty() const;
};

InspectionDiff diff_inspections(const Inspection& a, const Inspection& b);
Json diff_json(const InspectionDiff& d);

}  // namespace kcr::core
