#pragma once

#include <chrono>
#include <string>

#include "core/unique_fd.hpp"

namespace kcr::vm {

// A minimal QEMU Machine Protocol client: connects, negotiates capabilities
// and runs commands, returning the raw JSON reply line.
class QmpClient {
 public:
  // Connects to the QMP unix socket and leaves capabilities negotiation done.
  explicit QmpClient(const std::string& socket_path,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Runs COMMAND (its "execute" name) with ARGUMENTS_JSON (an object, or
  // empty) and returns the reply line; throws kcr::Error on an error reply.
  std::string execute(const std::string& command, const std::string& arguments_json = {});

  // Hands FD to QEMU under NAME ("getfd", the descriptor travels with the
  // command as SCM_RIGHTS), for a later "fd:NAME" migration URI.
  void send_fd(const std::string& name, int fd);

 private:
  std::string read_reply();

  UniqueFd m_fd;
  std::string m_buffer;
  std::chrono::milliseconds m_timeout;
};

}  // namespace kcr::vm
