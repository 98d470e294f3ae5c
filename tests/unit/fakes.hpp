#pragma once

// Fakes of the VM backend and the guest's agent, for unit tests of the VM
// registry and the engine: each fake guest keeps its workloads and staged
// files in memory and answers the agent protocol the way the real agent
// does, and any step can be made to fail. No QEMU, no CRIU, no root.

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/checksum64.hpp"
#include "core/error.hpp"
#include "core/unique_fd.hpp"
#include "criu_images.hpp"
#include "kcr/version.hpp"
#include "vm/backend.hpp"
#include "vm/engine/vms.hpp"
#include "vm/vm.hpp"

namespace kcr::test {

// One fake guest: what its agent holds.
struct FakeGuest {
  struct Workload {
    std::vector<std::string> argv;
    int pid = 0;
    std::string state = "running";  // running | stopped
    bool lazy_held = false;         // a lazy dump's CRIU holds it
  };
  std::string kernel = "6.1.0-test";
  std::string criu = "3.17.1";
  bool alive = true;
  int silent_channels = 0;  // the next N agent channels connected carry nothing
  int channels = 0;         // agent channels connected
  std::map<std::string, Workload> workloads;
  std::map<std::string, std::set<std::string>> staging;  // staging -> paths
  bool lazy_server = false;                              // a lazy dump's page server runs
  std::set<std::string> features_missing;
  int next_pid = 100;
  std::string probe = "42\n";       // what every probe prints
  std::string probe_after_restore;  // when set, what probes print once restored
  int lazy_waits = 1;               // lazy_wait calls until every page was sent
  std::string smuggle;              // a path the final dump sends without listing it
  // Data disks (vm/data_disk.hpp): when set, the VM's state directory, holding out.img and
  // in.img of disk_bytes each; the hello reports them and the guest moves bytes through them.
  std::string disk_dir;
  uint64_t disk_bytes = 0;
  bool disk_lies = false;  // the final dump names a range past the end of its disk
  // What the guest staged for a restore through its in disk, by path: the bytes it read there.
  std::map<std::string, std::string> staged_from_disk;
  int chunks_on_disk = 0;  // FileChunks the guest sent through its out disk
  // Request kinds seen, in order ("checkpoint", "pre-dump 1", "kill 18", "restore", ...).
  std::vector<std::string> seen;
  // Makes the Nth (1-based) request of a kind fail with an agent error
  // ("checkpoint", "pre-dump", "put_file", "restore", "link", "lazy_wait", "check").
  std::map<std::string, int> fail_at;
  // Makes the VM die (alive = false) at the Nth request of a kind instead.
  std::map<std::string, int> die_at;
  std::map<std::string, int> counts;
};

class FakeAgent final : public vm::AgentChannel {
 public:
  explicit FakeAgent(FakeGuest& g, bool silent = false) : m_g(g), m_silent(silent) {}

  proto::Hello wait_hello(std::chrono::milliseconds,
                          const std::function<void()>& still_alive) override {
    if (still_alive) still_alive();
    if (!m_g.alive || m_silent) throw vm::HelloTimeout();
    proto::Hello h;
    h.set_protocol_version(kcr::k_protocol_version);
    h.set_kernel_release(m_g.kernel);
    h.set_criu_version(m_g.criu);
    h.set_criu_ok(true);
    if (!m_g.disk_dir.empty()) {
      h.set_out_disk_bytes(m_g.disk_bytes);
      h.set_in_disk_bytes(m_g.disk_bytes);
    }
    return h;
  }

  proto::Response call(proto::Request request, std::chrono::milliseconds timeout) override {
    return call_streaming(std::move(request), timeout, {});
  }

  proto::Response call_streaming(
      proto::Request req, std::chrono::milliseconds,
      const std::function<void(const proto::Response&)>& on_part) override {
    if (!m_g.alive) throw Error("the agent channel closed (did the VM stop?)");
    std::string kind = kind_of(req);
    m_g.seen.push_back(kind + detail_of(req));
    int n = ++m_g.counts[kind];
    if (auto it = m_g.die_at.find(kind); it != m_g.die_at.end() && it->second == n) {
      m_g.alive = false;
      throw Error("the agent channel closed (did the VM stop?)");
    }
    if (auto it = m_g.fail_at.find(kind); it != m_g.fail_at.end() && it->second == n) {
      // A failed dump leaves the workload as it was, as CRIU does.
      throw Error("injected failure of " + kind);
    }
    return answer(req, on_part);
  }

  uint64_t send(proto::Request request) override {
    uint64_t id = ++m_next;
    m_pending[id] = std::move(request);
    return id;
  }

