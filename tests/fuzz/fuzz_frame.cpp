// The agent protocol's framing (core/frame.hpp): the length prefixes come from the guest.
// Input: byte 0 picks the decoder's limit, byte 1 how the rest is cut into feeds; the rest is
// the stream. Decoding it in pieces must give the frames that decoding it whole gives (or the
// same refusal), none over the limit, and each frame written again with encode_frame must
// decode to itself. Every frame is also parsed as the Response the host reads.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "agent.pb.h"
#include "core/files.hpp"
#include "core/frame.hpp"
#include "fuzz_util.hpp"

using namespace kcr::core;

namespace {

struct Decoded {
  std::vector<std::string> frames;
  bool refused = false;
  bool partial = false;
};

// Feeds STREAM in pieces of STEP bytes (all at once when STEP is 0), taking frames out after
// every feed.
Decoded decode(std::string_view stream, std::size_t max_frame, std::size_t step) {
  Decoded out;
  FrameDecoder decoder(max_frame);
  std::size_t at = 0;
  out.refused = !kcr::fuzz::refused_or_ok("FrameDecoder::next", [&] {
    while (at < stream.size()) {
      std::size_t n = step == 0 ? stream.size() - at : std::min(step, stream.size() - at);
      decoder.feed(stream.substr(at, n));
      at += n;
      while (auto frame = decoder.next()) {
        if (frame->size() > max_frame) kcr::fuzz::fail("a frame over the decoder's limit");
        out.frames.push_back(std::move(*frame));
      }
    }
  });
  out.partial = decoder.has_partial();
  return out;
}

}  // namespace

// With KCR_FUZZ_SEEDS=DIR (scripts/fuzz), writes a seed there and exits: a hello, a file
// chunk and a file's end as the agent frames them, behind the limit and feed-size bytes.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // protobuf logs every invalid UTF-8 string it parses; that is the input's doing.
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  const char* seeds = std::getenv("KCR_FUZZ_SEEDS");
  if (!seeds) return 0;
  kcr::proto::Response hello, chunk, done;
  hello.mutable_hello();
  chunk.mutable_chunk()->set_path("images/pages-1.img");
  chunk.mutable_chunk()->set_data(std::string(300, 'p'));
  done.mutable_file_done()->set_path("images/pages-1.img");
  done.mutable_file_done()->set_size(300);
  write_file_atomic(std::string(seeds) + "/three-frames",
                    std::string{'\x40', '\x05'} + serialize_frame(hello) + serialize_frame(chunk) +
                        serialize_frame(done));
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // Small limits make the oversize path reachable; 255 picks the real one.
  std::size_t max_frame = data[0] == 255 ? k_max_frame : std::size_t{data[0]} * 16;
  std::size_t step = data[1] % 17;
  std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

  Decoded whole = decode(stream, max_frame, 0);
  Decoded pieces = decode(stream, max_frame, step == 0 ? 1 : step);
  // A refusal comes at the first bad length, whenever its bytes arrive: the frames before it
  // are the same either way.
  if (whole.refused != pieces.refused || whole.frames != pieces.frames ||
      (!whole.refused && whole.partial != pieces.partial)) {
    kcr::fuzz::fail("decoding in pieces of " + std::to_string(step) +
                    " differs from decoding the stream whole");
  }

  std::string again;
  for (const auto& frame : whole.frames) {
    again += encode_frame(frame);
    kcr::proto::Response response;
    (void)response.ParseFromString(frame);
  }
  Decoded round = decode(again, max_frame, 0);
  if (round.refused || round.partial || round.frames != whole.frames) {
    kcr::fuzz::fail("frames written again with encode_frame do not decode to themselves");
  }
  return 0;
}
