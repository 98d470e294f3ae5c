#include "core/checkpoint_inspect.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "core/checkpoint_archive.hpp"
#include "core/criu_image.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "criu_images.pb.h"

namespace kcr::core {

namespace {

constexpr uint64_t k_page_bytes = 4096;
// A process tree larger than this is not one CRIU wrote.
constexpr std::size_t k_max_processes = 1u << 16;

[[noreturn]] void bad(const std::string& name, const std::string& why) {
  throw Error("CRIU image " + name + " " + why, "the checkpoint is damaged or not made by CRIU");
}

bool is_utf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n;
  }
  return true;
}

// A string from an image, safe to print: control bytes (and every byte of
// text that is not UTF-8) as \xNN.
std::string escaped(const std::string& s) {
  bool utf8 = is_utf8(s);
  std::string out;
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8) || c == '\\') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

class Reader {
 public:
  explicit Reader(const ImageFiles& images) : m_images(images) {}

  bool has(const std::string& name) const { return m_images.bytes.count(name) != 0; }
  std::optional<uint64_t> size_of(const std::string& name) const {
    auto it = m_images.sizes.find(name);
    if (it == m_images.sizes.end()) return std::nullopt;
    return it->second;
  }

  template <class Message>
  std::vector<Message> all(const std::string& name) const {
    auto it = m_images.bytes.find(name);
    if (it == m_images.bytes.end()) {
      throw Error("CRIU image " + name + " is missing", "the checkpoint is incomplete");
    }
    std::vector<Message> out;
    std::size_t index = 0;
    for (auto entry : criu_image_entries(name, it->second)) {
      Message m;
      if (!m.ParseFromArray(entry.data(), static_cast<int>(entry.size()))) {
        bad(name, "has an entry that does not decode (entry " + std::to_string(index) + ")");
      }
      out.push_back(std::move(m));
      ++index;
    }
    return out;
  }

  template <class Message>
  Message one(const std::string& name) const {
    auto v = all<Message>(name);
    if (v.empty()) bad(name, "has no entry");
    return v.front();
  }

 private:
  const ImageFiles& m_images;
};

std::string fd_type_name(uint32_t t) {
  static const char* names[] = {"UND",      "REG",     "PIPE",      "FIFO",      "INETSK",
                                "UNIXSK",   "EVENTFD", "EVENTPOLL", "INOTIFY",   "SIGNALFD",
                                "PACKETSK", "TTY",     "FANOTIFY",  "NETLINKSK", "NS",
                                "TUNF",     "EXT",     "TIMERFD",   "MEMFD"};
  if (t < sizeof names / sizeof names[0]) return names[t];
  return "TYPE" + std::to_string(t);
}

std::string task_state_name(uint32_t s) {
  switch (s) {
    case 1:
      return "alive";
    case 2:
      return "dead";
    case 3:
      return "zombie";
    case 6:
      return "stopped";
    default:
      return "state " + std::to_string(s);
  }
}

std::string sock_state_name(uint32_t s) {
  static const char* names[] = {"",           "established", "syn-sent",  "syn-recv",
                                "fin-wait1",  "fin-wait2",   "time-wait", "close",
                                "close-wait", "last-ack",    "listen",    "closing"};
  if (s < sizeof names / sizeof names[0] && s != 0) return names[s];
  return "state " + std::to_string(s);
}

std::string sock_type_name(uint32_t t) {
  switch (t) {
    case 1:
      return "stream";
    case 2:
      return "dgram";
    case 3:
      return "raw";
    case 5:
      return "seqpacket";
    default:
      return "type " + std::to_string(t);
  }
}

std::string fstype_name(const criu::MntEntry& m) {
  static const char* names[] = {"unsupported", "proc",    "sysfs",   "devtmpfs", "binfmt_misc",
                                "tmpfs",       "devpts",  "simfs",   "pstore",   "securityfs",
                                "fusectl",     "debugfs", "cgroup",  "aufs",     "mqueue",
                                "fuse",        "auto",    "overlay", "autofs",   "tracefs"};
  uint32_t t = m.fstype();
  if (t == 16 && m.has_fsname()) return escaped(m.fsname());
  if (t == 23) return "cgroup2";
  if (t < sizeof names / sizeof names[0]) return names[t];
  return "fstype " + std::to_string(t);
}

