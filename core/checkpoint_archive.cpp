#include "core/checkpoint_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "core/criu_image.hpp"
#include "core/error.hpp"
#include "core/fault.hpp"
#include "core/files.hpp"
#include "core/json.hpp"
#include "core/names.hpp"
#include "core/sha256.hpp"

namespace kcr::core {

namespace {

constexpr std::size_t k_buffer_bytes = 256 << 10;
constexpr int64_t k_max_config_bytes = 16 << 20;
constexpr int64_t k_max_spec_bytes = 1 << 20;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// "parents/K/" of a pre-dump round's path, or "" for the final dump's.
std::string round_prefix(const std::string& path) {
  if (!starts_with(path, "parents/")) return {};
  auto slash = path.find('/', 8);
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

// An entry name as it may be shown: control characters from a hostile
// archive become '?'.
std::string shown_name(const std::string& name) {
  std::string out = name.substr(0, 200);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

// Calls PROGRESS at most once a second, the first time a second after start.
class Ticker {
 public:
  explicit Ticker(const ArchiveProgress& progress) : m_progress(progress) {}
  void operator()(uint64_t done, uint64_t total) {
    if (!m_progress) return;
    auto now = std::chrono::steady_clock::now();
    if (now - m_last < std::chrono::seconds(1)) return;
    m_last = now;
    m_progress(done, total);
  }

 private:
  const ArchiveProgress& m_progress;
  std::chrono::steady_clock::time_point m_last = std::chrono::steady_clock::now();
};

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

struct EntryFree {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<struct archive_entry, EntryFree>;

std::string archive_message(struct archive* a) {
  const char* s = archive_error_string(a);
  return s ? s : "unknown libarchive error";
}

// ---- export ----

class ArchiveOut {
 public:
  ArchiveOut(const std::string& file, const std::string& tmp, Compression c)
      : m_file(file), m_a(archive_write_new()) {
    if (!m_a) throw Error("out of memory creating an archive");
    check(archive_write_set_format_pax_restricted(m_a.get()), "set the tar format");
    int r = ARCHIVE_OK;
    switch (c) {
      case Compression::zstd:
        r = archive_write_add_filter_zstd(m_a.get());
        if (r < ARCHIVE_WARN) {
          throw Error(
              file + ": this host's libarchive cannot write zstd: " + archive_message(m_a.get()),
              "use --compress gzip (or install zstd)", ExitCode::usage);
        }
        break;
      case Compression::gzip:
        r = archive_write_add_filter_gzip(m_a.get());
        break;
      case Compression::none:
        r = archive_write_add_filter_none(m_a.get());
        break;
    }
    check(r, "set the compression");
    check(archive_write_open_filename(m_a.get(), tmp.c_str()), "create");
  }

  void directory(const std::string& name) {
    EntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), (name + "/").c_str());
    archive_entry_set_filetype(e.get(), AE_IFDIR);
    archive_entry_set_perm(e.get(), 0755);
    archive_entry_set_mtime(e.get(), m_now, 0);
    check(archive_write_header(m_a.get(), e.get()), "write " + name + "/");
  }

  void begin_file(const std::string& name, uint64_t size) {
    EntryPtr e(archive_entry_new());
    archive_entry_set_pathname(e.get(), name.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
    archive_entry_set_mtime(e.get(), m_now, 0);
    check(archive_write_header(m_a.get(), e.get()), "write " + name);
  }

  void data(const char* p, std::size_t n) {
    if (archive_write_data(m_a.get(), p, n) != static_cast<la_ssize_t>(n)) {
      throw Error(m_file + ": writing the archive failed: " + archive_message(m_a.get()));
    }
  }

  void small_file(const std::string& name, const std::string& content) {
    begin_file(name, content.size());
    data(content.data(), content.size());
  }

  void close() { check(archive_write_close(m_a.get()), "finish"); }

 private:
  void check(int r, const std::string& what) {
    if (r < ARCHIVE_WARN) {
      throw Error(m_file + ": cannot " + what + " the archive: " + archive_message(m_a.get()));
    }
  }

  std::string m_file;
  ArchivePtr m_a;
  time_t m_now = ::time(nullptr);
};

// Removes PATH on destruction unless released.
class RemoveUnlessKept {
 public:
  explicit RemoveUnlessKept(std::string path) : m_path(std::move(path)) {}
  ~RemoveUnlessKept() {
    if (!m_path.empty()) ::unlink(m_path.c_str());
  }
  void keep() { m_path.clear(); }

 private:
  std::string m_path;
};

std::string spec_json(const CheckpointManifest& m) {
  auto argv = Json::array();
  for (const auto& a : m.argv) argv.push(a);
  auto j = Json::object();
  j.set("workload", m.workload);
  j.set("argv", argv);
  j.set("pid", m.pid);
  j.set("vm", m.vm);
  j.set("image", m.image);
  j.set("image_hash", m.image_hash);
  j.set("kernel_release", m.kernel_release);
  j.set("criu_version", m.criu_version);
  return j.dump() + "\n";
}

// ---- import and verify ----

// Where the checked content of an archive's files goes.
class EntrySink {
 public:
  virtual ~EntrySink() = default;
  // The archive's manifest, before any file.
  virtual void begin(const CheckpointManifest& m) = 0;
  virtual void data(const std::string& path, uint64_t offset, const std::string& bytes) = 0;
  // FILE arrived whole, its size and digest matching the manifest.
  virtual void done(const CheckpointFile& file) = 0;
};

class ArchiveIn {
 public:
  ArchiveIn(const std::string& file, uint64_t max_bytes, const ArchiveProgress& progress)
      : m_file(file), m_max_bytes(max_bytes), m_ticker(progress), m_a(archive_read_new()) {
    if (!m_a) throw Error("out of memory opening an archive");
    archive_read_support_filter_all(m_a.get());
    archive_read_support_format_tar(m_a.get());
    if (archive_read_open_filename(m_a.get(), file.c_str(), 64 << 10) != ARCHIVE_OK) {
      throw Error("cannot open the archive " + file + ": " + archive_message(m_a.get()));
    }
  }

  CheckpointManifest read(EntrySink* sink) {
    struct archive_entry* e = nullptr;
    if (!next(&e)) fail("the archive is empty (no " + std::string(k_archive_config) + ")");
    std::string first = archive_entry_pathname(e) ? archive_entry_pathname(e) : "";
    if (first != k_archive_config) {
      fail("the first entry is '" + shown_name(first) + "', not " + k_archive_config +
           " (not a kcr checkpoint archive)");
    }
    check_regular(e, first);
    m_manifest = manifest_from_yaml(read_small(e, first, k_max_config_bytes),
                                    m_file + ": " + k_archive_config);
    index_manifest();
    if (sink) sink->begin(m_manifest);

    bool spec_seen = false;
    while (next(&e)) {
      const char* p = archive_entry_pathname(e);
      std::string name = p ? p : "";
      check_name(name);
      if (archive_entry_filetype(e) == AE_IFDIR && !archive_entry_hardlink(e)) {
        check_directory(name);
        continue;
      }
      check_regular(e, name);
      if (name == k_archive_spec) {
        if (spec_seen) fail_entry(name, "appears twice");
        spec_seen = true;
        read_small(e, name, k_max_spec_bytes);
        continue;
      }
      auto path = store_path_of(name);
      if (!path || *path == k_manifest) {
        fail_entry(name, "is not a file a kcr checkpoint archive holds");
      }
      auto it = m_expected.find(*path);
      if (it == m_expected.end())
        fail_entry(name, "is not listed in " + std::string(k_archive_config));
      if (!m_seen.insert(*path).second) fail_entry(name, "appears twice");
      read_file(e, name, it->second, sink);
    }
    for (const auto& f : m_manifest.files) {
      if (!m_seen.count(f.path)) {
        fail("entry '" + archive_name_of(f.path) + "' listed in " + k_archive_config +
             " is missing from the archive");
      }
    }
    return m_manifest;
  }

  [[noreturn]] void fail(const std::string& why) const {
    throw Error("archive " + m_file + ": " + why, "the archive is damaged or not from kcr");
  }
  [[noreturn]] void fail_entry(const std::string& name, const std::string& why) const {
    fail("entry '" + shown_name(name) + "' " + why);
  }

 private:
  bool next(struct archive_entry** e) {
    int r = archive_read_next_header(m_a.get(), e);
    if (r == ARCHIVE_EOF) return false;
    if (r != ARCHIVE_OK) fail("cannot read it: " + archive_message(m_a.get()));
    return true;
  }

  void index_manifest() {
    uint64_t total = 0;
    for (const auto& f : m_manifest.files) {
      if (!m_expected.emplace(f.path, f).second) {
        fail(std::string(k_archive_config) + " lists " + f.path + " twice");
      }
      if (f.size > m_max_bytes - total) {
        fail(std::string(k_archive_config) + " lists more than " + std::to_string(m_max_bytes) +
             " bytes of files (the most an archive may hold)");
      }
      total += f.size;
    }
    m_total = total;
  }

  // Absolute paths and ".." are named as such: the reason a user acts on.
  void check_name(const std::string& name) const {
    if (name.empty()) fail("an entry has no name");
    if (name[0] == '/') fail_entry(name, "has an absolute path");
    std::size_t start = 0;
    while (start <= name.size()) {
      auto end = name.find('/', start);
      if (end == std::string::npos) end = name.size();
      if (name.compare(start, end - start, "..") == 0 && end - start == 2) {
        fail_entry(name, "climbs out with '..'");
      }
      start = end + 1;
    }
  }

  // Only the directories an exported checkpoint has: checkpoint/, parents/,
  // parents/K/, parents/K/checkpoint/.
  void check_directory(const std::string& name) const {
    std::string dir = name;
    if (!dir.empty() && dir.back() == '/') dir.pop_back();
    // parents/K holds dump.log; checkpoint/ and parents/K/checkpoint/ hold images.
    bool known = dir == "parents" || store_path_of(dir + "/dump.log") || store_path_of(dir + "/x");
    if (!known) fail_entry(name, "is a directory in an unexpected place");
  }

  void check_regular(struct archive_entry* e, const std::string& name) const {
    if (archive_entry_hardlink(e)) fail_entry(name, "is a hard link");
    switch (archive_entry_filetype(e)) {
      case AE_IFREG:
        return;
      case AE_IFLNK:
        fail_entry(name, "is a symbolic link");
      case AE_IFDIR:
        fail_entry(name, "is a directory where a file belongs");
      case AE_IFCHR:
      case AE_IFBLK:
        fail_entry(name, "is a device node");
      case AE_IFIFO:
        fail_entry(name, "is a FIFO");
      default:
        fail_entry(name, "is not a regular file");
    }
  }

  std::string read_small(struct archive_entry* e, const std::string& name, int64_t max) {
    if (!archive_entry_size_is_set(e) || archive_entry_size(e) > max) {
      fail_entry(name, "is larger than " + std::to_string(max) + " bytes");
    }
    std::string out;
    char buf[64 << 10];
    for (;;) {
      la_ssize_t n = archive_read_data(m_a.get(), buf, sizeof buf);
      if (n < 0) fail_entry(name, "cannot be read: " + archive_message(m_a.get()));
      if (n == 0) break;
      if (out.size() + static_cast<std::size_t>(n) > static_cast<std::size_t>(max)) {
        fail_entry(name, "is larger than " + std::to_string(max) + " bytes");
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

  void read_file(struct archive_entry* e, const std::string& name, const CheckpointFile& f,
                 EntrySink* sink) {
    if (archive_entry_size_is_set(e) && static_cast<uint64_t>(archive_entry_size(e)) != f.size) {
      fail_entry(name, "has " + std::to_string(archive_entry_size(e)) + " bytes, " +
                           k_archive_config + " says " + std::to_string(f.size));
    }
    Sha256 hash;
    uint64_t size = 0;
    m_buf.resize(k_buffer_bytes);
    for (;;) {
      la_ssize_t n = archive_read_data(m_a.get(), m_buf.data(), k_buffer_bytes);
      if (n < 0) fail_entry(name, "cannot be read: " + archive_message(m_a.get()));
      if (n == 0) break;
      auto len = static_cast<uint64_t>(n);
      if (len > f.size - size) {
        fail_entry(name, "holds more than the " + std::to_string(f.size) + " bytes " +
                             k_archive_config + " says");
      }
      hash.update(m_buf.data(), static_cast<std::size_t>(n));
      if (sink) {
        m_buf.resize(static_cast<std::size_t>(n));
        sink->data(f.path, size, m_buf);
        m_buf.resize(k_buffer_bytes);
      }
      size += len;
      m_done += len;
      m_ticker(m_done, m_total);
    }
    if (size != f.size) {
      fail_entry(name, "has " + std::to_string(size) + " bytes, " + k_archive_config + " says " +
                           std::to_string(f.size));
    }
    if (hash.hex_digest() != f.sha256) {
      fail_entry(name, "does not match its sha256 digest in " + std::string(k_archive_config));
    }
    if (sink) sink->done(f);
  }

  std::string m_file;
  uint64_t m_max_bytes;
  Ticker m_ticker;
  ArchivePtr m_a;
  CheckpointManifest m_manifest;
  std::map<std::string, CheckpointFile> m_expected;
  std::set<std::string> m_seen;
  std::string m_buf;
  uint64_t m_total = 0;
  uint64_t m_done = 0;
};

class StoreSink : public EntrySink {
 public:
  StoreSink(const CheckpointStore& store, const ImportOptions& options)
      : m_store(store), m_options(options) {}

  void begin(const CheckpointManifest& m) override {
    std::string name = m_options.name.empty() ? m.name : m_options.name;
    validate_name("checkpoint name", name);
    if (m_options.name.empty() && m_options.fresh_name_if_taken && m_store.exists(name)) {
      std::string base = name.substr(0, 48) + "-imported";
      name = base;
      for (int i = 2; m_store.exists(name); ++i) name = base + "-" + std::to_string(i);
    }
    if (m_store.exists(name)) {
      throw Error(
          "a checkpoint named '" + name + "' already exists",
          "import it under another name with --name NEW, or remove it: kcr checkpoints rm " + name,
          ExitCode::usage);
    }
    uint64_t total = 0;
    for (const auto& f : m.files) total += f.size;
    m_writer = std::make_unique<CheckpointWriter>(m_store, name, total);
    m_name = name;
  }

  void data(const std::string& path, uint64_t offset, const std::string& bytes) override {
    m_writer->write_chunk(path, offset, bytes);
  }

  void done(const CheckpointFile& f) override {
    m_writer->file_done(f.path, f.size, f.sha256);
    if (++m_files == 1) fault_point("archive.import-during-read");
  }

  CheckpointManifest commit(CheckpointManifest m) {
    fault_point("archive.import-before-commit");
    m.name = m_name;
    m_writer->commit(m);
    return m;
  }

 private:
  const CheckpointStore& m_store;
  const ImportOptions& m_options;
  std::unique_ptr<CheckpointWriter> m_writer;
  std::string m_name;
  std::size_t m_files = 0;
};

class VisitorSink : public EntrySink {
 public:
  explicit VisitorSink(const ArchiveVisitor& v) : m_v(v) {}
  void begin(const CheckpointManifest&) override {}
  void data(const std::string& path, uint64_t offset, const std::string& bytes) override {
    if (m_v.data) m_v.data(path, offset, bytes);
  }
  void done(const CheckpointFile& f) override {
    if (m_v.done) m_v.done(f);
  }

 private:
  const ArchiveVisitor& m_v;
};

}  // namespace

std::string archive_name_of(const std::string& store_path) {
  if (store_path == k_manifest) return k_archive_config;
  std::string prefix = round_prefix(store_path);
  std::string rest = store_path.substr(prefix.size());
  if (starts_with(rest, "images/")) return prefix + "checkpoint/" + rest.substr(7);
  return store_path;
}

std::optional<std::string> store_path_of(const std::string& archive_name) {
  if (archive_name == k_archive_config) return std::string(k_manifest);
  std::string prefix = round_prefix(archive_name);
  std::string rest = archive_name.substr(prefix.size());
  std::string path;
  if (starts_with(rest, "checkpoint/")) {
    path = prefix + "images/" + rest.substr(11);
  } else if (starts_with(rest, "images/")) {
    return std::nullopt;  // an archive spells the images' directory checkpoint/
  } else {
    path = archive_name;
  }
  if (!is_valid_checkpoint_path(path)) return std::nullopt;
  return path;
}

ArchiveSummary export_checkpoint(const CheckpointStore& store, const std::string& name,
                                 const std::string& file, Compression compression,
                                 const ArchiveProgress& progress) {
  CheckpointManifest m = store.load(name);
  if (m.lazy_pages) {
    throw Error("checkpoint '" + name + "' was made by a lazy migration and holds no memory",
                "only a complete checkpoint can be exported");
  }
  std::string manifest_text = read_file(store.dir(name) + "/" + k_manifest, k_max_config_bytes);
  ArchiveSummary out;
  out.path = file;
  out.compression = compression;
  for (const auto& f : m.files) out.content_bytes += f.size;

  auto slash = file.rfind('/');
  std::string tmp = (slash == std::string::npos ? std::string() : file.substr(0, slash + 1)) +
                    ".partial-" + (slash == std::string::npos ? file : file.substr(slash + 1)) +
                    "-" + random_suffix();
  RemoveUnlessKept cleanup(tmp);
  ArchiveOut a(file, tmp, compression);
  a.small_file(k_archive_config, manifest_text);
  a.small_file(k_archive_spec, spec_json(m));

  Ticker tick(progress);
  std::set<std::string> dirs;
  std::string buf(k_buffer_bytes, '\0');
  uint64_t done = 0;
  for (const auto& f : m.files) {
    std::string entry = archive_name_of(f.path);
    // Each directory once, before its first file, as tar itself writes them.
    for (auto s = entry.find('/'); s != std::string::npos; s = entry.find('/', s + 1)) {
      if (dirs.insert(entry.substr(0, s)).second) a.directory(entry.substr(0, s));
    }
    std::string path = store.dir(name) + "/" + f.path;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) throw_errno("checkpoint '" + name + "': open " + f.path);
    a.begin_file(entry, f.size);
    Sha256 hash;
    uint64_t size = 0;
    while (size < f.size) {
      ssize_t n = ::read(fd.get(), buf.data(), std::min<uint64_t>(buf.size(), f.size - size));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("checkpoint '" + name + "': read " + f.path);
      if (n == 0) break;
      hash.update(buf.data(), static_cast<std::size_t>(n));
      a.data(buf.data(), static_cast<std::size_t>(n));
      size += static_cast<uint64_t>(n);
      done += static_cast<uint64_t>(n);
      tick(done, out.content_bytes);
    }
    char extra;
    if (size != f.size || ::read(fd.get(), &extra, 1) != 0 || hash.hex_digest() != f.sha256) {
      throw Error("checkpoint '" + name + "': file " + f.path +
                      " does not match the manifest (size or sha256); nothing was exported",
                  "kcr checkpoints verify " + name + " names the damage");
    }
    if (++out.files == 1) fault_point("archive.export-during-write");
  }
  a.close();
  {
    UniqueFd fd(::open(tmp.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || ::fsync(fd.get()) != 0) throw_errno("fsync " + tmp);
  }
  fault_point("archive.export-before-rename");
  if (::rename(tmp.c_str(), file.c_str()) != 0)
    throw_errno("rename the archive into place (" + file + ")");
  cleanup.keep();
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) out.archive_bytes = static_cast<uint64_t>(st.st_size);
  return out;
}

CheckpointManifest import_checkpoint(const CheckpointStore& store, const std::string& file,
                                     const ImportOptions& options,
                                     const ArchiveProgress& progress) {
  if (!options.name.empty()) validate_name("checkpoint name", options.name);
  StoreSink sink(store, options);
  ArchiveIn in(file, options.max_bytes, progress);
  CheckpointManifest m = in.read(&sink);
  return sink.commit(std::move(m));
}

CheckpointManifest read_archive(const std::string& file, const ArchiveVisitor& visitor,
                                const ArchiveProgress& progress, uint64_t max_bytes) {
  VisitorSink sink(visitor);
  ArchiveIn in(file, max_bytes, progress);
  return in.read(&sink);
}

CheckpointManifest verify_archive(const std::string& file, const ArchiveProgress& progress,
                                  uint64_t max_bytes) {
  ArchiveIn in(file, max_bytes, progress);
  std::map<unsigned, CriuImageCollector> dumps;  // by round: each dump's images
  ArchiveVisitor visitor;
  visitor.data = [&](const std::string& path, uint64_t offset, const std::string& bytes) {
    if (auto image = image_of_path(path)) dumps[image->first].data(image->second, offset, bytes);
  };
  visitor.done = [&](const CheckpointFile& f) {
    if (auto image = image_of_path(f.path)) dumps[image->first].done(image->second, f.size);
  };
  VisitorSink sink(visitor);
  CheckpointManifest m = in.read(&sink);
  bool has_images = false;
  for (const auto& f : m.files) has_images = has_images || starts_with(f.path, "images/");
  if (!has_images) in.fail(std::string(k_archive_config) + " lists no CRIU images");
  return m;
}

}  // namespace kcr::core
