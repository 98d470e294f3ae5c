#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/unique_fd.hpp"
#include "vm/vm.hpp"

namespace kcr::vm {

// A VM's data disks: raw files in its state directory, each a virtio-blk device of the guest,
// that carry checkpoint images past the agent's port. "out.img" (serial "kcr-out") takes a
// checkpoint's images from the guest; "in.img" ("kcr-in") brings a restore's in. The guest's
// agent writes (or reads) byte ranges with O_DIRECT and says where over the port; no filesystem
// is on them, so the host parses nothing of the guest's but a range it checks against the
// file's size. Both are sparse and given back to the host's filesystem after each use. A VM
// started with KCR_DATA_DISKS=0, or whose guest did not find them, moves everything through
// the port as before.
inline constexpr const char* k_out_disk_file = "out.img";
inline constexpr const char* k_in_disk_file = "in.img";
inline constexpr const char* k_out_disk_serial = "kcr-out";
inline constexpr const char* k_in_disk_serial = "kcr-in";

// Each disk holds one round of a checkpoint (at most the guest's memory, and files CRIU rewrote)
// or one restore's images: twice the memory and 64 MiB, sparse.
std::uint64_t data_disk_bytes(std::uint64_t memory_mib);

// Creates both disks (sparse, mode 0600) in DIR for a VM of MEMORY_MIB.
void create_data_disks(const std::string& dir, std::uint64_t memory_mib);

// True when [offset, offset + length) lies inside a disk of SIZE bytes and LENGTH is at most
// MAX_LENGTH: the guest names the ranges, so the host checks every one before it reads.
bool disk_range_fits(std::uint64_t offset, std::uint64_t length, std::uint64_t size,
                     std::uint64_t max_length);

// The largest range one FileChunk may name (the agent sends 16 MiB).
inline constexpr std::uint64_t k_max_disk_range = 64ull << 20;

class DataDisk {
 public:
  // The disk FILE of the VM, when its state directory has it and the guest found one of the
  // same size (GUEST_BYTES, from the hello); nullopt otherwise.
  static std::optional<DataDisk> open(const VmInfo& info, const char* file,
                                      std::uint64_t guest_bytes);

  std::uint64_t size() const { return m_size; }

  // Reads the range the guest named into BUF, checked first; throws kcr::Error.
  void read(std::uint64_t offset, std::uint64_t length, std::string& buf) const;

  // Writes N bytes at OFFSET; throws kcr::Error.
  void write(std::uint64_t offset, const char* data, std::size_t n);

  // Gives the disk's blocks back to the host's filesystem (best effort): all of them, or the
  // pages holding [offset, offset + length) once what is there was read.
  void clear();
  void release(std::uint64_t offset, std::uint64_t length);

 private:
  DataDisk(UniqueFd fd, std::uint64_t size, std::string path)
      : m_fd(std::move(fd)), m_size(size), m_path(std::move(path)) {}
  UniqueFd m_fd;
  std::uint64_t m_size = 0;
  std::string m_path;
};

}  // namespace kcr::vm
