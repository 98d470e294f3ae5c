#include "images/agent/data_disk.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "core/files.hpp"
#include "images/agent/log.hpp"
#include "images/agent/process.hpp"

namespace kcr::agent {

namespace {

// A mapping of part of a file, unmapped when it goes out of scope.
class Mapping {
 public:
  Mapping(int fd, std::uint64_t offset, std::uint64_t length, int prot)
      : m_length(length),
        m_addr(::mmap(nullptr, length, prot, MAP_SHARED, fd, static_cast<off_t>(offset))) {}
  ~Mapping() {
    if (m_addr != MAP_FAILED) ::munmap(m_addr, m_length);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  bool ok() const { return m_addr != MAP_FAILED; }
  char* data() const { return static_cast<char*>(m_addr); }

 private:
  std::uint64_t m_length;
  void* m_addr;
};

}  // namespace

DataDisk::DataDisk(std::string_view serial, bool writable) {
  DIR* dir = ::opendir("/sys/block");
  if (!dir) return;
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name.rfind("vd", 0) != 0) continue;
    if (read_first_line("/sys/block/" + name + "/serial") != serial) continue;
    m_device = "/dev/" + name;
    break;
  }
  ::closedir(dir);
  if (m_device.empty()) return;
  UniqueFd fd(::open(m_device.c_str(), (writable ? O_RDWR : O_RDONLY) | O_DIRECT | O_CLOEXEC));
  std::uint64_t size = 0;
  if (!fd || ::ioctl(fd.get(), BLKGETSIZE64, &size) != 0 || size < k_disk_align) {
    log_always("data disk " + std::string(serial) + " at " + m_device +
               " cannot be used: " + std::strerror(errno));
    return;
  }
  m_fd = std::move(fd);
  m_size = size / k_disk_align * k_disk_align;
  log_line("data disk " + std::string(serial) + " is " + m_device + ", " +
           std::to_string(m_size >> 20) + " MiB");
}

bool DataDisk::write_from(int fd, std::uint64_t file_offset, std::uint64_t length,
                          std::uint64_t disk_offset, const Bytes& each) {
  const std::uint64_t span = round_up_page(length);
  if (!present() || file_offset % k_disk_align || disk_offset % k_disk_align ||
      disk_offset > m_size || span > m_size - disk_offset) {
    return false;
  }
  Mapping map(fd, file_offset, span, PROT_READ);
  if (!map.ok()) {
    log_line("data disk: mmap: " + std::string(std::strerror(errno)));
    return false;
  }
  std::uint64_t done = 0;
  while (done < span) {
    ssize_t n = ::pwrite(m_fd.get(), map.data() + done, span - done,
                         static_cast<off_t>(disk_offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log_line("data disk " + m_device + ": write: " + std::strerror(errno));
      return false;
    }
    done += static_cast<std::uint64_t>(n);
  }
  // Only what reached the disk is hashed: after a failure the same bytes go inline.
  if (each) each(map.data(), length);
  return true;
}

void DataDisk::read_into(int fd, std::uint64_t file_offset, std::uint64_t length,
                         std::uint64_t disk_offset, const Bytes& each) {
  const std::uint64_t span = round_up_page(length);
  if (!present()) throw Error("this guest has no data disk for a restore");
  if (file_offset % k_disk_align || disk_offset % k_disk_align || length == 0 ||
      disk_offset > m_size || span > m_size - disk_offset) {
    throw Error("a range of the data disk (" + std::to_string(length) + " bytes at " +
                std::to_string(disk_offset) + ", file offset " + std::to_string(file_offset) +
                ") is misaligned or outside it");
  }
  if (int err =
          ::posix_fallocate(fd, static_cast<off_t>(file_offset), static_cast<off_t>(length))) {
    errno = err;
    if (err == ENOSPC) throw Error("not enough space in the guest to stage the checkpoint");
    throw_errno("fallocate");
  }
  Mapping map(fd, file_offset, span, PROT_READ | PROT_WRITE);
  if (!map.ok()) throw_errno("mmap");
  std::uint64_t done = 0;
  while (done < span) {
    ssize_t n =
        ::pread(m_fd.get(), map.data() + done, span - done, static_cast<off_t>(disk_offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("read " + m_device);
    if (n == 0) break;
    done += static_cast<std::uint64_t>(n);
  }
  if (done < length) throw Error("the data disk " + m_device + " ended before the range");
  if (each) each(map.data(), length);
}

}  // namespace kcr::agent
