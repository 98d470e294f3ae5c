#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "agent.pb.h"
#include "core/error.hpp"

namespace kcr::vm {

// What wait_hello throws when TIMEOUT passed without a hello (the channel still open):
// callers retry on a fresh channel or name their own limit by catching this type.
class HelloTimeout : public Error {
 public:
  HelloTimeout() : Error("the agent did not say hello in time") {}
};

// What kcr says to a guest's agent, whatever carries it: the virtio-serial
// socket of a real VM (AgentClient) or a fake agent in the engine's tests.
// One request at a time.
class AgentChannel {
 public:
  virtual ~AgentChannel() = default;

  // Waits up to TIMEOUT for the agent's hello. STILL_ALIVE is called between
  // waits and should throw when waiting is pointless (the VM exited). Throws HelloTimeout
  // when TIMEOUT passes.
  virtual proto::Hello wait_hello(std::chrono::milliseconds timeout,
                                  const std::function<void()>& still_alive = {}) = 0;

  // Sends REQUEST and returns its response. Throws kcr::Error on a transport
  // failure, a timeout, or an error reply (with the agent's message and hint).
  virtual proto::Response call(proto::Request request, std::chrono::milliseconds timeout) = 0;

  // Like call(), for requests whose answer streams: every FileChunk,
  // FileDone and CopyEntry response goes to ON_PART before the final
  // response is returned.
  // TIMEOUT bounds the silence between two responses, not the whole call.
  virtual proto::Response call_streaming(
      proto::Request request, std::chrono::milliseconds timeout,
      const std::function<void(const proto::Response&)>& on_part) = 0;

  // Sends REQUEST without waiting and returns its id, for await().
  virtual uint64_t send(proto::Request request) = 0;

  // Waits for the reply to request ID; throws like call() on an error reply.
  virtual proto::Response await(uint64_t id, std::chrono::milliseconds timeout) = 0;
};

}  // namespace kcr::vm
