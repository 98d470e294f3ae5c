#include "vm/checkpoint.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <deque>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "core/error.hpp"
#include "core/fault.hpp"
#include "core/files.hpp"
#include "core/log.hpp"
#include "core/names.hpp"
#include "core/time.hpp"
#include "kcr/version.hpp"
#include "vm/data_disk.hpp"
#include "vm/rootfs.hpp"

namespace kcr::vm {

namespace {

using Clock = std::chrono::steady_clock;

using core::ms_since;

constexpr std::size_t k_chunk = 1 << 20;
constexpr std::size_t k_upload_window = 4;
// A restore's pieces through the data disk: whole pages, so the agent maps its staging file there.
constexpr std::size_t k_disk_piece = 16u << 20;
constexpr unsigned k_max_pre_dumps = 20;

// Ends a workload CRIU left stopped: SIGKILL once the checkpoint is safe,
// SIGCONT to every task when it is not.
void signal_all(VmSession& session, const std::string& workload, int signal) {
  proto::Request req;
  req.mutable_kill()->set_workload(workload);
  req.mutable_kill()->set_signal(signal);
  req.mutable_kill()->set_all(true);
  session.call(req, std::chrono::seconds(30));
}

// Waits until the agent has reaped WORKLOAD, so that the checkpoint command
// returns with the workload really gone.
void wait_workload_gone(VmSession& session, const std::string& workload) {
  auto deadline = Clock::now() + std::chrono::seconds(30);
  for (;;) {
    proto::Request req;
    req.mutable_ps();
    auto resp = session.call(req);
    bool running = false;
    for (const auto& w : resp.ps().workloads()) {
      if (w.name() == workload && w.state() != "exited") running = true;
    }
    if (!running) return;
    if (Clock::now() > deadline) {
      throw Error("workload '" + workload + "' did not end after its checkpoint was stored");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

void resume_workload(VmSession& session, const std::string& workload) {
  signal_all(session, workload, SIGCONT);
}

void end_workload(VmSession& session, const std::string& workload) {
  signal_all(session, workload, SIGKILL);
  wait_workload_gone(session, workload);
}

core::CheckpointManifest checkpoint_workload(const core::Config& cfg, VmSession& session,
                                             const std::string& workload, const std::string& name,
                                             const proto::CriuOptions& options,
                                             const DumpPlan& plan) {
  core::validate_name("workload name", workload);
  if (plan.pre_dumps > k_max_pre_dumps) {
    throw Error("at most " + std::to_string(k_max_pre_dumps) + " pre-dump rounds", {},
                ExitCode::usage);
  }
  auto started = Clock::now();
  core::CheckpointStore store(cfg.data_dir);
  // Images hold at most the guest's memory; allow twice that for resent
  // files, and one more for each pre-dump round.
  const uint64_t memory = session.info().memory_mib * 1024 * 1024;
  core::CheckpointWriter writer(store, name, (2 + plan.pre_dumps) * memory + (64u << 20));
  const std::string what =
      "checkpoint of workload '" + workload + "' in VM '" + session.info().name + "' failed: ";

  // The files received for one round: under PREFIX, or outside parents/ for the final dump.
  auto round_files = [&](const std::string& prefix) {
    std::vector<core::CheckpointFile> files;
    for (auto& f : writer.received_files()) {
      bool ours = prefix.empty() ? f.path.rfind("parents/", 0) != 0 : f.path.rfind(prefix, 0) == 0;
      if (ours) files.push_back(std::move(f));
    }
    return files;
  };

  // The images leave the guest through its data disk when it has one: the agent says where
  // each chunk is and the host reads it from the disk's file.
  auto out_disk = DataDisk::open(session.info(), k_out_disk_file, session.hello().out_disk_bytes());
  std::string disk_buf;
  // Every chunk of the final dump's page images came through the disk. The small images go
  // through the port while CRIU runs (the agent maps only page images then).
  bool all_on_disk = true;

  std::set<std::string> checked;  // the files of every round checked so far
  // Streams one dump's files into the writer under PREFIX ("parents/K/" for
  // a pre-dump round) and checks them against the agent's list. STOPS: the
  // dump leaves the workload stopped, so any failure must resume it.
  auto run_round = [&](const proto::Request& req, const std::string& prefix, bool stops,
                       const std::string& phase) {
    proto::Response resp;
    core::TransferMeter meter(plan.on_transfer, phase, "received", 0);
    auto resume = [&] {
      if (!stops) return;
      try {
        // A lazy dump's CRIU still holds the workload: ending it resumes it.
        if (resp.has_checkpoint() && resp.checkpoint().lazy()) {
          lazy_finish(session, std::chrono::seconds(10), true);
        }
        resume_workload(session, workload);
      } catch (const Error&) {
      }
    };
    // A host-side failure (a full disk, say) must not abandon the stream:
    // the agent would keep the workload stopped. Drain to the end first.
    std::optional<Error> host_error;
    try {
      resp = session.agent().call_streaming(
          req, std::chrono::seconds(300), [&](const proto::Response& part) {
            if (host_error) return;
            try {
              if (part.has_chunk() && part.chunk().on_disk()) {
                const auto& ch = part.chunk();
                if (!out_disk) throw Error("the guest named a data disk it was not given");
                out_disk->read(ch.disk_offset(), ch.disk_length(), disk_buf);
                // The agent writes each chunk to pages of its own: this range can go now, so a
                // large checkpoint never takes its size on the state directory's filesystem.
                out_disk->release(ch.disk_offset(), ch.disk_length());
                writer.write_chunk(prefix + ch.path(), ch.offset(), disk_buf);
                meter.add(disk_buf.size());
              } else if (part.has_chunk()) {
                const auto& ch = part.chunk();
                writer.write_chunk(prefix + ch.path(), ch.offset(), ch.data());
                meter.add(ch.data().size());
                if (prefix.empty() && ch.path().rfind("images/pages-", 0) == 0) all_on_disk = false;
              } else {
                const auto& d = part.file_done();
                writer.file_done(prefix + d.path(), d.size(), d.sha256(), d.checksum64());
                core::fault_point("checkpoint.during-transfer");
              }
            } catch (const Error& e) {
              host_error = e;
            }
          });
    } catch (const Error& e) {
      if (out_disk) out_disk->clear();
      std::string hint = e.hint();
      std::string log = writer.read_small(prefix + "dump.log");
      if (!log.empty()) {
        hint = "the full CRIU log is kept in " + store.keep_log(name + "-dump", log) +
               (hint.empty() ? "" : "\n" + hint);
      }
      throw Error(what + e.what(), hint, e.code());
    }
    if (out_disk) out_disk->clear();
    if (host_error) {
      resume();
      throw Error(what + host_error->what(),
                  (host_error->hint().empty() ? "" : host_error->hint() + "\n") +
                      "nothing was stored; the workload keeps running",
                  host_error->code());
    }
    meter.finish();
    // Exactly the files the agent listed, with their sizes, arrived.
    const auto& reply = resp.checkpoint();
    auto ours = round_files(prefix);
    bool same = ours.size() == static_cast<std::size_t>(reply.files_size());
    for (const auto& listed : reply.files()) {
      same = same && std::any_of(ours.begin(), ours.end(), [&](const auto& f) {
               return f.path == prefix + listed.path() && f.size == listed.size();
             });
    }
    // Every file received so far belongs to a round already checked: a guest
    // cannot slip files under parents/ into a later round's stream.
    for (const auto& listed : reply.files()) checked.insert(prefix + listed.path());
    for (const auto& f : writer.received_files()) same = same && checked.count(f.path) > 0;
    if (!same) {
      resume();
      throw Error(what + "the files received differ from the agent's list",
                  "nothing was stored; the workload keeps running");
    }
    return reply;
  };

  auto request = [&](uint32_t round, uint32_t parent) {
    proto::Request req;
    auto* c = req.mutable_checkpoint();
    c->set_workload(workload);
    *c->mutable_options() = options;
    c->set_chunk_bytes(k_chunk);
    c->set_transfer_after_dump(plan.transfer == Transfer::after_dump);
    c->set_pre_dump_round(round);
    c->set_parent_round(parent);
    c->set_data_disk(out_disk.has_value());
    if (round == 0 && plan.lazy_port != 0) {
      c->set_lazy_pages(true);
      c->set_page_server_port(plan.lazy_port);
    }
    if (core::log_enabled(core::LogLevel::debug)) {
      core::log(core::LogLevel::debug,
                fmt::format("checkpoint request for workload '{}' (round {}, parent {}): CRIU "
                            "options {{{}}}",
                            workload, round, parent, options.ShortDebugString()));
    }
    return req;
  };

  core::CheckpointManifest m;
  for (unsigned k = 1; k <= plan.pre_dumps; ++k) {
    auto round_start = Clock::now();
    std::string prefix = "parents/" + std::to_string(k) + "/";
    auto reply =
        run_round(request(k, k - 1), prefix, false,
                  fmt::format("checkpoint '{}' pre-dump {} of {}", name, k, plan.pre_dumps));
    core::PreDumpRound r;
    r.round = k;
    r.dump_ms = reply.dump_ms();
    r.total_ms = ms_since(round_start);
    if (auto st = core::parse_dump_stats(writer.read_small(prefix + "stats-dump", 1 << 20))) {
      r.pages_written = st->pages_written;
    }
    for (const auto& f : reply.files()) {
      if (f.path().rfind("images/", 0) == 0) r.bytes += f.size();
    }
    m.pre_dumps.push_back(r);
    if (plan.on_pre_dump) plan.on_pre_dump(r, writer.dir(), round_files(prefix));
  }

  if (plan.on_freeze) plan.on_freeze();
  const bool stops = !options.leave_running();
  auto reply = run_round(request(0, plan.pre_dumps), "", stops, "checkpoint '" + name + "'");
  m.name = name;
  m.created = core::now_iso8601();
  m.kcr_version = k_version;
  m.criu_version = reply.criu_version();
  m.kernel_release = reply.kernel_release();
  m.image = session.info().image;
  m.image_hash = session.info().image_hash;
  m.vm = session.info().name;
  m.workload = workload;
  m.pid = reply.workload().pid();
  m.argv.assign(reply.workload().argv().begin(), reply.workload().argv().end());
  m.rootfs_digest = reply.workload().rootfs_digest();
  m.options = options;
  m.lazy_pages = reply.lazy();
  m.dump_ms = reply.dump_ms();
  m.channel = out_disk && all_on_disk ? "disk" : "port";
  // The store records the digests the host computed on what it received.
  m.files = writer.received_files();
  m.stats = core::parse_dump_stats(writer.read_small("stats-dump", 1 << 20));
  m.total_ms = ms_since(started);
  try {
    if (!m.rootfs_digest.empty() && !core::is_rootfs_digest(m.rootfs_digest)) {
      throw Error("the guest named a malformed root filesystem digest");
    }
    core::fault_point("checkpoint.before-commit");
    writer.commit(m);
  } catch (const Error& e) {
    if (stops) {
      try {
        if (m.lazy_pages) lazy_finish(session, std::chrono::seconds(10), true);
        resume_workload(session, workload);
      } catch (const Error&) {
      }
    }
    throw Error("checkpoint '" + name + "': " + e.what(),
                stops ? "the workload was resumed; nothing was stored" : e.hint(), e.code());
  }
  core::fault_point("checkpoint.after-commit");
  if (stops && !plan.keep_stopped && !m.lazy_pages) end_workload(session, workload);
  return m;
}

std::vector<std::string> guest_differences(const std::string& criu_a, const std::string& kernel_a,
                                           const std::string& criu_b, const std::string& kernel_b) {
  std::vector<std::string> diffs;
  if (!criu_a.empty() && criu_a != criu_b) diffs.push_back("CRIU " + criu_a + " vs " + criu_b);
  if (!kernel_a.empty() && kernel_a != kernel_b) {
    diffs.push_back("kernel " + kernel_a + " vs " + kernel_b);
  }
  return diffs;
}

void check_compatible(const core::CheckpointManifest& m, const proto::Hello& hello, bool force) {
  if (force) return;
  auto diffs = guest_differences(m.criu_version, m.kernel_release, hello.criu_version(),
                                 hello.kernel_release());
  if (diffs.empty()) return;
  std::string what;
  for (const auto& d : diffs) what += (what.empty() ? "" : ", ") + d;
  throw Error("checkpoint '" + m.name + "' was made on a different guest (" + what + ")",
              "restore it into a VM booted from the same guest image, or pass --force to try");
}

bool lazy_finish(VmSession& session, std::chrono::milliseconds timeout, bool abort) {
  proto::Request req;
  req.mutable_lazy_wait()->set_timeout_ms(static_cast<uint32_t>(timeout.count()));
  req.mutable_lazy_wait()->set_abort(abort);
  auto resp = session.call(req, timeout + std::chrono::seconds(30));
  const auto& r = resp.lazy_wait();
  if (r.finished() && !r.ok() && !abort) {
    throw Error("CRIU's page server in VM '" + session.info().name + "' failed:\n" + r.errors());
  }
  return r.finished();
}

void link_vms(VmSession& a, const std::string& address_a, VmSession& b,
              const std::string& address_b) {
  if (a.info().backend != b.info().backend) {
    throw Error("VM '" + a.info().name + "' (" + a.info().backend + ") and VM '" + b.info().name +
                "' (" + b.info().backend + ") run on different backends: they cannot be linked");
  }
  a.backend().link(a.info(), b.info());
  for (auto [session, address] :
       {std::pair<VmSession*, const std::string*>{&a, &address_a}, {&b, &address_b}}) {
    proto::Request req;
    req.mutable_link()->set_address(*address);
    session->call(req, std::chrono::seconds(30));
  }
}

std::string new_staging_name() {
  std::random_device rd;
  return "r" + std::to_string(rd()) + std::to_string(rd());
}

void drop_staging(VmSession& session, const std::string& staging) {
  try {
    proto::Request req;
    req.mutable_drop_staging()->set_staging(staging);
    session.call(req, std::chrono::seconds(30));
  } catch (const Error&) {
  }
}

std::string stage_files(VmSession& session, const std::string& staging, const std::string& dir,
                        const std::vector<core::CheckpointFile>& files,
                        const core::OnTransfer& on_transfer, const std::string& phase) {
  uint64_t total = 0;
  for (const auto& f : files) total += f.size;
  core::TransferMeter meter(on_transfer, phase, "sent", total);
  // Through the guest's data disk when it has one: the host writes each piece into the disk's
  // file and the agent reads it from there straight into its staging file. Requests are in
  // flight while later pieces are written, so pieces never share disk space within one call.
  auto disk = DataDisk::open(session.info(), k_in_disk_file, session.hello().in_disk_bytes());
  struct Clear {
    std::optional<DataDisk>& disk;
    ~Clear() {
      if (disk) disk->clear();
    }
  } clear{disk};
  uint64_t cursor = 0;
  bool all_on_disk = disk.has_value();
  // Requests sent and not yet answered, with the part of the disk each one's piece is in: once
  // the agent answered, it has read it, and those pages go back to the host's filesystem.
  struct Sent {
    uint64_t id, disk_offset, disk_length;
  };
  std::deque<Sent> in_flight;
  auto await_oldest = [&] {
    Sent sent = in_flight.front();
    session.agent().await(sent.id, std::chrono::seconds(60));
    in_flight.pop_front();
    if (disk && sent.disk_length > 0) disk->release(sent.disk_offset, sent.disk_length);
  };
  std::string buf(disk ? k_disk_piece : k_chunk, '\0');
  for (const auto& f : files) {
    std::string path = dir + "/" + f.path;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) throw_errno("open " + path);
    uint64_t offset = 0;
    core::Checksum64 checksum;
    for (;;) {
      // A piece the disk can no longer hold goes inline, in the port's chunk size.
      const bool to_disk = disk && cursor <= disk->size() && k_disk_piece <= disk->size() - cursor;
      const std::size_t want = to_disk ? k_disk_piece : k_chunk;
      std::size_t n = 0;
      while (n < want) {
        ssize_t r = ::read(fd.get(), buf.data() + n, want - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) throw_errno("read " + path);
        if (r == 0) break;
        n += static_cast<std::size_t>(r);
      }
      if (to_disk && n > 0) {
        try {
          disk->write(cursor, buf.data(), n);
        } catch (const Error& e) {
          // The host's filesystem is full, say: this piece and the rest go through the port.
          core::log(core::LogLevel::warn,
                    std::string(e.what()) + "; the rest goes through the agent's port");
          // Pieces in flight are still on the disk: the agent reads them before it is cleared.
          while (!in_flight.empty()) await_oldest();
          disk->clear();
          disk.reset();
          if (::lseek(fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) {
            throw_errno("seek " + path);
          }
          continue;
        }
      }
      bool last = offset + n >= f.size;
      checksum.update(buf.data(), n);
      proto::Request req;
      auto* p = req.mutable_put_file();
      p->set_staging(staging);
      p->set_path(f.path);
      p->set_offset(offset);
      if (to_disk && n > 0) {
        p->set_on_disk(true);
        p->set_disk_offset(cursor);
        p->set_disk_length(n);
        cursor += (n + 4095) / 4096 * 4096;
      } else {
        p->set_data(buf.data(), n);
        if (n > 0) all_on_disk = false;
      }
      if (last) {
        p->set_last(true);
        p->set_checksum64(checksum.hex_digest());
      }
      // Keep a few pieces in flight: a round trip per piece left the
      // channel idle most of the time.
      in_flight.push_back({session.agent().send(req), p->disk_offset(), p->disk_length()});
      if (in_flight.size() >= k_upload_window) await_oldest();
      offset += n;
      meter.add(n);
      if (last) {
        core::fault_point("restore.during-upload");
        break;
      }
      if (n == 0) throw Error("checkpoint file " + f.path + " is shorter than its manifest says");
    }
  }
  while (!in_flight.empty()) await_oldest();
  return all_on_disk ? "disk" : "port";
}

bool is_image_file(const std::string& path) {
  return path.rfind("images/", 0) == 0 ||
         (path.rfind("parents/", 0) == 0 && path.find("/images/") != std::string::npos);
}

RestoreResult restore_checkpoint(const core::Config& cfg, VmSession& session,
                                 const core::CheckpointManifest& m, const std::string& new_name,
                                 const proto::CriuOptions& extra_options, bool force,
                                 const RestorePlan& plan) {
  const Staged* staged = plan.staged;
  if (m.lazy_pages && plan.page_server_port == 0) {
    throw Error("checkpoint '" + m.name +
                    "' was made by a lazy migration: its memory was never "
                    "stored",
                "it cannot be restored; remove it with kcr checkpoints rm " + m.name);
  }
  auto started = Clock::now();
  std::string name = new_name.empty() ? m.workload : new_name;
  core::validate_name("workload name", name);
  check_compatible(m, session.hello(), force);
  core::CheckpointStore store(cfg.data_dir);
  if (plan.verify_first) store.verify(m);

  std::string staging = staged ? staged->staging : new_staging_name();
  auto drop = [&] { drop_staging(session, staging); };

  RestoreResult result;
  std::string restore_log;
  try {
    auto upload_start = Clock::now();
    std::vector<core::CheckpointFile> files;
    for (const auto& f : m.files) {
      if (is_image_file(f.path) && !(staged && staged->paths.count(f.path))) files.push_back(f);
    }
    if (!m.rootfs_digest.empty()) {
      put_base(session, m.rootfs_digest,
               base_for_restore(cfg, m.rootfs_digest, plan.rootfs_path,
                                "checkpoint '" + m.name + "'", plan.on_transfer),
               plan.on_transfer);
    }
    result.channel = stage_files(session, staging, store.dir(m.name), files, plan.on_transfer,
                                 "upload of '" + m.name + "' to VM '" + session.info().name + "'");
    result.upload_ms = ms_since(upload_start);
    core::fault_point("restore.before-criu");

    proto::Request req;
    auto* r = req.mutable_restore();
    r->set_staging(staging);
    r->set_name(name);
    r->set_parent_rounds(static_cast<uint32_t>(m.pre_dumps.size()));
    if (plan.page_server_port != 0) {
      r->set_lazy_pages(true);
      r->set_page_server_address(plan.page_server_address);
      r->set_page_server_port(plan.page_server_port);
    }
    proto::CriuOptions options = m.options;
    options.MergeFrom(extra_options);
    options.set_leave_running(false);
    *r->mutable_options() = options;
    if (core::log_enabled(core::LogLevel::debug)) {
      core::log(core::LogLevel::debug, "restore request for '" + name + "': CRIU options {" +
                                           options.ShortDebugString() + "}");
    }
    auto* orig = r->mutable_original();
    orig->set_name(m.workload);
    orig->set_pid(m.pid);
    for (const auto& a : m.argv) orig->add_argv(a);
    auto resp = session.agent().call_streaming(
        req, std::chrono::seconds(300), [&](const proto::Response& part) {
          if (part.has_chunk() && part.chunk().path() == "restore.log" &&
              restore_log.size() < (16u << 20)) {
            restore_log += part.chunk().data();
          }
        });
    result.workload = resp.restore().workload();
    result.restore_ms = resp.restore().restore_ms();
    result.stats = core::parse_restore_stats(resp.restore().stats_restore());
  } catch (const Error& e) {
    drop();
    std::string hint = e.hint();
    if (!restore_log.empty()) {
      hint = "the full CRIU log is kept in " + store.keep_log(m.name + "-restore", restore_log) +
             (hint.empty() ? "" : "\n" + hint);
    }
    throw Error("restore of checkpoint '" + m.name + "' into VM '" + session.info().name +
                    "' failed: " + e.what() + " (the checkpoint is unchanged)",
                hint, e.code());
  }
  // Restored in the VM, kcr not done: the workload runs there whatever kcr says.
  core::fault_point("restore.after-criu");
  result.total_ms = ms_since(started);
  return result;
}

}  // namespace kcr::vm