// An address of an inet socket: one u32 (IPv4) or four (IPv6), each holding
// its bytes in network order.
std::string inet_address(const google::protobuf::RepeatedField<uint32_t>& a, uint32_t port) {
  unsigned char raw[16];
  char text[INET6_ADDRSTRLEN];
  for (int i = 0; i < a.size() && i < 4; ++i) {
    uint32_t v = a.Get(i);
    std::memcpy(raw + 4 * i, &v, 4);
  }
  if (a.size() == 1 && inet_ntop(AF_INET, raw, text, sizeof text)) {
    return std::string(text) + ":" + std::to_string(port);
  }
  if (a.size() == 4 && inet_ntop(AF_INET6, raw, text, sizeof text)) {
    return "[" + std::string(text) + "]:" + std::to_string(port);
  }
  return "?:" + std::to_string(port);
}

std::string unix_name(const std::string& name) {
  if (name.empty()) return "";
  if (name[0] == '\0') return "@" + escaped(name.substr(1));
  return escaped(name);
}

InspectedSocket socket_of(const criu::FileEntry& f) {
  InspectedSocket s;
  if (f.has_usk()) {
    const auto& u = f.usk();
    s.id = u.id();
    s.ino = u.ino();
    s.family = "unix";
    s.type = sock_type_name(u.type());
    s.state = sock_state_name(u.state());
    s.local = unix_name(u.name());
    s.peer_ino = u.peer();
    if (u.peer()) s.peer = "unix[" + std::to_string(u.peer()) + "]";
  } else {
    const auto& i = f.isk();
    s.id = i.id();
    s.ino = i.ino();
    s.family = i.family() == 10  ? "inet6"
               : i.family() == 2 ? "inet"
                                 : "family " + std::to_string(i.family());
    s.type = i.proto() == 6 ? "tcp" : i.proto() == 17 ? "udp" : sock_type_name(i.type());
    s.state = sock_state_name(i.state());
    s.local = inet_address(i.src_addr(), i.src_port());
    s.peer = inet_address(i.dst_addr(), i.dst_port());
  }
  return s;
}

// What an fd names, as crit's `x fds` shows it where crit names it.
std::string fd_what(uint32_t type, uint32_t id, const std::map<uint32_t, criu::FileEntry>& files) {
  auto it = files.find(id);
  if (it != files.end()) {
    const auto& f = it->second;
    if (type == 1 && f.has_reg()) return escaped(f.reg().name());
    if (type == 2 && f.has_pipe()) return "pipe[" + std::to_string(f.pipe().pipe_id()) + "]";
    if (type == 5 && f.has_usk()) {
      const auto& u = f.usk();
      std::string n = unix_name(u.name());
      return "unix[" + std::to_string(u.ino()) + " (" + std::to_string(u.peer()) + ")" +
             (n.empty() ? "" : " " + n) + "]";
    }
    if (type == 4 && f.has_isk()) {
      auto s = socket_of(f);
      return s.type + " " + s.local + (s.state == "listen" ? "" : " -> " + s.peer) + " " + s.state;
    }
  }
  if (type == 1) return "unknown path";
  return fd_type_name(type) + "." + std::to_string(id);
}

InspectedMemory memory_of(const Reader& r, uint32_t pid) {
  InspectedMemory mem;
  auto mm = r.one<criu::MmEntry>("mm-" + std::to_string(pid) + ".img");
  for (const auto& v : mm.vmas()) {
    if (v.end() < v.start())
      bad("mm-" + std::to_string(pid) + ".img", "has a vma that ends before it starts");
    ++mem.vmas;
    mem.mapped_bytes += v.end() - v.start();
  }
  std::string pm = "pagemap-" + std::to_string(pid) + ".img";
  auto entries = r.all<criu::PagemapEntry>(pm);
  if (entries.empty()) bad(pm, "has no head entry");     // then runs of pages
  constexpr uint32_t k_pe_parent = 1, k_pe_present = 4;  // PE_LAZY is 2
  for (std::size_t i = 1; i < entries.size(); ++i) {
    const auto& e = entries[i];
    bool parent = e.in_parent() || (e.flags() & k_pe_parent);
    bool present = e.has_flags() ? (e.flags() & k_pe_present) != 0 : !parent;
    if (parent) {
      mem.parent_pages += e.nr_pages();
    } else if (present) {
      mem.dumped_pages += e.nr_pages();
    }
  }
  auto pages = "pages-" + std::to_string(r.one<criu::PagemapHead>(pm).pages_id()) + ".img";
  auto size = r.size_of(pages);
  if (size && *size != mem.dumped_pages * k_page_bytes) {
    bad(pm, "lists " + std::to_string(mem.dumped_pages) + " pages, " + pages + " holds " +
                std::to_string(*size) + " bytes");
  }
  return mem;
}

}  // namespace

