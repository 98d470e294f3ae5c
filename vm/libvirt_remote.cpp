#include "vm/libvirt_remote.hpp"

#include <fcntl.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/format.hpp"
#include "core/log.hpp"

namespace kcr::vm {

namespace {

std::string last_error() {
  const char* m = virGetLastErrorMessage();
  return m && *m ? m : "unknown libvirt error";
}

struct VolFreer {
  void operator()(virStorageVolPtr v) const { virStorageVolFree(v); }
};
using Volume = std::unique_ptr<virStorageVol, VolFreer>;
struct StreamFreer {
  void operator()(virStreamPtr s) const { virStreamFree(s); }
};
using Stream = std::unique_ptr<virStream, StreamFreer>;

// Sends all of DATA on a non-blocking stream; false when the stream failed or the
// connection under it closed (a stream of a dead connection can stay "full" forever).
bool stream_send_all(virStreamPtr st, const char* data, std::size_t n,
                     const std::atomic<bool>& closed) {
  while (n > 0) {
    if (closed) return false;
    int s = virStreamSend(st, data, n);
    if (s == -2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    if (s < 0) return false;
    data += s;
    n -= static_cast<std::size_t>(s);
  }
  return true;
}

// Relays FD and ST both ways until either ends or the connection closes
// (CLOSED). The stream is non-blocking and libvirt's event loop fills it: an
// idle relay looks every 2 ms.
void relay(virStreamPtr st, int fd, const std::string& what, const std::atomic<bool>& closed) {
  std::vector<char> in(64 * 1024), out(64 * 1024);
  bool remote_ended = false;
  for (;;) {
    if (closed) {
      core::log(core::LogLevel::debug, what + ": the libvirt connection closed");
      break;
    }
    bool busy = false;
    int n = virStreamRecv(st, in.data(), in.size());
    if (n > 0) {
      if (!core::write_all(fd, {in.data(), static_cast<std::size_t>(n)})) break;
      busy = true;
    } else if (n == 0) {
      remote_ended = true;
      break;
    } else if (n == -1) {
      core::log(core::LogLevel::debug, what + ": libvirt stream failed: " + last_error());
      break;
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, busy ? 0 : 2);
    if (r > 0) {
      ssize_t m = ::read(fd, out.data(), out.size());
      if (m < 0 && errno == EINTR) continue;
      if (m <= 0) break;  // kcr closed its end
      if (!stream_send_all(st, out.data(), static_cast<std::size_t>(m), closed)) {
        core::log(core::LogLevel::debug, what + ": libvirt stream failed: " + last_error());
        break;
      }
    }
  }
  if (remote_ended) {
    virStreamFinish(st);
  } else {
    virStreamAbort(st);
  }
}

using ClosedFlag = std::shared_ptr<std::atomic<bool>>;

void on_connection_closed(virConnectPtr, int, void* opaque) {
  **static_cast<ClosedFlag*>(opaque) = true;
}

void free_flag(void* opaque) {
  delete static_cast<ClosedFlag*>(opaque);
}

}  // namespace

bool libvirt_uri_is_local(const std::string& uri) {
  return uri.rfind("qemu:///", 0) == 0;
}

void libvirt_event_loop() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (virEventRegisterDefaultImpl() != 0) {
      core::log(core::LogLevel::warn, "libvirt's event loop did not start: " + last_error());
      return;
    }
    std::thread([] {
      for (;;) {
        if (virEventRunDefaultImpl() != 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
    }).detach();
  });
}

UniqueFd bridge_libvirt_stream(virConnectPtr c, virStreamPtr stream, const std::string& what,
                               std::shared_ptr<std::atomic<bool>> closed) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    virStreamAbort(stream);
    virStreamFree(stream);
    throw_errno("socketpair for " + what);
  }
  if (!closed) closed = std::make_shared<std::atomic<bool>>(false);
  // A daemon that goes away ends the connection (its socket closes, or the keepalive
  // of a host that vanished times out): the relay has to hear of it, or kcr waits on
  // a stream nothing will ever fill. One close callback per connection.
  auto* hold = new ClosedFlag(closed);
  bool registered = virConnectRegisterCloseCallback(c, on_connection_closed, hold, free_flag) == 0;
  if (!registered) {
    delete hold;
    core::log(core::LogLevel::debug, what + ": no close callback: " + last_error());
  }
  virConnectSetKeepAlive(c, 5, 3);
  virConnectRef(c);
  std::thread([c, stream, fd = sv[1], what, closed, registered] {
    relay(stream, fd, what, *closed);
    // The stream may fail before the close callback runs: ask, before kcr sees the end.
    if (virConnectIsAlive(c) != 1) *closed = true;
    virStreamFree(stream);
    if (registered) virConnectUnregisterCloseCallback(c, on_connection_closed);
    virConnectClose(c);
    ::close(fd);
  }).detach();
  return UniqueFd(sv[0]);
}

