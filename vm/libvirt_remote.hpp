#pragma once

// What the libvirt backend needs to run a VM on a daemon of another host
// (any URI but qemu:///...): nothing of the VM is a file kcr can open, so the
// agent's port and the console come through libvirt streams, and the guest's
// kernel and initrd go into a storage pool on that host first.

#include <libvirt/libvirt.h>

#include <atomic>
#include <memory>
#include <string>

#include "core/unique_fd.hpp"

namespace kcr::vm {

// True when URI names a daemon of this host (qemu:///system, qemu:///session):
// the VM's sockets, logs and data disks are files here.
bool libvirt_uri_is_local(const std::string& uri);

// Registers libvirt's default event loop and runs it in a thread of its own,
// once per process, before the first connection opens: streams need it.
void libvirt_event_loop();

// A socket whose other end a thread relays to STREAM (opened on connection
// C, which it holds a reference to) and back, until either side closes; then
// the thread finishes the stream and drops its references. WHAT names the
// stream in errors ("the agent port of VM 'a'"). When the connection closes
// under it (the daemon went away), the thread sets CLOSED, when given, before
// it closes its end of the socket.
UniqueFd bridge_libvirt_stream(virConnectPtr c, virStreamPtr stream, const std::string& what,
                               std::shared_ptr<std::atomic<bool>> closed = nullptr);

// The storage pool kcr keeps its files in on C's host ("kcr", a directory
// pool under /var/lib/libvirt/kcr), created and started when missing.
virStoragePoolPtr kcr_storage_pool(virConnectPtr c);

// The path on C's host of volume NAME in kcr's pool holding FILE's bytes,
// uploaded through a libvirt stream unless an earlier upload completed
// (NAME.done marks one) and REPLACE is false. The caller owns POOL.
std::string upload_volume(virConnectPtr c, virStoragePoolPtr pool, const std::string& name,
                          const std::string& file, bool replace = false);

}  // namespace kcr::vm