std::string dump_prefix(unsigned round) {
  return round == 0 ? "images/" : "parents/" + std::to_string(round) + "/images/";
}

namespace {

std::string stats_path(unsigned round) {
  return round == 0 ? "stats-dump" : "parents/" + std::to_string(round) + "/stats-dump";
}

void check_round(const CheckpointManifest& m, unsigned round, const std::string& where) {
  if (round == 0) return;
  for (const auto& r : m.pre_dumps) {
    if (r.round == round) return;
  }
  throw Error(where + " has no pre-dump round " + std::to_string(round),
              m.pre_dumps.empty() ? "it was made without --pre-dump"
                                  : "its rounds are 1.." + std::to_string(m.pre_dumps.size()),
              ExitCode::usage);
}

}  // namespace

namespace {

bool memory_image(const std::string& name) {
  return name.rfind("pagemap-", 0) == 0 || name.rfind("pages-", 0) == 0;
}

// Gathers the images of the final dump and, for pre-dump round K, the
// round's own: a pre-dump writes memory only (inventory, pagemaps, pages),
// so its process tree, files and sockets are the final dump's.
class Gather {
 public:
  explicit Gather(unsigned round) : m_round(round), m_prefix(dump_prefix(round)) {}

  void data(const std::string& path, uint64_t offset, const std::string& bytes) {
    if (auto r = route(path)) r->first->data(r->second, offset, bytes);
  }
  void done(const std::string& path, uint64_t size) {
    if (auto r = route(path)) r->first->done(r->second, size);
  }
  bool wanted(const std::string& path) { return route(path).has_value(); }

  ImageFiles result() {
    ImageFiles out;
    out.sizes = m_final.sizes();
    out.bytes = m_final.take_bytes();
    if (m_round == 0) return out;
    out.pre_dump = true;
    std::erase_if(out.sizes, [](const auto& e) { return memory_image(e.first); });
    std::erase_if(out.bytes, [](const auto& e) { return memory_image(e.first); });
    out.bytes.erase("stats-dump");
    for (const auto& [name, size] : m_pre.sizes()) out.sizes[name] = size;
    for (auto& [name, bytes] : m_pre.take_bytes()) out.bytes[name] = std::move(bytes);
    return out;
  }

 private:
  std::optional<std::pair<CriuImageCollector*, std::string>> route(const std::string& path) {
    if (m_round != 0 && path.rfind(m_prefix, 0) == 0) {
      std::string name = path.substr(m_prefix.size());
      if (memory_image(name) || name == "inventory.img") return std::make_pair(&m_pre, name);
      return std::nullopt;
    }
    if (m_round != 0 && path == stats_path(m_round))
      return std::make_pair(&m_pre, std::string("stats-dump"));
    if (path.rfind("images/", 0) == 0) {
      std::string name = path.substr(7);
      if (m_round != 0 && name == "inventory.img") return std::nullopt;
      return std::make_pair(&m_final, name);
    }
    if (path == "stats-dump") return std::make_pair(&m_final, std::string("stats-dump"));
    return std::nullopt;
  }

  unsigned m_round;
  std::string m_prefix;
  CriuImageCollector m_final, m_pre;
};

}  // namespace

ImageFiles load_store_images(const CheckpointStore& store, const CheckpointManifest& m,
                             unsigned round) {
  check_round(m, round, "checkpoint '" + m.name + "'");
  Gather g(round);
  std::string base = store.dir(m.name) + "/";
  for (const auto& f : m.files) {
    if (!g.wanted(f.path)) continue;
    std::string name = f.path.substr(f.path.rfind('/') + 1);
    auto kind = criu_image_kind(name);
    if (!kind || kind->magic != 0) {
      bool whole = kind && kind->entries_only;
      std::string path = base + f.path;
      g.data(f.path, 0,
             whole ? read_file(path, f.size) : try_read_file(path, 8).value_or(std::string()));
    }
    g.done(f.path, f.size);
  }
  return g.result();
}

