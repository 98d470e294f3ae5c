#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "core/checksum64.hpp"
#include "core/unique_fd.hpp"
#include "images/agent/data_disk.hpp"

namespace kcr::agent {

// Sends one intermediate response (a FileChunk or FileDone) to the host; returns false when the
// host is gone.
using SendFn = std::function<bool(proto::Response&)>;

// One file of a checkpoint being streamed to the host.
struct Stream {
  std::string name;  // as the host sees it ("images/pages-1.img")
  std::string path;  // in the guest
  UniqueFd fd;
  ino_t ino = 0;
  std::uint64_t sent = 0;
  off_t punched = 0;
  bool pages = false;
  core::Checksum64 hash;
};

// Streams the files of a checkpoint to the host as CRIU writes them: each file once, front to
// back, page images hole-punched behind what was sent so the guest never holds two copies.
class Streamer {
 public:
  Streamer(std::uint64_t id, std::size_t chunk, const SendFn& send)
      : m_id(id), m_chunk(chunk), m_send(send), m_buffer(chunk) {}

  bool host_gone() const { return m_host_gone; }

  // Writes the bytes to DISK from its offset 0 onwards, in chunks of up to k_disk_chunk, and
  // sends where they are instead of the bytes. Should the disk fail or fill, the rest goes
  // inline through the port.
  // Page images go through the disk from the start: CRIU writes them once, front to back.
  // Other images go through it only once the writer is done: CRIU may rewrite a small image
  // in place, and a file cut short under a mapping of it is a SIGBUS (in PID 1). Until then
  // they go inline, read with pread, which a shorter file only ends early.
  void use_disk(DataDisk* disk) { m_disk = disk; }

  // Nothing writes the images any more (CRIU exited, or a lazy dump serves its memory).
  void writer_done() { m_writer_done = true; }

  // Starts tracking path as name, or restarts it from 0 when the file was replaced.
  Stream* track(const std::string& name, const std::string& path, bool pages);

  // Tracks every regular file of the images directory.
  void scan_images(const std::string& dir);

  // Sends what the file has beyond what was sent; returns the bytes sent.
  std::uint64_t pump(Stream& s);

  std::uint64_t pump_all();

  // After the writer is done: makes sure what the host got is each file's final content, sends
  // the FileDone messages and returns them.
  std::vector<proto::FileDone> finish();

  void send_done(const proto::FileDone& file);

 private:
  // One chunk through the disk: false when the disk cannot take it (then it goes inline).
  bool pump_disk(Stream& s, std::uint64_t size, std::uint64_t& n);
  void punch_sent(Stream& s);
  // A FileChunk response for S at what was sent so far, to be given its bytes or their place.
  proto::Response chunk_of(const Stream& s) const;

  std::uint64_t m_id;
  std::size_t m_chunk;
  const SendFn& m_send;
  std::vector<char> m_buffer;
  bool m_host_gone = false;
  DataDisk* m_disk = nullptr;
  bool m_writer_done = false;
  std::uint64_t m_disk_cursor = 0;
  std::vector<std::unique_ptr<Stream>> m_streams;
};

// Streams one complete file (a log) as chunks and its FileDone; returns the FileDone.
std::optional<proto::FileDone> send_whole_file(std::uint64_t id, const SendFn& send,
                                               const std::string& name, const std::string& path);

}  // namespace kcr::agent
