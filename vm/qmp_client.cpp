#include "vm/qmp_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::vm {

QmpClient::QmpClient(const std::string& socket_path, std::chrono::milliseconds timeout)
    : m_fd(core::connect_unix(socket_path, "QEMU's QMP socket")), m_timeout(timeout) {
  read_reply();  // greeting
  execute("qmp_capabilities");
}

std::string QmpClient::read_reply() {
  auto deadline = std::chrono::steady_clock::now() + m_timeout;
  for (;;) {
    auto nl = m_buffer.find('\n');
    if (nl != std::string::npos) {
      std::string line = m_buffer.substr(0, nl);
      m_buffer.erase(0, nl + 1);
      // Asynchronous events interleave with replies; skip them.
      if (line.find("\"event\"") != std::string::npos) continue;
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw Error("QMP: no reply in time");
    pollfd pfd{m_fd.get(), POLLIN, 0};
    int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno != EINTR) throw_errno("poll");
    if (r <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(m_fd.get(), buf, sizeof buf);
    if (n == 0) throw Error("QMP: connection closed");
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("QMP read");
    }
    if (m_buffer.size() + static_cast<std::size_t>(n) > (1u << 20)) {
      throw Error("QMP: reply too large");
    }
    m_buffer.append(buf, static_cast<std::size_t>(n));
  }
}

std::string QmpClient::execute(const std::string& command, const std::string& arguments_json) {
  std::string msg = "{\"execute\":\"" + command + "\"";
  if (!arguments_json.empty()) msg += ",\"arguments\":" + arguments_json;
  msg += "}\n";
  if (::send(m_fd.get(), msg.data(), msg.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(msg.size())) {
    throw_errno("QMP write");
  }
  std::string reply = read_reply();
  if (reply.find("\"error\"") != std::string::npos) throw Error("QMP " + command + ": " + reply);
  return reply;
}

void QmpClient::send_fd(const std::string& name, int fd) {
  std::string msg = "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"" + name + "\"}}\n";
  iovec iov{msg.data(), msg.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (::sendmsg(m_fd.get(), &mh, MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) {
    throw_errno("QMP write");
  }
  std::string reply = read_reply();
  if (reply.find("\"error\"") != std::string::npos) throw Error("QMP getfd: " + reply);
}

}  // namespace kcr::vm