ImageFiles load_archive_images(const std::string& file, unsigned round,
                               CheckpointManifest* manifest) {
  Gather g(round);
  ArchiveVisitor visitor;
  visitor.data = [&](const std::string& path, uint64_t offset, const std::string& bytes) {
    g.data(path, offset, bytes);
  };
  visitor.done = [&](const CheckpointFile& f) { g.done(f.path, f.size); };
  auto m = read_archive(file, visitor);
  check_round(m, round, "archive " + file);
  if (manifest) *manifest = m;
  return g.result();
}

Inspection inspect_images(const ImageFiles& images) {
  Reader r(images);
  Inspection in;
  in.img_version = r.one<criu::InventoryEntry>("inventory.img").img_version();
  for (const auto& [name, size] : images.sizes) {
    in.image_bytes += size;
    if (name.rfind("pages-", 0) == 0) in.pages_bytes += size;
  }
  auto stats = images.bytes.find("stats-dump");
  if (stats != images.bytes.end()) in.stats = parse_dump_stats(stats->second);

  std::map<uint32_t, criu::FileEntry> files;
  if (r.has("files.img")) {
    for (auto& f : r.all<criu::FileEntry>("files.img")) {
      uint32_t id = f.id();
      if ((f.has_usk() && f.type() == 5) || (f.has_isk() && f.type() == 4)) {
        in.sockets.push_back(socket_of(f));
      }
      files.emplace(id, std::move(f));
    }
  }
  auto reg_name = [&](uint32_t id) { return fd_what(1, id, files); };

  auto tree = r.all<criu::PstreeEntry>("pstree.img");
  if (tree.empty()) bad("pstree.img", "has no process");
  if (tree.size() > k_max_processes) bad("pstree.img", "has more than 65536 processes");
  std::set<uint32_t> pids;
  for (const auto& p : tree) {
    if (!pids.insert(p.pid()).second) {
      bad("pstree.img", "lists pid " + std::to_string(p.pid()) + " twice");
    }
  }
  std::set<std::string> mount_images;
  for (const auto& p : tree) {
    InspectedProcess proc;
    proc.pid = p.pid();
    proc.ppid = p.ppid();
    proc.pgid = p.pgid();
    proc.sid = p.sid();
    proc.threads.assign(p.threads().begin(), p.threads().end());
    std::string pid = std::to_string(p.pid());
    auto core = r.one<criu::CoreEntry>("core-" + pid + ".img");
    proc.comm = escaped(core.tc().comm());
    uint32_t state = core.tc().task_state();
    proc.state = task_state_name(state);
    if (state == 1 || state == 6) {
      criu::TaskKobjIdsEntry ids = r.has("ids-" + pid + ".img")
                                       ? r.one<criu::TaskKobjIdsEntry>("ids-" + pid + ".img")
                                       : core.ids();
      std::string fdinfo = "fdinfo-" + std::to_string(ids.files_id()) + ".img";
      for (const auto& fd : r.all<criu::FdinfoEntry>(fdinfo)) {
        InspectedFd f;
        f.fd = static_cast<int>(fd.fd());
        f.type = fd_type_name(fd.type());
        f.id = fd.id();
        f.what = fd_what(fd.type(), fd.id(), files);
        proc.fds.push_back(std::move(f));
      }
      std::sort(proc.fds.begin(), proc.fds.end(),
                [](const auto& a, const auto& b) { return a.fd < b.fd; });
      std::string fs = "fs-" + pid + ".img";
      if (r.has(fs)) {
        auto e = r.one<criu::FsEntry>(fs);
        proc.cwd = reg_name(e.cwd_id());
        proc.root = reg_name(e.root_id());
      }
      // A pre-dump round has no pagemap of a process that came later.
      if (!images.pre_dump || r.has("pagemap-" + pid + ".img")) proc.memory = memory_of(r, p.pid());
    }
    in.processes.push_back(std::move(proc));
  }
  for (const auto& [name, bytes] : images.bytes) {
    if (name.rfind("mountpoints-", 0) != 0) continue;
    for (const auto& m : r.all<criu::MntEntry>(name)) {
      InspectedMount mnt;
      mnt.mnt_id = m.mnt_id();
      mnt.parent_mnt_id = m.parent_mnt_id();
      mnt.mountpoint = escaped(m.mountpoint());
      mnt.root = escaped(m.root());
      mnt.fstype = fstype_name(m);
      mnt.source = escaped(m.source());
      mnt.options = escaped(m.options());
      mnt.external = m.ext_mount() || m.has_ext_key();
      mnt.ext_key = escaped(m.ext_key());
      in.mounts.push_back(std::move(mnt));
    }
  }
  std::sort(in.mounts.begin(), in.mounts.end(),
            [](const auto& a, const auto& b) { return a.mnt_id < b.mnt_id; });
  std::sort(in.sockets.begin(), in.sockets.end(),
            [](const auto& a, const auto& b) { return a.ino < b.ino; });
  return in;
}

