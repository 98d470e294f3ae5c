#include "core/checkpoint_store.hpp"

#include "core/rootfs_base.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "core/criu_image.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/names.hpp"
#include "core/time.hpp"

namespace fs = std::filesystem;

namespace kcr::core {

namespace {

constexpr std::size_t k_max_files = 100000;

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t extra;  // continuation bytes after the lead byte C
    if (c < 0x80)
      extra = 0;
    else if ((c >> 5) == 6)
      extra = 1;
    else if ((c >> 4) == 14)
      extra = 2;
    else if ((c >> 3) == 30)
      extra = 3;
    else
      return false;
    if (s.size() - i <= extra) return false;
    uint32_t cp = extra == 0 ? c : c & (0x3f >> extra);
    for (std::size_t k = 1; k <= extra; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t k_min[] = {0, 0x80, 0x800, 0x10000};
    if (cp < k_min[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

// YAML's emitter replaces what is not UTF-8, so such a manifest would not
// survive being written again (an import rewrites it): refuse it instead.
void check_utf8(const CheckpointManifest& m, const std::string& source) {
  std::vector<const std::string*> texts = {
      &m.name,  &m.created,    &m.kcr_version, &m.criu_version, &m.kernel_release,
      &m.image, &m.image_hash, &m.vm,          &m.workload};
  texts.push_back(&m.options.manage_cgroups_mode());
  for (const auto& a : m.argv) texts.push_back(&a);
  for (const auto& f : m.files) texts.push_back(&f.sha256);
  for (const auto* t : texts) {
    if (!valid_utf8(*t)) throw Error(source + ": the manifest holds text that is not UTF-8");
  }
}

bool plain_file_name(const std::string& name) {
  if (name.empty() || name.size() > 200 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

void fsync_path(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (fd && ::fsync(fd.get()) != 0) throw_errno("fsync " + path);
}

}  // namespace

uint64_t CheckpointManifest::image_bytes() const {
  uint64_t total = 0;
  for (const auto& f : files) {
    if (f.path.rfind("images/", 0) == 0) total += f.size;
  }
  return total;
}

bool is_valid_checkpoint_path(const std::string& path) {
  std::string rest = path;
  if (rest.rfind("parents/", 0) == 0) {
    rest = rest.substr(8);
    std::size_t digits = 0;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) {
      ++digits;
    }
    if (digits == 0 || digits > 3 || rest[0] == '0' || digits >= rest.size() ||
        rest[digits] != '/') {
      return false;
    }
    rest = rest.substr(digits + 1);
  }
  if (rest == "dump.log" || rest == "stats-dump" || rest == "restore.log") return true;
  if (rest.rfind("images/", 0) != 0) return false;
  return plain_file_name(rest.substr(7));
}

// A text value as YAML: double-quoted, with escapes, when it holds a control character.
// yaml-cpp writes a lone carriage return plain, and reading it back takes it for a line
// break (found by tests/fuzz/fuzz_manifest.cpp).
namespace {
struct Text {
  const std::string& s;
};
YAML::Emitter& operator<<(YAML::Emitter& out, Text t) {
  bool control = std::any_of(t.s.begin(), t.s.end(), [](unsigned char c) { return c < 0x20; });
  if (control) out << YAML::DoubleQuoted;
  return out << t.s;
}
}  // namespace

std::string manifest_to_yaml(const CheckpointManifest& m) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "format_version" << YAML::Value << m.format_version;
  out << YAML::Key << "name" << YAML::Value << Text{m.name};
  out << YAML::Key << "created" << YAML::Value << Text{m.created};
  out << YAML::Key << "kcr_version" << YAML::Value << Text{m.kcr_version};
  out << YAML::Key << "criu_version" << YAML::Value << Text{m.criu_version};
  out << YAML::Key << "kernel_release" << YAML::Value << Text{m.kernel_release};
  out << YAML::Key << "image" << YAML::Value << Text{m.image};
  out << YAML::Key << "image_hash" << YAML::Value << Text{m.image_hash};
  out << YAML::Key << "vm" << YAML::Value << Text{m.vm};
  out << YAML::Key << "workload" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << Text{m.workload};
  out << YAML::Key << "pid" << YAML::Value << m.pid;
  out << YAML::Key << "argv" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const auto& a : m.argv) out << Text{a};
  out << YAML::EndSeq;
  if (!m.rootfs_digest.empty())
    out << YAML::Key << "rootfs" << YAML::Value << Text{m.rootfs_digest};
  out << YAML::EndMap;
  const auto& o = m.options;
  out << YAML::Key << "options" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "leave_running" << YAML::Value << o.leave_running();
  out << YAML::Key << "tcp_established" << YAML::Value << o.tcp_established();
  out << YAML::Key << "tcp_skip_in_flight" << YAML::Value << o.tcp_skip_in_flight();
  out << YAML::Key << "ext_unix_sk" << YAML::Value << o.ext_unix_sk();
  out << YAML::Key << "file_locks" << YAML::Value << o.file_locks();
  out << YAML::Key << "link_remap" << YAML::Value << o.link_remap();
  out << YAML::Key << "shell_job" << YAML::Value << o.shell_job();
  out << YAML::Key << "manage_cgroups_mode" << YAML::Value << Text{o.manage_cgroups_mode()};
  out << YAML::EndMap;
  out << YAML::Key << "timings_ms" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "dump" << YAML::Value << m.dump_ms;
  out << YAML::Key << "total" << YAML::Value << m.total_ms;
  out << YAML::EndMap;
  if (!m.channel.empty()) out << YAML::Key << "channel" << YAML::Value << Text{m.channel};
  if (m.stats) {
    const auto& s = *m.stats;
    out << YAML::Key << "criu_statistics" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "freezing_time" << YAML::Value << s.freezing_time;
    out << YAML::Key << "frozen_time" << YAML::Value << s.frozen_time;
    out << YAML::Key << "memdump_time" << YAML::Value << s.memdump_time;
    out << YAML::Key << "memwrite_time" << YAML::Value << s.memwrite_time;
    out << YAML::Key << "pages_scanned" << YAML::Value << s.pages_scanned;
    out << YAML::Key << "pages_written" << YAML::Value << s.pages_written;
    out << YAML::EndMap;
  }
  if (m.lazy_pages) out << YAML::Key << "lazy_pages" << YAML::Value << true;
  if (!m.pre_dumps.empty()) {
    out << YAML::Key << "pre_dumps" << YAML::Value << YAML::BeginSeq;
    for (const auto& r : m.pre_dumps) {
      out << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "round" << YAML::Value << r.round;
      out << YAML::Key << "dump_ms" << YAML::Value << r.dump_ms;
      out << YAML::Key << "total_ms" << YAML::Value << r.total_ms;
      out << YAML::Key << "pages_written" << YAML::Value << r.pages_written;
      out << YAML::Key << "bytes" << YAML::Value << r.bytes;
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  out << YAML::Key << "files" << YAML::Value << YAML::BeginSeq;
  for (const auto& f : m.files) {
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "path" << YAML::Value << f.path;
    out << YAML::Key << "size" << YAML::Value << f.size;
    out << YAML::Key << "sha256" << YAML::Value << f.sha256;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

CheckpointManifest manifest_from_yaml(const std::string& text, const std::string& source) {
  try {
    YAML::Node n = YAML::Load(text);
    CheckpointManifest m;
    m.format_version = n["format_version"].as<int>();
    if (m.format_version > k_checkpoint_format_version || m.format_version < 1) {
      throw Error(source + ": checkpoint format version " + std::to_string(m.format_version) +
                      " is not supported by this kcr (it reads version " +
                      std::to_string(k_checkpoint_format_version) + ")",
                  "use the kcr version that wrote it");
    }
    m.name = n["name"].as<std::string>();
    m.created = n["created"].as<std::string>("");
    m.kcr_version = n["kcr_version"].as<std::string>("");
    m.criu_version = n["criu_version"].as<std::string>("");
    m.kernel_release = n["kernel_release"].as<std::string>("");
    m.image = n["image"].as<std::string>("");
    m.image_hash = n["image_hash"].as<std::string>("");
    m.vm = n["vm"].as<std::string>("");
    m.workload = n["workload"]["name"].as<std::string>();
    m.pid = n["workload"]["pid"].as<int>(0);
    m.argv = n["workload"]["argv"].as<std::vector<std::string>>();
    m.rootfs_digest = n["workload"]["rootfs"].as<std::string>("");
    if (!m.rootfs_digest.empty() && !is_rootfs_digest(m.rootfs_digest)) {
      throw Error(source + ": workload.rootfs '" + m.rootfs_digest + "' is not a sha256 digest",
                  "the checkpoint is damaged");
    }
    auto o = n["options"];
    m.options.set_leave_running(o["leave_running"].as<bool>(false));
    m.options.set_tcp_established(o["tcp_established"].as<bool>(false));
    m.options.set_tcp_skip_in_flight(o["tcp_skip_in_flight"].as<bool>(false));
    m.options.set_ext_unix_sk(o["ext_unix_sk"].as<bool>(false));
    m.options.set_file_locks(o["file_locks"].as<bool>(false));
    m.options.set_link_remap(o["link_remap"].as<bool>(false));
    m.options.set_shell_job(o["shell_job"].as<bool>(false));
    m.options.set_manage_cgroups_mode(o["manage_cgroups_mode"].as<std::string>(""));
    m.dump_ms = n["timings_ms"]["dump"].as<uint64_t>(0);
    m.total_ms = n["timings_ms"]["total"].as<uint64_t>(0);
    m.channel = n["channel"].as<std::string>("");
    if (m.channel != "disk" && m.channel != "port") m.channel.clear();
    if (auto s = n["criu_statistics"]) {
      CriuDumpStats st;
      st.freezing_time = s["freezing_time"].as<uint64_t>(0);
      st.frozen_time = s["frozen_time"].as<uint64_t>(0);
      st.memdump_time = s["memdump_time"].as<uint64_t>(0);
      st.memwrite_time = s["memwrite_time"].as<uint64_t>(0);
      st.pages_scanned = s["pages_scanned"].as<uint64_t>(0);
      st.pages_written = s["pages_written"].as<uint64_t>(0);
      m.stats = st;
    }
    m.lazy_pages = n["lazy_pages"].as<bool>(false);
    for (const auto& r : n["pre_dumps"]) {
      PreDumpRound round;
      round.round = r["round"].as<unsigned>();
      round.dump_ms = r["dump_ms"].as<uint64_t>(0);
      round.total_ms = r["total_ms"].as<uint64_t>(0);
      round.pages_written = r["pages_written"].as<uint64_t>(0);
      round.bytes = r["bytes"].as<uint64_t>(0);
      if (round.round != m.pre_dumps.size() + 1) {
        throw Error(source + ": pre-dump rounds are out of order in the manifest");
      }
      m.pre_dumps.push_back(round);
    }
    for (const auto& f : n["files"]) {
      CheckpointFile cf{f["path"].as<std::string>(), f["size"].as<uint64_t>(),
                        f["sha256"].as<std::string>()};
      if (!is_valid_checkpoint_path(cf.path)) {
        throw Error(source + ": invalid file path '" + cf.path + "' in the manifest");
      }
      m.files.push_back(cf);
    }
    check_utf8(m, source);
    return m;
  } catch (const YAML::Exception& e) {
    throw Error(source + ": malformed checkpoint manifest: " + e.msg,
                "the checkpoint is damaged; remove it with kcr checkpoints rm");
  }
}

CheckpointStore::CheckpointStore(std::string data_dir)
    : m_data_dir(std::move(data_dir)), m_root(m_data_dir + "/checkpoints") {}

bool CheckpointStore::exists(const std::string& name) const {
  std::error_code ec;
  return fs::exists(dir(name), ec);
}

CheckpointManifest CheckpointStore::load(const std::string& name) const {
  validate_name("checkpoint name", name);
  std::string path = dir(name) + "/" + k_manifest;
  auto text = try_read_file(path);
  if (!text) {
    throw Error("no checkpoint named '" + name + "'",
                "kcr checkpoints ls lists the checkpoints in " + m_root);
  }
  CheckpointManifest m = manifest_from_yaml(*text, path);
  if (m.name != name) throw Error(path + ": manifest names checkpoint '" + m.name + "'");
  return m;
}

std::vector<std::string> CheckpointStore::clean_abandoned() const {
  std::vector<std::string> cleaned;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(m_root, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(".partial-", 0) != 0) continue;
    if (!e.is_directory()) {
      // A lock whose checkpoint was committed or removed just before its kcr died.
      std::string dir = e.path().string();
      if (dir.size() > 5 && dir.compare(dir.size() - 5, 5, ".lock") == 0 &&
          !fs::exists(dir.substr(0, dir.size() - 5))) {
        UniqueFd fd(::open(dir.c_str(), O_RDWR | O_CLOEXEC));
        if (fd && ::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) ::unlink(dir.c_str());
      }
      continue;
    }
    std::string lock = e.path().string() + ".lock";
    UniqueFd fd(::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;  // its writer is alive
    std::error_code rm;
    fs::remove_all(e.path(), rm);
    ::unlink(lock.c_str());
    if (!rm) cleaned.push_back(name);
  }
  return cleaned;
}

std::vector<CheckpointManifest> CheckpointStore::list() const {
  std::vector<CheckpointManifest> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(m_root, ec)) {
    std::string name = e.path().filename().string();
    if (!is_valid_name(name) || !e.is_directory()) continue;
    try {
      out.push_back(load(name));
    } catch (const Error&) {
      // unreadable ones are shown by inspect/verify, not by ls
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.created < b.created || (a.created == b.created && a.name < b.name);
  });
  return out;
}

std::optional<std::pair<unsigned, std::string>> image_of_path(const std::string& path) {
  if (path.rfind("images/", 0) == 0) return std::make_pair(0u, path.substr(7));
  if (path.rfind("parents/", 0) != 0) return std::nullopt;
  auto slash = path.find('/', 8);
  if (slash == std::string::npos || path.compare(slash, 8, "/images/") != 0) return std::nullopt;
  unsigned round = 0;
  for (std::size_t i = 8; i < slash; ++i) {
    if (path[i] < '0' || path[i] > '9' || round > 100000) return std::nullopt;
    round = round * 10 + static_cast<unsigned>(path[i] - '0');
  }
  return std::make_pair(round, path.substr(slash + 8));
}

void CheckpointStore::verify(const CheckpointManifest& m) const {
  std::string base = dir(m.name);
  // A manifest cut after a whole line still parses, listing fewer files: a
  // file it does not list gives that away before a partial upload could.
  std::set<std::string> listed;
  for (const auto& f : m.files) listed.insert(f.path);
  std::error_code walk;
  for (const auto& e : fs::recursive_directory_iterator(base, walk)) {
    if (e.is_directory()) continue;
    std::string rel = e.path().lexically_relative(base).string();
    if (rel != k_manifest && !listed.count(rel)) {
      throw Error("checkpoint '" + m.name + "': file " + rel + " is not listed in its " +
                      k_manifest + " (is the manifest truncated?)",
                  "the checkpoint is damaged and cannot be restored");
    }
  }
  bool has_images = false;
  for (const auto& f : m.files) {
    std::string path = base + "/" + f.path;
    std::error_code ec;
    auto size = fs::file_size(path, ec);
    if (ec) {
      throw Error("checkpoint '" + m.name + "': file " + f.path + " is missing",
                  "the checkpoint is damaged and cannot be restored");
    }
    if (size != f.size) {
      throw Error("checkpoint '" + m.name + "': file " + f.path + " has " + std::to_string(size) +
                      " bytes, the manifest says " + std::to_string(f.size),
                  "the checkpoint is damaged and cannot be restored");
    }
    if (sha256_file_hex(path) != f.sha256) {
      throw Error(
          "checkpoint '" + m.name + "': file " + f.path + " does not match its sha256 digest",
          "the checkpoint is damaged and cannot be restored");
    }
    if (f.path.rfind("images/", 0) == 0) has_images = true;
  }
  if (!has_images) throw Error("checkpoint '" + m.name + "' holds no CRIU images");
  std::map<unsigned, CriuImageCollector> dumps;  // by round
  for (const auto& f : m.files) {
    auto image = image_of_path(f.path);
    if (!image) continue;
    auto kind = criu_image_kind(image->second);
    if (kind && kind->magic == 0) continue;  // raw pages and tarballs
    bool whole = kind && kind->entries_only;
    auto& c = dumps[image->first];
    try {
      std::string path = base + "/" + f.path;
      c.data(image->second, 0,
             whole ? read_file(path, f.size) : try_read_file(path, 8).value_or(std::string()));
      c.done(image->second, f.size);
    } catch (const Error& e) {
      throw e.with_context("checkpoint '" + m.name + "'");
    }
  }
}

void CheckpointStore::remove(const std::string& name) {
  validate_name("checkpoint name", name);
  if (!exists(name)) {
    throw Error("no checkpoint named '" + name + "'", "kcr checkpoints ls lists the checkpoints");
  }
  // Rename first so a half-removed checkpoint never looks complete.
  std::string doomed = m_root + "/.removing-" + name + "-" + random_suffix();
  fs::rename(dir(name), doomed);
  std::error_code ec;
  fs::remove_all(doomed, ec);
}

std::string CheckpointStore::keep_log(const std::string& label, const std::string& content) const {
  std::string dir = m_data_dir + "/logs";
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::string stamp = now_iso8601();
  std::replace(stamp.begin(), stamp.end(), ':', '-');
  std::string path = dir + "/" + label + "-" + stamp + ".log";
  std::ofstream out(path, std::ios::trunc);
  out << content;
  return path;
}

CheckpointWriter::CheckpointWriter(const CheckpointStore& store, const std::string& name,
                                   uint64_t max_bytes)
    : m_store(store), m_name(name), m_max_bytes(max_bytes) {
  validate_name("checkpoint name", name);
  if (store.exists(name)) {
    throw Error("a checkpoint named '" + name + "' already exists",
                "choose another name with -o, or remove it: kcr checkpoints rm " + name,
                ExitCode::usage);
  }
  std::error_code ec;
  fs::create_directories(store.root(), ec);
  if (ec) throw Error("cannot create " + store.root() + ": " + ec.message());
  m_tmp = store.root() + "/.partial-" + name + "-" + random_suffix();
  m_lock = UniqueFd(::open((m_tmp + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!m_lock || ::flock(m_lock.get(), LOCK_EX | LOCK_NB) != 0) throw_errno("lock " + m_tmp);
  fs::create_directories(m_tmp + "/images", ec);
  if (ec) throw Error("cannot create " + m_tmp + ": " + ec.message());
  ::chmod(m_tmp.c_str(), 0700);
}

CheckpointWriter::~CheckpointWriter() {
  if (!m_committed) {
    m_files.clear();
    std::error_code ec;
    fs::remove_all(m_tmp, ec);
  }
  ::unlink((m_tmp + ".lock").c_str());
}

void CheckpointWriter::write_chunk(const std::string& path, uint64_t offset,
                                   const std::string& data) {
  if (!is_valid_checkpoint_path(path)) {
    throw Error("protocol error: the agent sent a file with an invalid path");
  }
  auto it = m_files.find(path);
  if (it == m_files.end()) {
    if (m_files.size() >= k_max_files) throw Error("protocol error: too many checkpoint files");
    it = m_files.emplace(path, OpenFile{}).first;
  }
  OpenFile& f = it->second;
  if (offset == 0 && (f.fd || f.done)) {
    // The agent resends a file CRIU rewrote: start it over.
    m_bytes -= f.size;
    f = OpenFile{};
  }
  if (offset != f.size) {
    throw Error("protocol error: chunk of " + path + " at offset " + std::to_string(offset) +
                ", expected " + std::to_string(f.size));
  }
  if (f.done) throw Error("protocol error: chunk for the completed file " + path);
  if (data.size() > m_max_bytes - m_bytes) {
    throw Error("protocol error: the guest sent more than " + std::to_string(m_max_bytes) +
                " bytes for one checkpoint");
  }
  if (!f.fd) {
    std::string full = m_tmp + "/" + path;
    if (path.rfind("parents/", 0) == 0) {
      // A pre-dump round's directory (the path was validated above).
      std::error_code ec;
      fs::create_directories(full.substr(0, full.rfind('/')), ec);
      if (ec) throw Error("cannot create the directory of " + full + ": " + ec.message());
    }
    f.fd.reset(::open(full.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!f.fd) throw_errno("create " + full);
  }
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(f.fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      throw Error("writing checkpoint file " + path + ": " + std::strerror(e),
                  e == ENOSPC ? "free space in " + m_store.root() + " (or set data_dir)" : "");
    }
    done += static_cast<std::size_t>(n);
  }
  f.hash.update(data);
  f.checksum.update(data);
  f.size += data.size();
  m_bytes += data.size();
}

void CheckpointWriter::file_done(const std::string& path, uint64_t size, const std::string& sha256,
                                 const std::string& checksum64) {
  if (!is_valid_checkpoint_path(path)) {
    throw Error("protocol error: the agent sent a file with an invalid path");
  }
  auto it = m_files.find(path);
  if (it == m_files.end() && size == 0) {
    write_chunk(path, 0, "");  // an empty file arrives with no chunk
    it = m_files.find(path);
  }
  if (it == m_files.end() || it->second.done) {
    throw Error("protocol error: completion of unknown file " + path);
  }
  OpenFile& f = it->second;
  if (!f.fd) write_chunk(path, 0, "");
  if (f.size != size) {
    throw Error("checkpoint transfer: " + path + " arrived with " + std::to_string(f.size) +
                " bytes, the guest has " + std::to_string(size));
  }
  std::string digest = f.hash.hex_digest();
  bool intact = checksum64.empty() ? digest == sha256 : f.checksum.hex_digest() == checksum64;
  if (!intact || (checksum64.empty() && sha256.empty())) {
    throw Error("checkpoint transfer: " + path + " arrived damaged (digest mismatch)");
  }
  if (::fsync(f.fd.get()) != 0) throw_errno("fsync " + path);
  f.fd.reset();
  f.done = CheckpointFile{path, size, digest};
}

std::string CheckpointWriter::read_small(const std::string& path, std::size_t max_bytes) const {
  auto it = m_files.find(path);
  if (it == m_files.end() || !it->second.done) return {};
  return try_read_file(m_tmp + "/" + path, max_bytes).value_or("");
}

std::vector<CheckpointFile> CheckpointWriter::received_files() const {
  std::vector<CheckpointFile> out;
  for (const auto& [path, f] : m_files) {
    if (f.done) out.push_back(*f.done);
  }
  return out;
}

void CheckpointWriter::commit(CheckpointManifest m) {
  std::map<std::string, CheckpointFile> received;
  for (const auto& [path, f] : m_files) {
    if (!f.done) throw Error("checkpoint transfer: " + path + " was not completed");
    received[path] = *f.done;
  }
  if (m.files.size() != received.size()) {
    throw Error("checkpoint transfer: the agent listed " + std::to_string(m.files.size()) +
                " files but sent " + std::to_string(received.size()));
  }
  for (const auto& f : m.files) {
    auto it = received.find(f.path);
    if (it == received.end() || it->second.size != f.size || it->second.sha256 != f.sha256) {
      throw Error("checkpoint transfer: " + f.path + " does not match the agent's file list");
    }
  }
  bool has_images = std::any_of(m.files.begin(), m.files.end(),
                                [](const auto& f) { return f.path.rfind("images/", 0) == 0; });
  if (!has_images) throw Error("checkpoint transfer: no CRIU image files arrived");
  m.name = m_name;
  std::string manifest_path = m_tmp + "/" + k_manifest;
  write_file_atomic(manifest_path, manifest_to_yaml(m), 0644);
  fsync_path(m_tmp + "/images", O_RDONLY | O_DIRECTORY);
  for (const auto& r : m.pre_dumps) {
    std::string round = m_tmp + "/parents/" + std::to_string(r.round);
    fsync_path(round + "/images", O_RDONLY | O_DIRECTORY);
    fsync_path(round, O_RDONLY | O_DIRECTORY);
  }
  if (!m.pre_dumps.empty()) fsync_path(m_tmp + "/parents", O_RDONLY | O_DIRECTORY);
  fsync_path(m_tmp, O_RDONLY | O_DIRECTORY);
  std::string final_dir = m_store.dir(m_name);
  if (::rename(m_tmp.c_str(), final_dir.c_str()) != 0) {
    throw_errno("rename the checkpoint into place (" + final_dir + ")");
  }
  fsync_path(m_store.root(), O_RDONLY | O_DIRECTORY);
  m_committed = true;
}

}  // namespace kcr::core
