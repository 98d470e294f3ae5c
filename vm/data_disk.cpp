#include "vm/data_disk.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "core/error.hpp"
#include "core/log.hpp"

namespace kcr::vm {

std::uint64_t data_disk_bytes(std::uint64_t memory_mib) {
  return (2 * memory_mib + 64) << 20;
}

void create_data_disks(const std::string& dir, std::uint64_t memory_mib) {
  for (const char* file : {k_out_disk_file, k_in_disk_file}) {
    std::string path = dir + "/" + file;
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) throw_errno("create " + path);
    if (::ftruncate(fd.get(), static_cast<off_t>(data_disk_bytes(memory_mib))) != 0) {
      throw_errno("size " + path);
    }
  }
}

bool disk_range_fits(std::uint64_t offset, std::uint64_t length, std::uint64_t size,
                     std::uint64_t max_length) {
  return length <= max_length && offset <= size && length <= size - offset;
}

std::optional<DataDisk> DataDisk::open(const VmInfo& info, const char* file,
                                       std::uint64_t guest_bytes) {
  if (guest_bytes == 0) return std::nullopt;
  std::string path = info.dir + "/" + file;
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  // The guest sees whole 4 KiB blocks of the file.
  std::uint64_t size = static_cast<std::uint64_t>(st.st_size) / 4096 * 4096;
  if (size != guest_bytes) {
    core::log(core::LogLevel::debug, "VM '" + info.name + "': " + path + " has " +
                                         std::to_string(size) + " bytes, the guest says " +
                                         std::to_string(guest_bytes) + ": not used");
    return std::nullopt;
  }
  return DataDisk(std::move(fd), size, path);
}

void DataDisk::read(std::uint64_t offset, std::uint64_t length, std::string& buf) const {
  if (!disk_range_fits(offset, length, m_size, k_max_disk_range)) {
    throw Error("the guest named " + std::to_string(length) + " bytes at " +
                    std::to_string(offset) + " of its data disk, which has " +
                    std::to_string(m_size),
                "the guest is not behaving; nothing was stored from it");
  }
  buf.resize(length);
  std::uint64_t done = 0;
  while (done < length) {
    ssize_t n =
        ::pread(m_fd.get(), buf.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("read " + m_path);
    if (n == 0) throw Error(m_path + " ended inside a range the guest wrote");
    done += static_cast<std::uint64_t>(n);
  }
}

void DataDisk::write(std::uint64_t offset, const char* data, std::size_t n) {
  if (!disk_range_fits(offset, n, m_size, m_size)) {
    throw Error(std::to_string(n) + " bytes at " + std::to_string(offset) + " do not fit " +
                m_path);
  }
  std::size_t done = 0;
  while (done < n) {
    ssize_t w = ::pwrite(m_fd.get(), data + done, n - done, static_cast<off_t>(offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw_errno("write " + m_path);
    done += static_cast<std::size_t>(w);
  }
}

void DataDisk::release(std::uint64_t offset, std::uint64_t length) {
  if (!disk_range_fits(offset, length, m_size, m_size) || length == 0) return;
  std::uint64_t start = offset / 4096 * 4096;
  std::uint64_t end = std::min(m_size, (offset + length + 4095) / 4096 * 4096);
  ::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(start),
              static_cast<off_t>(end - start));
}

void DataDisk::clear() {
  ::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
              static_cast<off_t>(m_size));
}

}  // namespace kcr::vm
