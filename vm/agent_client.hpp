#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <unordered_map>

#include "agent.pb.h"
#include "core/frame.hpp"
#include "core/unique_fd.hpp"
#include "vm/agent_channel.hpp"

namespace kcr::vm {

// One connection to a guest's agent over a stream socket: the host end of
// its virtio-serial port (a unix socket the hypervisor serves).
class AgentClient final : public AgentChannel {
 public:
  // Connects to SOCKET_PATH; throws kcr::Error when nothing listens there.
  explicit AgentClient(const std::string& socket_path);
  // Speaks over FD, already connected.
  explicit AgentClient(UniqueFd fd);

  // Nudges the agent with HelloRequests while the guest boots.
  proto::Hello wait_hello(std::chrono::milliseconds timeout,
                          const std::function<void()>& still_alive = {}) override;
  // Skips replies whose id it did not ask for (stale ones from an earlier connection).
  proto::Response call(proto::Request request, std::chrono::milliseconds timeout) override;
  proto::Response call_streaming(
      proto::Request request, std::chrono::milliseconds timeout,
      const std::function<void(const proto::Response&)>& on_part) override;
  // Replies come back in request order.
  uint64_t send(proto::Request request) override;
  proto::Response await(uint64_t id, std::chrono::milliseconds timeout) override;

  int fd() const { return m_fd.get(); }

  // WHY says, once the channel closed, what closed it when kcr knows better
  // than "the VM stopped" (a libvirt daemon that went away); empty: no idea.
  void explain_close(std::function<std::string()> why) { m_why_closed = std::move(why); }

 private:
  // Reads responses until the final one for ID, passing file parts to
  // ON_PART; checks the body against REQUEST when given.
  proto::Response receive(uint64_t id, const proto::Request* request,
                          std::chrono::milliseconds timeout,
                          const std::function<void(const proto::Response&)>& on_part);
  // Writes REQUEST with a fresh id and returns the id.
  uint64_t write_request(proto::Request request);
  // Throws what closed the channel: WHY's answer, or FALLBACK.
  [[noreturn]] void throw_closed(const char* fallback) const;

  struct Pending {
    std::string kind;
    std::chrono::steady_clock::time_point sent;
  };

  UniqueFd m_fd;
  core::FramedStream m_stream;
  // Request ids start at a random point: replies meant for an earlier
  // connection can still sit in the virtio-serial queue, and must never match.
  uint64_t m_next_id;
  // Requests sent without waiting, kept at debug level to log their duration on await.
  std::unordered_map<uint64_t, Pending> m_pending;
  std::function<std::string()> m_why_closed;
};

}  // namespace kcr::vm
