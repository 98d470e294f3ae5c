// What a checkpoint's guest sends, as the host takes it (the guest is not
// trusted: every path, offset, size and digest): FileChunk and FileDone parts
// decoded from the input go to a CheckpointWriter, which accepts them or
// throws kcr::Error; an uncommitted writer leaves nothing in the store.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "agent.pb.h"
#include "core/checkpoint_store.hpp"
#include "core/files.hpp"
#include "core/frame.hpp"
#include "core/sha256.hpp"
#include "fuzz_util.hpp"

namespace fs = std::filesystem;
using namespace kcr::core;

// With KCR_FUZZ_SEEDS=DIR (scripts/fuzz), writes a seed there and exits: one file
// sent whole, then its FileDone, as the agent sends them.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* seeds = std::getenv("KCR_FUZZ_SEEDS");
  if (!seeds) return 0;
  kcr::proto::Response chunk, done;
  chunk.mutable_chunk()->set_path("images/pages-1.img");
  chunk.mutable_chunk()->set_data("abc");
  done.mutable_file_done()->set_path("images/pages-1.img");
  done.mutable_file_done()->set_size(3);
  done.mutable_file_done()->set_sha256(sha256_hex("abc"));
  write_file_atomic(std::string(seeds) + "/one-file",
                    serialize_frame(chunk) + serialize_frame(done));
  std::exit(0);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = "/tmp/kcr-fuzz-stream-" + std::to_string(::getpid());
  fs::remove_all(dir);
  {
    CheckpointStore store(dir);
    std::optional<CheckpointWriter> w;
    if (!kcr::fuzz::refused_or_ok("CheckpointWriter", [&] { w.emplace(store, "c1", 1 << 20); })) {
      kcr::fuzz::fail("a writer could not start");
    }
    FrameDecoder decoder(1 << 16);
    decoder.feed(std::string_view(reinterpret_cast<const char*>(data), size));
    for (int parts = 0; parts < 256; ++parts) {
      std::optional<std::string> frame;
      if (!kcr::fuzz::refused_or_ok("next", [&] { frame = decoder.next(); }) || !frame) break;
      kcr::proto::Response r;
      if (!r.ParseFromString(*frame)) break;
      bool ok = true;
      if (r.has_chunk()) {
        ok = kcr::fuzz::refused_or_ok("write_chunk", [&] {
          w->write_chunk(r.chunk().path(), r.chunk().offset(), r.chunk().data());
        });
      } else if (r.has_file_done()) {
        const auto& d = r.file_done();
        ok = kcr::fuzz::refused_or_ok(
            "file_done", [&] { w->file_done(d.path(), d.size(), d.sha256(), d.checksum64()); });
      }
      if (!ok) break;
    }
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(w->dir(), ec)) {
      // A name may hold ".." ("pages-1.img.."); a component that is ".." climbed out.
      for (const auto& part : e.path().lexically_relative(w->dir())) {
        if (part == ".." || part.empty())
          kcr::fuzz::fail("a path climbed out: " + e.path().string());
      }
    }
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir + "/checkpoints", ec)) {
    kcr::fuzz::fail("an uncommitted writer left " + e.path().string());
  }
  return 0;
}