  proto::Response await(uint64_t id, std::chrono::milliseconds timeout) override {
    auto req = m_pending.at(id);
    m_pending.erase(id);
    return call(req, timeout);
  }

 private:
  static std::string kind_of(const proto::Request& r) {
    if (r.has_checkpoint()) return r.checkpoint().pre_dump_round() ? "pre-dump" : "checkpoint";
    return r.GetDescriptor()->FindFieldByNumber(static_cast<int>(r.body_case()))->name();
  }
  static std::string detail_of(const proto::Request& r) {
    if (r.has_kill()) return " " + std::to_string(r.kill().signal()) + " " + r.kill().workload();
    if (r.has_checkpoint() && r.checkpoint().pre_dump_round())
      return " " + std::to_string(r.checkpoint().pre_dump_round());
    return {};
  }

  void send_file(const std::function<void(const proto::Response&)>& on_part,
                 const std::string& path, const std::string& data, proto::CheckpointReply* reply) {
    proto::Response c;
    c.mutable_chunk()->set_path(path);
    c.mutable_chunk()->set_offset(0);
    if (m_disk) {
      // As the agent does: the bytes at a page of the out disk, the chunk saying where.
      std::string disk = m_g.disk_dir + "/out.img";
      UniqueFd fd(::open(disk.c_str(), O_WRONLY | O_CLOEXEC));
      if (!fd || ::pwrite(fd.get(), data.data(), data.size(), static_cast<off_t>(m_cursor)) !=
                     static_cast<ssize_t>(data.size())) {
        throw Error("fake guest: cannot write " + disk);
      }
      c.mutable_chunk()->set_on_disk(true);
      c.mutable_chunk()->set_disk_offset(m_g.disk_lies ? m_g.disk_bytes - 1 : m_cursor);
      c.mutable_chunk()->set_disk_length(data.size());
      m_cursor += (data.size() + 4095) / 4096 * 4096;
      ++m_g.chunks_on_disk;
    } else {
      c.mutable_chunk()->set_data(data);
    }
    on_part(c);
    proto::Response d;
    auto* fd = d.mutable_file_done();
    fd->set_path(path);
    fd->set_size(data.size());
    core::Checksum64 sum;
    sum.update(data);
    fd->set_checksum64(sum.hex_digest());
    on_part(d);
    *reply->add_files() = *fd;
  }