virStoragePoolPtr kcr_storage_pool(virConnectPtr c) {
  virStoragePoolPtr pool = virStoragePoolLookupByName(c, "kcr");
  if (!pool) {
    const std::string xml =
        "<pool type='dir'><name>kcr</name><target><path>/var/lib/libvirt/kcr</path></target>"
        "</pool>";
    pool = virStoragePoolCreateXML(c, xml.c_str(), VIR_STORAGE_POOL_CREATE_WITH_BUILD);
    if (!pool) {
      std::string msg = last_error();
      char* uri = virConnectGetURI(c);
      std::string where = uri ? uri : "the libvirt daemon";
      free(uri);  // NOLINT: libvirt's allocation
      throw Error("cannot create kcr's storage pool on " + where + ": " + msg,
                  "kcr keeps the guest's kernel and initrd in a directory pool 'kcr' at "
                  "/var/lib/libvirt/kcr there: define one (virsh pool-define-as kcr dir "
                  "--target DIR) if that path cannot be used");
    }
  } else if (virStoragePoolIsActive(pool) != 1 &&
             virStoragePoolCreate(pool, VIR_STORAGE_POOL_CREATE_WITH_BUILD) != 0) {
    std::string msg = last_error();
    virStoragePoolFree(pool);
    throw Error("cannot start kcr's storage pool 'kcr': " + msg, "virsh pool-start kcr shows why");
  }
  virStoragePoolRefresh(pool, 0);
  return pool;
}

std::string upload_volume(virConnectPtr c, virStoragePoolPtr pool, const std::string& name,
                          const std::string& file, bool replace) {
  const std::string done_name = name + ".done";
  Volume vol(virStorageVolLookupByName(pool, name.c_str()));
  Volume done(virStorageVolLookupByName(pool, done_name.c_str()));
  auto path_of = [&](virStorageVolPtr v) {
    char* p = virStorageVolGetPath(v);
    if (!p) throw Error("no path for volume '" + name + "' in pool 'kcr': " + last_error());
    std::string s = p;
    free(p);  // NOLINT: libvirt's allocation
    return s;
  };
  if (vol && done && !replace) return path_of(vol.get());
  // A volume without its mark is what an interrupted upload left.
  if (done) virStorageVolDelete(done.get(), 0);
  if (vol) virStorageVolDelete(vol.get(), 0);
  done.reset();
  vol.reset();

  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0) throw_errno("open " + file);
  const auto size = static_cast<unsigned long long>(st.st_size);
  auto volume_xml = [](const std::string& n, unsigned long long bytes) {
    return "<volume><name>" + core::markup_escape(n) + "</name><capacity unit='bytes'>" +
           std::to_string(bytes) + "</capacity><target><format type='raw'/></target></volume>";
  };
  vol.reset(virStorageVolCreateXML(pool, volume_xml(name, size).c_str(), 0));
  if (!vol) throw Error("cannot create volume '" + name + "' in pool 'kcr': " + last_error());
  try {
    Stream s(virStreamNew(c, 0));
    if (!s || virStorageVolUpload(vol.get(), s.get(), 0, size, 0) != 0) {
      throw Error("cannot upload " + file + " into volume '" + name + "': " + last_error());
    }
    std::vector<char> buf(1 << 20);
    for (;;) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        virStreamAbort(s.get());
        throw_errno("read " + file);
      }
      if (n == 0) break;
      for (ssize_t off = 0; off < n;) {
        int sent = virStreamSend(s.get(), buf.data() + off, static_cast<std::size_t>(n - off));
        if (sent <= 0) {
          std::string msg = last_error();
          virStreamAbort(s.get());
          throw Error("uploading " + file + " into volume '" + name + "' failed: " + msg);
        }
        off += sent;
      }
    }
    if (virStreamFinish(s.get()) != 0) {
      throw Error("uploading " + file + " into volume '" + name + "' failed: " + last_error());
    }
    Volume mark(virStorageVolCreateXML(pool, volume_xml(done_name, 0).c_str(), 0));
    if (!mark) throw Error("cannot create volume '" + done_name + "': " + last_error());
  } catch (...) {
    virStorageVolDelete(vol.get(), 0);
    throw;
  }
  return path_of(vol.get());
}

}  // namespace kcr::vm
