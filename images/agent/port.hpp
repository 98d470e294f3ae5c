#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/unique_fd.hpp"

namespace kcr::agent {

// What one Port::poll call saw.
enum class PortEvent {
  none,          // nothing happened within the timeout
  connected,     // a host connected; the stream starts fresh
  data,          // bytes arrived from the host
  disconnected,  // the host went away; any partial frame is lost
};

// The agent's end of the host connection: a byte stream that the host may leave and rejoin.
class Port {
 public:
  virtual ~Port() = default;

  // Waits up to timeout for something to happen; on PortEvent::data, bytes holds what arrived.
  virtual PortEvent poll(std::chrono::milliseconds timeout, std::string& bytes) = 0;

  // Writes all of data or returns false (host gone, or stuck past the timeout).
  virtual bool write_all(const std::string& data, std::chrono::milliseconds timeout) = 0;
};

// Finds the virtio-serial port named name in /sys/class/virtio-ports and returns its /dev path, or
// an empty string when it is not there (yet).
std::string find_virtio_port(const std::string& name);

// Opens the guest side of a virtio-serial port, retrying for up to wait while it does not exist.
// Throws kcr::Error when it never appears or cannot be opened.
std::unique_ptr<Port> open_virtio_port(const std::string& path_or_empty, const std::string& name,
                                       std::chrono::milliseconds wait);

// Listens on a unix socket at path and serves one connection at a time, for tests on a host.
std::unique_ptr<Port> listen_unix_port(const std::string& path);

}  // namespace kcr::agent
