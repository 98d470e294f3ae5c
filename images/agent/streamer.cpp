#include "images/agent/streamer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/error.hpp"
#include "images/agent/log.hpp"
#include "images/agent/staging.hpp"

namespace kcr::agent {

namespace {

constexpr off_t k_page = 4096;
// Chunks through the data disk: one FileChunk per 16 MiB instead of per 1 MiB.
constexpr std::uint64_t k_disk_chunk = 16u << 20;

}  // namespace

proto::Response Streamer::chunk_of(const Stream& s) const {
  proto::Response response;
  response.set_id(m_id);
  response.mutable_chunk()->set_path(s.name);
  response.mutable_chunk()->set_offset(s.sent);
  return response;
}

void Streamer::punch_sent(Stream& s) {
  if (!s.pages) return;
  // Free what the host has: page images are written once, front to back.
  off_t upto = static_cast<off_t>(s.sent) / k_page * k_page;
  if (upto > s.punched && ::fallocate(s.fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                      s.punched, upto - s.punched) == 0) {
    s.punched = upto;
  }
}

bool Streamer::pump_disk(Stream& s, std::uint64_t size, std::uint64_t& n) {
  // The disk takes whole pages: the chunk starts at the page holding s.sent, and its head (bytes
  // the host already has) goes again.
  const std::uint64_t start = s.sent / k_page * k_page;
  const std::uint64_t head = s.sent - start;
  n = std::min<std::uint64_t>(size - s.sent, k_disk_chunk);
  const std::uint64_t span = round_up_page(head + n);
  if (m_disk_cursor > m_disk->size() || span > m_disk->size() - m_disk_cursor) return false;
  if (!m_disk->write_from(s.fd.get(), start, head + n, m_disk_cursor,
                          [&](const char* bytes, std::size_t) {
                            s.hash.update(bytes + head, static_cast<std::size_t>(n));
                          })) {
    return false;
  }
  if (!m_host_gone) {
    proto::Response response = chunk_of(s);
    response.mutable_chunk()->set_on_disk(true);
    response.mutable_chunk()->set_disk_offset(m_disk_cursor + head);
    response.mutable_chunk()->set_disk_length(n);
    if (!m_send(response)) m_host_gone = true;
  }
  m_disk_cursor += span;
  return true;
}

Stream* Streamer::track(const std::string& name, const std::string& path, bool pages) {
  auto it = std::find_if(m_streams.begin(), m_streams.end(),
                         [&](const auto& s) { return s->name == name; });
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return it == m_streams.end() ? nullptr : it->get();
  }
  if (it != m_streams.end() && (*it)->ino == st.st_ino) return it->get();
  auto stream = std::make_unique<Stream>();
  stream->name = name;
  stream->path = path;
  stream->pages = pages;
  stream->fd = UniqueFd(::open(path.c_str(), (pages ? O_RDWR : O_RDONLY) | O_CLOEXEC));
  if (!stream->fd) return nullptr;
  struct stat fst {};
  ::fstat(stream->fd.get(), &fst);
  stream->ino = fst.st_ino;
  if (it != m_streams.end()) {
    log_line(name + " was replaced; sending it again");
    *it = std::move(stream);
    return it->get();
  }
  m_streams.push_back(std::move(stream));
  return m_streams.back().get();
}

void Streamer::scan_images(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (dirent* entry = ::readdir(d)) {
    std::string file = entry->d_name;
    if (!is_valid_image_name(file)) continue;
    track("images/" + file, dir + "/" + file, is_pages_image(file));
  }
  ::closedir(d);
}

std::uint64_t Streamer::pump(Stream& s) {
  std::uint64_t total = 0;
  while (m_disk && (s.pages || m_writer_done)) {
    struct stat st {};
    if (::fstat(s.fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) <= s.sent) {
      return total;
    }
    std::uint64_t n = 0;
    if (!pump_disk(s, static_cast<std::uint64_t>(st.st_size), n)) {
      log_always(
          "the data disk cannot take more; the rest of the checkpoint goes through the port");
      m_disk = nullptr;
      break;
    }
    s.sent += n;
    total += n;
    punch_sent(s);
  }
  for (;;) {
    ssize_t n = ::pread(s.fd.get(), m_buffer.data(), m_chunk, static_cast<off_t>(s.sent));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!m_host_gone) {
      proto::Response response = chunk_of(s);
      response.mutable_chunk()->set_data(m_buffer.data(), static_cast<std::size_t>(n));
      if (!m_send(response)) m_host_gone = true;
    }
    s.hash.update(m_buffer.data(), static_cast<std::size_t>(n));
    s.sent += static_cast<std::uint64_t>(n);
    total += static_cast<std::uint64_t>(n);
    punch_sent(s);
    if (static_cast<std::size_t>(n) < m_chunk) break;
  }
  return total;
}

std::uint64_t Streamer::pump_all() {
  std::uint64_t total = 0;
  for (auto& s : m_streams) total += pump(*s);
  return total;
}

std::vector<proto::FileDone> Streamer::finish() {
  std::vector<proto::FileDone> done;
  for (auto& s : m_streams) {
    Stream* stream = track(s->name, s->path, s->pages);
    if (stream == nullptr) {
      log_line(s->name + " disappeared before the end of the checkpoint");
      continue;
    }
    pump(*stream);
    struct stat st {};
    ::fstat(stream->fd.get(), &st);
    bool resend = static_cast<std::uint64_t>(st.st_size) != stream->sent;
    std::string digest = stream->hash.hex_digest();
    if (!resend && !stream->pages) {
      // Small images may have been rewritten in place: check the whole file.
      resend = core::checksum64_file_hex(stream->path) != digest;
    }
    if (resend) {
      if (stream->punched > 0) {
        throw Error("checkpoint file " + stream->name + " changed after it was sent");
      }
      log_line(stream->name + " changed after it was sent; sending it again");
      stream->sent = 0;
      stream->hash = core::Checksum64();
      pump(*stream);
      digest = stream->hash.hex_digest();
    }
    proto::FileDone file;
    file.set_path(stream->name);
    file.set_size(stream->sent);
    file.set_checksum64(digest);
    send_done(file);
    done.push_back(file);
  }
  return done;
}

void Streamer::send_done(const proto::FileDone& file) {
  if (m_host_gone) return;
  proto::Response response;
  response.set_id(m_id);
  *response.mutable_file_done() = file;
  if (!m_send(response)) m_host_gone = true;
}

std::optional<proto::FileDone> send_whole_file(std::uint64_t id, const SendFn& send,
                                               const std::string& name, const std::string& path) {
  Streamer streamer(id, k_default_chunk, send);
  if (!streamer.track(name, path, false)) return std::nullopt;
  auto done = streamer.finish();
  if (done.empty()) return std::nullopt;
  return done.front();
}

}  // namespace kcr::agent