  proto::Response answer(const proto::Request& req,
                         const std::function<void(const proto::Response&)>& on_part) {
    proto::Response resp;
    if (req.has_ps()) {
      for (const auto& [name, w] : m_g.workloads) {
        auto* pw = resp.mutable_ps()->add_workloads();
        pw->set_name(name);
        pw->set_pid(w.pid);
        pw->set_state(w.state);
        for (const auto& a : w.argv) pw->add_argv(a);
      }
    } else if (req.has_run()) {
      if (m_g.workloads.count(req.run().name())) throw Error("workload exists");
      auto& w = m_g.workloads[req.run().name()];
      w.argv.assign(req.run().argv().begin(), req.run().argv().end());
      w.pid = m_g.next_pid++;
      resp.mutable_run()->mutable_workload()->set_name(req.run().name());
    } else if (req.has_exec()) {
      auto it = m_g.workloads.find(req.exec().workload());
      if (it == m_g.workloads.end() || it->second.state != "running") {
        resp.mutable_exec()->set_exit_code(1);
      } else {
        resp.mutable_exec()->set_stdout_data(m_g.probe);
      }
    } else if (req.has_kill()) {
      auto it = m_g.workloads.find(req.kill().workload());
      if (it == m_g.workloads.end())
        throw Error("no workload named '" + req.kill().workload() + "'");
      if (req.kill().signal() == 9) {
        m_g.workloads.erase(it);
      } else if (req.kill().signal() == 18 && !it->second.lazy_held) {
        it->second.state = "running";
      }
      resp.mutable_ok();
    } else if (req.has_check()) {
      for (const auto& f : req.check().features()) {
        auto* fc = resp.mutable_check()->add_features();
        fc->set_name(f);
        fc->set_ok(!m_g.features_missing.count(f));
      }
    } else if (req.has_checkpoint()) {
      checkpoint(req.checkpoint(), on_part, resp);
    } else if (req.has_put_file()) {
      const auto& p = req.put_file();
      m_g.staging[p.staging()].insert(p.path());
      if (p.on_disk()) {
        std::string disk = m_g.disk_dir + "/in.img";
        std::string bytes(p.disk_length(), '\0');
        UniqueFd fd(::open(disk.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd || p.disk_offset() % 4096 != 0 ||
            ::pread(fd.get(), bytes.data(), bytes.size(), static_cast<off_t>(p.disk_offset())) !=
                static_cast<ssize_t>(bytes.size())) {
          throw Error("fake guest: cannot read " + disk);
        }
        m_g.staged_from_disk[p.path()] += bytes;
      }
      resp.mutable_ok();
    } else if (req.has_drop_staging()) {
      m_g.staging.erase(req.drop_staging().staging());
      resp.mutable_ok();
    } else if (req.has_restore()) {
      restore(req.restore(), resp);
    } else if (req.has_lazy_wait()) {
      if (req.lazy_wait().abort()) release_lazy();
      bool finished = !m_g.lazy_server || req.lazy_wait().abort();
      if (!finished) resp.mutable_lazy_wait()->set_finished(false);
      if (!req.lazy_wait().abort() && m_g.lazy_server && --m_g.lazy_waits <= 0) {
        m_g.lazy_server = false;  // every page was sent
        finished = true;
        for (auto& [n, w] : m_g.workloads) w.lazy_held = false;
      }
      resp.mutable_lazy_wait()->set_finished(finished);
      resp.mutable_lazy_wait()->set_ok(true);
    } else {
      resp.mutable_ok();
    }
    return resp;
  }

  void release_lazy() {
    if (!m_g.lazy_server) return;
    m_g.lazy_server = false;
    // CRIU resumes the workload when its page server ends early.
    for (auto& [n, w] : m_g.workloads) {
      if (w.lazy_held) w = {w.argv, w.pid, "running", false};
    }
  }

  void checkpoint(const proto::CheckpointRequest& c,
                  const std::function<void(const proto::Response&)>& on_part,
                  proto::Response& resp) {
    auto it = m_g.workloads.find(c.workload());
    if (it == m_g.workloads.end()) throw Error("no workload named '" + c.workload() + "'");
    auto* reply = resp.mutable_checkpoint();
    std::string round =
        c.pre_dump_round() ? "pre-dump " + std::to_string(c.pre_dump_round()) : "final";
    m_cursor = 0;
    m_disk = c.data_disk();
    send_file(on_part, "images/pages-1.img", "pages of " + round, reply);
    // As the agent while CRIU runs: only page images through the disk.
    m_disk = false;
    send_file(on_part, "images/inventory.img", inventory_image(), reply);
    send_file(on_part, "dump.log", "log", reply);
    if (!c.pre_dump_round() && !m_g.smuggle.empty()) {
      proto::CheckpointReply unlisted;
      send_file(on_part, m_g.smuggle, "smuggled", &unlisted);
    }
    reply->mutable_workload()->set_name(c.workload());
    reply->mutable_workload()->set_pid(it->second.pid);
    for (const auto& a : it->second.argv) reply->mutable_workload()->add_argv(a);
    reply->set_criu_version(m_g.criu);
    reply->set_kernel_release(m_g.kernel);
    if (c.pre_dump_round()) return;
    if (c.lazy_pages()) {
      reply->set_lazy(true);
      m_g.lazy_server = true;
      it->second.lazy_held = true;
      it->second.state = "stopped";
    } else if (!c.options().leave_running()) {
      it->second.state = "stopped";
    }
  }

  void restore(const proto::RestoreRequest& r, proto::Response& resp) {
    if (!m_g.staging.count(r.staging())) throw Error("nothing staged as '" + r.staging() + "'");
    if (m_g.workloads.count(r.name())) throw Error("workload '" + r.name() + "' already exists");
    auto& w = m_g.workloads[r.name()];
    w.argv.assign(r.original().argv().begin(), r.original().argv().end());
    w.pid = m_g.next_pid++;
    m_g.staging.erase(r.staging());
    if (!m_g.probe_after_restore.empty()) m_g.probe = m_g.probe_after_restore;
    resp.mutable_restore()->mutable_workload()->set_name(r.name());
    resp.mutable_restore()->mutable_workload()->set_pid(w.pid);
  }

  FakeGuest& m_g;
  bool m_silent = false;
  uint64_t m_cursor = 0;  // the next free page of the out disk in this dump
  bool m_disk = false;    // this dump's images go through the out disk
  uint64_t m_next = 0;
  std::map<uint64_t, proto::Request> m_pending;
};

// A backend whose VMs are FakeGuests. launch() fails as told per accelerator.
class FakeBackend final : public vm::Backend {
 public:
  std::map<std::string, FakeGuest> guests;  // by VM name
  // What launch does per accelerator: "" boots, otherwise the error to throw;
  // "hang" boots a guest whose agent never answers.
  std::map<vm::Accel, std::string> launch_outcome;
  std::vector<std::string> launches;  // "NAME kvm", "NAME tcg"
  std::vector<std::pair<std::string, std::string>> links;
  // VMs "on another host": keep_on_vm_host writes files into this directory
  // (empty: every VM is on this host), or throws keep_fails when set.
  std::string other_host_dir;
  std::string keep_fails;