namespace {

Json memory_json(const InspectedMemory& m) {
  auto j = Json::object();
  j.set("vmas", m.vmas);
  j.set("mapped_bytes", m.mapped_bytes);
  j.set("dumped_pages", m.dumped_pages);
  j.set("dumped_bytes", m.dumped_pages * k_page_bytes);
  j.set("parent_pages", m.parent_pages);
  return j;
}

Json fd_json(const InspectedFd& f) {
  auto j = Json::object();
  j.set("fd", f.fd);
  j.set("type", f.type);
  j.set("id", f.id);
  j.set("what", f.what);
  return j;
}

Json process_json(const InspectedProcess& p) {
  auto j = Json::object();
  j.set("pid", p.pid);
  j.set("ppid", p.ppid);
  j.set("pgid", p.pgid);
  j.set("sid", p.sid);
  j.set("comm", p.comm);
  j.set("state", p.state);
  auto threads = Json::array();
  for (auto t : p.threads) threads.push(t);
  j.set("threads", threads);
  if (!p.cwd.empty()) j.set("cwd", p.cwd);
  if (!p.root.empty()) j.set("root", p.root);
  auto fds = Json::array();
  for (const auto& f : p.fds) fds.push(fd_json(f));
  j.set("fds", fds);
  j.set("memory", p.memory ? memory_json(*p.memory) : Json());
  return j;
}

Json socket_json(const InspectedSocket& s) {
  auto j = Json::object();
  j.set("id", s.id);
  j.set("ino", s.ino);
  j.set("family", s.family);
  j.set("type", s.type);
  j.set("state", s.state);
  j.set("local", s.local);
  j.set("peer", s.peer);
  if (s.family == "unix") j.set("peer_ino", s.peer_ino);
  return j;
}

Json mount_json(const InspectedMount& m) {
  auto j = Json::object();
  j.set("mnt_id", m.mnt_id);
  j.set("parent_mnt_id", m.parent_mnt_id);
  j.set("mountpoint", m.mountpoint);
  j.set("root", m.root);
  j.set("fstype", m.fstype);
  j.set("source", m.source);
  j.set("options", m.options);
  j.set("external", m.external);
  if (!m.ext_key.empty()) j.set("ext_key", m.ext_key);
  return j;
}

}  // namespace

Json inspection_json(const Inspection& in) {
  auto j = Json::object();
  j.set("img_version", in.img_version);
  j.set("image_bytes", in.image_bytes);
  j.set("pages_bytes", in.pages_bytes);
  auto procs = Json::array();
  for (const auto& p : in.processes) procs.push(process_json(p));
  j.set("processes", procs);
  auto socks = Json::array();
  for (const auto& s : in.sockets) socks.push(socket_json(s));
  j.set("sockets", socks);
  auto mounts = Json::array();
  for (const auto& m : in.mounts) mounts.push(mount_json(m));
  j.set("mounts", mounts);
  j.set("stats", in.stats ? dump_stats_json(*in.stats) : Json());
  return j;
}

bool InspectionDiff::empty() const {
  return added.empty() && removed.empty() && changed.empty() && fds.empty() &&
         sockets_added.empty() && sockets_removed.empty() && sockets_changed.empty() &&
         memory.empty();
}

namespace {

bool same_memory(const InspectedMemory& a, const InspectedMemory& b) {
  return a.vmas == b.vmas && a.mapped_bytes == b.mapped_bytes && a.dumped_pages == b.dumped_pages &&
         a.parent_pages == b.parent_pages;
}

void diff_fds(const InspectedProcess& a, const InspectedProcess& b, InspectionDiff& d) {
  std::map<int, const InspectedFd*> before, after;
  for (const auto& f : a.fds) before[f.fd] = &f;
  for (const auto& f : b.fds) after[f.fd] = &f;
  for (const auto& [fd, f] : before) {
    auto it = after.find(fd);
    if (it == after.end()) {
      d.fds.push_back({b.pid, '-', *f, {}});
    } else if (it->second->type != f->type || it->second->what != f->what) {
      d.fds.push_back({b.pid, '~', *it->second, f->type + " " + f->what});
    }
  }
  for (const auto& [fd, f] : after) {
    if (!before.count(fd)) d.fds.push_back({b.pid, '+', *f, {}});
  }
}

}  // namespace

