#include "vm/rootfs.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <deque>

#include "core/checksum64.hpp"
#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace kcr::vm {

namespace {

constexpr std::size_t k_chunk = 1 << 20;
constexpr std::size_t k_window = 4;
constexpr auto k_chunk_timeout = std::chrono::seconds(120);

std::string tar_of(const core::Config& cfg, const std::string& digest) {
  return rootfs_store_dir(cfg) + "/" + digest.substr(7) + ".tar";
}

}  // namespace

std::string rootfs_store_dir(const core::Config& cfg) {
  return cfg.data_dir + "/rootfs";
}

core::RootfsBase import_rootfs(const core::Config& cfg, const std::string& path,
                               const core::OnTransfer& on_transfer) {
  core::TransferMeter meter(on_transfer, "root filesystem " + path, "read", 0);
  uint64_t seen = 0;
  return core::import_rootfs_base(path, rootfs_store_dir(cfg), {}, [&](uint64_t done) {
    if (done > seen) meter.add(done - seen);
    seen = std::max(seen, done);
  });
}

std::string base_for_restore(const core::Config& cfg, const std::string& digest,
                             const std::string& rootfs_path, const std::string& owner,
                             const core::OnTransfer& on_transfer) {
  if (!core::is_rootfs_digest(digest)) {
    throw Error(owner + " names a malformed root filesystem digest");
  }
  if (!rootfs_path.empty()) {
    core::RootfsBase given = import_rootfs(cfg, rootfs_path, on_transfer);
    if (given.digest != digest) {
      throw Error("the root filesystem " + rootfs_path + " is not the one " + owner +
                      " was made on: its digest is " + given.digest + ", the checkpoint's " +
                      digest,
                  "give the same root filesystem the workload ran on", ExitCode::usage);
    }
    return given.tar_path;
  }
  std::string tar = tar_of(cfg, digest);
  struct stat st {};
  if (::stat(tar.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    throw Error(owner + " runs on the root filesystem " + digest + ", which is not on this host",
                "give it: kcr restore ... --rootfs DIR|TAR (the one the workload ran on)",
                ExitCode::usage);
  }
  return tar;
}

void put_base(VmSession& session, const std::string& digest, const std::string& tar_path,
              const core::OnTransfer& on_transfer) {
  UniqueFd fd(::open(tar_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("open " + tar_path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("stat " + tar_path);
  const auto total = static_cast<uint64_t>(st.st_size);

  proto::Request first;
  first.mutable_put_base()->set_digest(digest);
  first.mutable_put_base()->set_total_bytes(total);
  if (session.call(first, k_chunk_timeout).put_base().present()) return;

  core::TransferMeter meter(on_transfer, "root filesystem to VM '" + session.info().name + "'",
                            "sent", total);
  core::Checksum64 sum;
  std::deque<uint64_t> in_flight;
  std::string buf(k_chunk, '\0');
  uint64_t offset = 0;
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("read " + tar_path);
    if (n == 0 && offset < total) throw Error(tar_path + " got shorter while it was sent");
    sum.update(buf.data(), static_cast<std::size_t>(n));
    bool last = offset + static_cast<uint64_t>(n) >= total;
    proto::Request req;
    auto* p = req.mutable_put_base();
    p->set_digest(digest);
    p->set_offset(offset);
    p->set_total_bytes(total);
    p->set_data(buf.data(), static_cast<std::size_t>(n));
    if (last) {
      p->set_last(true);
      p->set_checksum64(sum.hex_digest());
    }
    in_flight.push_back(session.agent().send(req));
    if (in_flight.size() >= k_window) {
      session.agent().await(in_flight.front(), k_chunk_timeout);
      in_flight.pop_front();
    }
    offset += static_cast<uint64_t>(n);
    meter.add(static_cast<uint64_t>(n));
    if (last) break;
  }
  // The last reply comes once the guest's tar has extracted everything.
  for (uint64_t id : in_flight) session.agent().await(id, std::chrono::minutes(10));
}

}  // namespace kcr::vm
