#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace google::protobuf {
class MessageLite;
}

namespace kcr::core {

// Largest message accepted from the wire; a larger length prefix is rejected
// before anything is allocated for it.
inline constexpr std::size_t k_max_frame = 8 * 1024 * 1024;

// Appends the varint length prefix and the payload, as protobuf's delimited
// message utilities write them.
std::string encode_frame(std::string_view payload);

// Serializes MESSAGE straight behind its varint length (one copy of the
// payload, not two). Returns an empty string when it exceeds MAX_FRAME.
std::string serialize_frame(const google::protobuf::MessageLite& message,
                            std::size_t max_frame = k_max_frame);

// Splits a byte stream into length-delimited frames. Feed it bytes as they
// arrive and take complete frames out with next().
class FrameDecoder {
 public:
  explicit FrameDecoder(std::size_t max_frame = k_max_frame) : m_max(max_frame) {}

  void feed(std::string_view bytes) { m_buffer.append(bytes); }

  // Returns the next complete frame, or nullopt when more bytes are needed.
  // Throws kcr::Error for a malformed varint or a length over the limit.
  std::optional<std::string> next();

  // True when bytes of an incomplete frame are buffered (a truncated frame if
  // the stream has ended).
  bool has_partial() const { return !m_buffer.empty(); }
  void clear() { m_buffer.clear(); }

 private:
  std::size_t m_max;
  std::string m_buffer;
};

// Reads and writes frames on a blocking stream fd with a deadline.
class FramedStream {
 public:
  explicit FramedStream(int fd, std::size_t max_frame = k_max_frame)
      : m_fd(fd), m_decoder(max_frame) {}

  // Writes one frame completely; throws kcr::Error on failure or timeout.
  void write(std::string_view payload, std::chrono::milliseconds timeout);

  // Reads one frame. Returns nullopt on a clean end of stream between frames
  // or when the timeout expires with no complete frame (timed_out() tells
  // which); throws on a truncated frame, an oversized one, or a read error.
  std::optional<std::string> read(std::chrono::milliseconds timeout);

  bool timed_out() const { return m_timed_out; }
  void reset() { m_decoder.clear(); }
  int fd() const { return m_fd; }

 private:
  int m_fd;
  FrameDecoder m_decoder;
  bool m_timed_out = false;
};

}  // namespace kcr::core
