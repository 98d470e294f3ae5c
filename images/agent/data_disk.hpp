#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "core/unique_fd.hpp"

namespace kcr::agent {

// The guest side of a data disk: a raw virtio-blk device the host attached at VM start, found by
// its serial ("kcr-out": checkpoint images to the host; "kcr-in": images for a restore from the
// host). No filesystem: the agent writes or reads byte ranges with O_DIRECT straight from or
// into a mapping of the image file, so under TCG no guest CPU copies the bytes, and tells the
// host (or is told) where they are over the agent's port.
class DataDisk {
 public:
  // Sees the bytes of a range, in the mapping (to hash them).
  using Bytes = std::function<void(const char*, std::size_t)>;

  // Opens the disk whose serial is SERIAL, if the guest has one (for writing when WRITABLE: the
  // in disk is read-only to the guest); otherwise the disk is absent.
  DataDisk(std::string_view serial, bool writable);

  // A disk over an open file of SIZE bytes (a multiple of 4096) named NAME: what the unit tests
  // stand in for the device with.
  DataDisk(UniqueFd fd, std::uint64_t size, std::string name)
      : m_fd(std::move(fd)), m_size(size), m_device(std::move(name)) {}

  bool present() const { return static_cast<bool>(m_fd); }
  std::uint64_t size() const { return m_size; }

  // Writes LENGTH bytes of FD from FILE_OFFSET to the disk at DISK_OFFSET, both multiples of
  // 4096, LENGTH rounded up to a page (the tail of the file's last page goes with it); EACH then
  // sees the bytes. Returns false on an I/O error (a host disk that is full, say), logged, and
  // EACH saw nothing: the caller sends the same bytes inline.
  bool write_from(int fd, std::uint64_t file_offset, std::uint64_t length,
                  std::uint64_t disk_offset, const Bytes& each);

  // Reads LENGTH bytes at DISK_OFFSET (a multiple of 4096) into FD at FILE_OFFSET (a multiple of
  // 4096), allocating the file up to FILE_OFFSET + LENGTH first (a full tmpfs is ENOSPC here, not a
  // fault in the mapping); EACH sees the bytes. Throws
  // kcr::Error naming what failed.
  void read_into(int fd, std::uint64_t file_offset, std::uint64_t length, std::uint64_t disk_offset,
                 const Bytes& each);

 private:
  UniqueFd m_fd;
  std::uint64_t m_size = 0;
  std::string m_device;
};

inline constexpr std::uint64_t k_disk_align = 4096;

inline std::uint64_t round_up_page(std::uint64_t n) {
  return (n + k_disk_align - 1) / k_disk_align * k_disk_align;
}

}  // namespace kcr::agent