  std::string name() const override { return "fake"; }
  std::string version(const core::Config&) override { return "fake 1.0"; }
  pid_t launch(const core::Config&, const vm::VmStartOptions& o, vm::Accel accel,
               const std::string&) override {
    launches.push_back(o.name + " " + vm::to_string(accel));
    const std::string& outcome = launch_outcome[accel];
    if (!outcome.empty() && outcome != "hang") throw Error(outcome);
    guests[o.name].alive = outcome != "hang";
    return ::getpid();
  }
  bool alive(const vm::VmInfo& info) const override {
    auto it = guests.find(info.name);
    return it != guests.end() && it->second.alive;
  }
  void terminate(const vm::VmInfo& info, bool) override { guests.erase(info.name); }
  std::unique_ptr<vm::AgentChannel> connect_agent(const vm::VmInfo& info) override {
    FakeGuest& g = guests[info.name];
    ++g.channels;
    bool silent = g.silent_channels > 0;
    if (silent) --g.silent_channels;
    return std::make_unique<FakeAgent>(g, silent);
  }
  UniqueFd connect_console(const vm::VmInfo&) override { return {}; }
  std::string serial_log_path(const vm::VmInfo& info) const override {
    return info.dir + "/serial.log";
  }
  vm::SaveResult save(const vm::VmInfo&, const std::string&) override { return {}; }
  void link(const vm::VmInfo& a, const vm::VmInfo& b) override {
    links.emplace_back(a.name, b.name);
  }
  std::string keep_on_vm_host(const vm::VmInfo&, const std::string& name,
                              const std::function<void(const std::string&)>& write) override {
    if (other_host_dir.empty()) return {};
    if (!keep_fails.empty()) throw Error(keep_fails);
    write(other_host_dir + "/" + name);
    return "kept as " + name;
  }
};

// The engine's VMs over a FakeBackend: VMs are added by the test or booted by
// the engine (start), and stopped ones are remembered.
class FakeVms final : public engine::Vms {
 public:
  FakeBackend backend;
  std::string fail_start;  // start() throws this when set
  FakeGuest fresh;         // what a VM the engine boots starts as
  std::vector<std::string> started, stopped;
  std::map<std::string, vm::VmInfo> infos;

  FakeGuest& add(const std::string& name) {
    vm::VmInfo info;
    info.name = name;
    info.backend = backend.name();
    info.state = "running";
    info.image = "default";
    info.memory_mib = 512;
    info.cpus = 1;
    info.accel = "tcg";
    infos[name] = info;
    return backend.guests[name];
  }
  FakeGuest& guest(const std::string& name) { return backend.guests.at(name); }
  bool has(const std::string& name) const { return backend.guests.count(name) > 0; }

  std::unique_ptr<vm::VmSession> open(const std::string& name) override {
    if (!has(name) || !backend.guests[name].alive) throw Error("no VM named '" + name + "'");
    auto agent = std::make_unique<FakeAgent>(backend.guests[name]);
    auto hello = agent->wait_hello(std::chrono::seconds(1), {});
    return std::make_unique<vm::VmSession>(infos[name], backend, std::move(agent), hello);
  }
  vm::VmInfo start(const engine::StartSpec& spec) override {
    started.push_back(spec.name);
    if (!fail_start.empty()) throw Error(fail_start);
    backend.guests[spec.name] = fresh;
    add(spec.name);
    // Where it was asked to run, as the registry records it.
    if (!spec.backend.empty()) infos[spec.name].backend = spec.backend;
    infos[spec.name].connect = spec.connect;
    return infos[spec.name];
  }
  void stop(const std::string& name) override {
    if (!has(name)) throw Error("no VM named '" + name + "'");
    backend.guests.erase(name);
    stopped.push_back(name);
  }
  std::vector<std::string> names() override {
    std::vector<std::string> out;
    for (const auto& [n, g] : backend.guests) out.push_back(n);
    return out;
  }
  bool running(const std::string& name) override { return has(name) && backend.guests[name].alive; }
};

}  // namespace kcr::test
