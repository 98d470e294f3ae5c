#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "agent.pb.h"
#include "core/frame.hpp"
#include "core/unique_fd.hpp"

namespace kcr::vm {

// One connection to a guest's agent over the host end of its virtio-serial
// port (a unix socket QEMU serves). One request at a time.
class AgentClient {
 public:
  // Connects to SOCKET_PATH; throws kcr::Error when nothing listens there.
  explicit AgentClient(const std::string& socket_path);

  // Waits up to TIMEOUT for the agent's hello, nudging it with HelloRequests
  // while the guest boots. STILL_ALIVE is called between waits and should
  // throw when waiting is pointless (QEMU exited).
  proto::Hello wait_hello(std::chrono::milliseconds timeout,
                          const std::function<void()>& still_alive = {});

  // Sends REQUEST with a fresh id and returns the response with that id,
  // skipping stale ones. Throws kcr::Error on a transport failure, a timeout,
  // or an error reply from the agent (with the agent's message and hint).
  proto::Response call(proto::Request request, std::chrono::milliseconds timeout);

  // Like call(), for requests whose answer streams: every FileChunk and
  // FileDone response goes to ON_PART before the final response is returned.
  // TIMEOUT bounds the silence between two responses, not the whole call.
  proto::Response call_streaming(proto::Request request, std::chrono::milliseconds timeout,
                                 const std::function<void(const proto::Response&)>& on_part);

  // Sends REQUEST without waiting for the reply and returns its id; collect
  // the reply with await(). Replies come back in request order.
  uint64_t send(proto::Request request);

  // Waits for the reply to request ID (sent with send()), skipping others;
  // throws like call() on an error reply.
  proto::Response await(uint64_t id, std::chrono::milliseconds timeout);

  int fd() const { return m_fd.get(); }

 private:
  // Reads responses until the final one for ID, passing file parts to
  // ON_PART; checks the body against REQUEST when given.
  proto::Response receive(uint64_t id, const proto::Request* request,
                          std::chrono::milliseconds timeout,
                          const std::function<void(const proto::Response&)>& on_part);

  UniqueFd m_fd;
  core::FramedStream m_stream;
  // Request ids start at a random point: replies meant for an earlier
  // connection can still sit in the virtio-serial queue, and must never match.
  uint64_t m_next_id;
};

}  // namespace kcr::vm