InspectionDiff diff_inspections(const Inspection& a, const Inspection& b) {
  InspectionDiff d;
  std::map<uint32_t, const InspectedProcess*> before, after;
  for (const auto& p : a.processes) before[p.pid] = &p;
  for (const auto& p : b.processes) after[p.pid] = &p;
  for (const auto& [pid, p] : before) {
    if (!after.count(pid)) d.removed.push_back(*p);
  }
  for (const auto& [pid, q] : after) {
    auto it = before.find(pid);
    if (it == before.end()) {
      d.added.push_back(*q);
      continue;
    }
    const auto* p = it->second;
    if (p->comm != q->comm) d.changed.push_back({pid, "comm " + p->comm + " -> " + q->comm});
    if (p->state != q->state) d.changed.push_back({pid, "state " + p->state + " -> " + q->state});
    if (p->threads.size() != q->threads.size()) {
      d.changed.push_back({pid, "threads " + std::to_string(p->threads.size()) + " -> " +
                                    std::to_string(q->threads.size())});
    }
    if (p->ppid != q->ppid) {
      d.changed.push_back(
          {pid, "ppid " + std::to_string(p->ppid) + " -> " + std::to_string(q->ppid)});
    }
    diff_fds(*p, *q, d);
    if (p->memory && q->memory && !same_memory(*p->memory, *q->memory)) {
      d.memory.push_back({pid, *p->memory, *q->memory});
    }
  }
  std::map<uint32_t, const InspectedSocket*> sa, sb;
  for (const auto& s : a.sockets) sa[s.ino] = &s;
  for (const auto& s : b.sockets) sb[s.ino] = &s;
  for (const auto& [ino, s] : sa) {
    auto it = sb.find(ino);
    if (it == sb.end()) {
      d.sockets_removed.push_back(*s);
    } else if (it->second->state != s->state) {
      d.sockets_changed.push_back({ino, s->state, it->second->state});
    }
  }
  for (const auto& [ino, s] : sb) {
    if (!sa.count(ino)) d.sockets_added.push_back(*s);
  }
  return d;
}

Json diff_json(const InspectionDiff& d) {
  auto j = Json::object();
  auto procs = Json::object();
  auto added = Json::array(), removed = Json::array(), changed = Json::array();
  for (const auto& p : d.added) added.push(process_json(p));
  for (const auto& p : d.removed) removed.push(process_json(p));
  for (const auto& c : d.changed) {
    auto e = Json::object();
    e.set("pid", c.pid);
    e.set("change", c.what);
    changed.push(e);
  }
  procs.set("added", added);
  procs.set("removed", removed);
  procs.set("changed", changed);
  j.set("processes", procs);
  auto fds = Json::array();
  for (const auto& f : d.fds) {
    auto e = fd_json(f.fd);
    e.set("pid", f.pid);
    e.set("change", f.sign == '+' ? "added" : f.sign == '-' ? "removed" : "changed");
    if (f.sign == '~') e.set("before", f.before);
    fds.push(e);
  }
  j.set("fds", fds);
  auto socks = Json::object();
  auto sadd = Json::array(), srem = Json::array(), schg = Json::array();
  for (const auto& s : d.sockets_added) sadd.push(socket_json(s));
  for (const auto& s : d.sockets_removed) srem.push(socket_json(s));
  for (const auto& s : d.sockets_changed) {
    auto e = Json::object();
    e.set("ino", s.ino);
    e.set("before", s.before);
    e.set("after", s.after);
    schg.push(e);
  }
  socks.set("added", sadd);
  socks.set("removed", srem);
  socks.set("changed", schg);
  j.set("sockets", socks);
  auto mem = Json::array();
  for (const auto& m : d.memory) {
    auto e = Json::object();
    e.set("pid", m.pid);
    e.set("before", memory_json(m.before));
    e.set("after", memory_json(m.after));
    mem.push(e);
  }
  j.set("memory", mem);
  j.set("unchanged", d.empty());
  return j;
}

}  // namespace kcr::core
