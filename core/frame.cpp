#include "core/frame.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <google/protobuf/message_lite.h>

#include "core/error.hpp"

namespace kcr::core {

std::string encode_frame(std::string_view payload) {
  std::string out;
  uint64_t n = payload.size();
  while (n >= 0x80) {
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
  out.append(payload);
  return out;
}

std::string serialize_frame(const google::protobuf::MessageLite& message, std::size_t max_frame) {
  std::size_t size = message.ByteSizeLong();
  if (size > max_frame) return {};
  std::string out;
  out.reserve(size + 10);
  uint64_t n = size;
  while (n >= 0x80) {
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
  std::size_t header = out.size();
  out.resize(header + size);
  message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out.data() + header));
  return out;
}

std::optional<std::string> FrameDecoder::next() {
  uint64_t length = 0;
  std::size_t i = 0;
  for (;; ++i) {
    if (i >= m_buffer.size()) return std::nullopt;
    if (i >= 10) throw Error("protocol error: malformed frame length");
    auto byte = static_cast<unsigned char>(m_buffer[i]);
    length |= static_cast<uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) break;
  }
  if (length > m_max) {
    throw Error("protocol error: frame of " + std::to_string(length) +
                " bytes exceeds the limit of " + std::to_string(m_max));
  }
  std::size_t header = i + 1;
  if (m_buffer.size() - header < length) return std::nullopt;
  std::string frame = m_buffer.substr(header, length);
  m_buffer.erase(0, header + length);
  return frame;
}

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

void FramedStream::write(std::string_view payload, std::chrono::milliseconds timeout) {
  std::string data = encode_frame(payload);
  auto deadline = Clock::now() + timeout;
  std::size_t done = 0;
  while (done < data.size()) {
    pollfd pfd{m_fd, POLLOUT, 0};
    int r = ::poll(&pfd, 1, remaining_ms(deadline));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (r == 0) throw Error("timed out writing to the agent channel");
    ssize_t n = ::write(m_fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw_errno("write to the agent channel");
    }
    done += static_cast<std::size_t>(n);
  }
}

std::optional<std::string> FramedStream::read(std::chrono::milliseconds timeout) {
  m_timed_out = false;
  auto deadline = Clock::now() + timeout;
  char buf[64 * 1024];
  for (;;) {
    if (auto frame = m_decoder.next()) return frame;
    pollfd pfd{m_fd, POLLIN, 0};
    int r = ::poll(&pfd, 1, remaining_ms(deadline));
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    if (r == 0) {
      m_timed_out = true;
      return std::nullopt;
    }
    ssize_t n = ::read(m_fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw_errno("read from the agent channel");
    }
    if (n == 0) {
      if (m_decoder.has_partial()) {
        m_decoder.clear();
        throw Error("protocol error: stream ended inside a frame (truncated frame)");
      }
      return std::nullopt;
    }
    m_decoder.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }
}

}  // namespace kcr::core
