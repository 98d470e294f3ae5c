#include "vm/checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <deque>
#include <optional>
#include <random>
#include <thread>

#include "core/error.hpp"
#include "core/names.hpp"
#include "core/time.hpp"
#include "kcr/version.hpp"

namespace kcr::vm {

namespace {

using Clock = std::chrono::steady_clock;

uint64_t ms_since(Clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
}

constexpr std::size_t k_chunk = 1 << 20;
constexpr std::size_t k_upload_window = 4;

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
      if (w.name() == workload && w.state() == "running") running = true;
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
  auto started = Clock::now();
  core::CheckpointStore store(cfg.data_dir);
  // Images hold at most the guest's memory; allow twice that for resent files.
  core::CheckpointWriter writer(store, name,
                                2 * session.info().memory_mib * 1024 * 1024 + (64u << 20));

  proto::Request req;
  auto* c = req.mutable_checkpoint();
  c->set_workload(workload);
  *c->mutable_options() = options;
  c->set_chunk_bytes(k_chunk);
  c->set_transfer_after_dump(plan.transfer == Transfer::after_dump);

  // A host-side failure (a full disk, say) must not abandon the stream: the
  // agent would keep the workload stopped. Drain to the end, then resume it.
  std::optional<Error> host_error;
  proto::Response resp;
  try {
    resp = session.agent().call_streaming(
        req, std::chrono::seconds(300), [&](const proto::Response& part) {
          if (host_error) return;
          try {
            if (part.has_chunk()) {
              const auto& ch = part.chunk();
              writer.write_chunk(ch.path(), ch.offset(), ch.data());
            } else {
              const auto& d = part.file_done();
              writer.file_done(d.path(), d.size(), d.sha256(), d.checksum64());
            }
          } catch (const Error& e) {
            host_error = e;
          }
        });
  } catch (const Error& e) {
    std::string hint = e.hint();
    std::string log = writer.read_small("dump.log");
    if (!log.empty()) {
      hint = "the full CRIU log is kept in " + store.keep_log(name + "-dump", log) +
             (hint.empty() ? "" : "\n" + hint);
    }
    throw Error("checkpoint of workload '" + workload + "' in VM '" + session.info().name +
                    "' failed: " + e.what(),
                hint, e.code());
  }
  if (host_error) {
    if (!options.leave_running()) {
      try {
        resume_workload(session, workload);
      } catch (const Error&) {
      }
    }
    throw Error("checkpoint of workload '" + workload + "' in VM '" + session.info().name +
                    "' failed: " + host_error->what(),
                (host_error->hint().empty() ? "" : host_error->hint() + "\n") +
                    "nothing was stored; the workload keeps running",
                host_error->code());
  }

  const auto& reply = resp.checkpoint();
  core::CheckpointManifest m;
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
  m.options = options;
  m.dump_ms = reply.dump_ms();
  // The store records the digests the host computed on what it received.
  m.files = writer.received_files();
  bool same = m.files.size() == static_cast<std::size_t>(reply.files_size());
  for (const auto& listed : reply.files()) {
    same = same && std::any_of(m.files.begin(), m.files.end(), [&](const auto& f) {
             return f.path == listed.path() && f.size == listed.size();
           });
  }
  m.stats = core::parse_dump_stats(writer.read_small("stats-dump", 1 << 20));
  m.total_ms = ms_since(started);
  try {
    if (!same) throw Error("the files received differ from the agent's list");
    writer.commit(m);
  } catch (const Error& e) {
    if (!options.leave_running()) {
      try {
        resume_workload(session, workload);
      } catch (const Error&) {
      }
    }
    throw Error("checkpoint '" + name + "': " + e.what(),
                options.leave_running() ? e.hint() : "the workload was resumed; nothing was stored",
                e.code());
  }
  if (!options.leave_running() && !plan.keep_stopped) end_workload(session, workload);
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

RestoreResult restore_checkpoint(const core::Config& cfg, VmSession& session,
                                 const core::CheckpointManifest& m, const std::string& new_name,
                                 const proto::CriuOptions& extra_options, bool force,
                                 bool verify_first) {
  auto started = Clock::now();
  std::string name = new_name.empty() ? m.workload : new_name;
  core::validate_name("workload name", name);
  check_compatible(m, session.hello(), force);
  core::CheckpointStore store(cfg.data_dir);
  if (verify_first) store.verify(m);

  std::random_device rd;
  std::string staging = "r" + std::to_string(rd()) + std::to_string(rd());
  auto drop = [&] {
    try {
      proto::Request req;
      req.mutable_drop_staging()->set_staging(staging);
      session.call(req, std::chrono::seconds(30));
    } catch (const Error&) {
    }
  };

  RestoreResult result;
  std::string restore_log;
  try {
    auto upload_start = Clock::now();
    std::deque<uint64_t> in_flight;
    std::string buf(k_chunk, '\0');
    for (const auto& f : m.files) {
      if (f.path.rfind("images/", 0) != 0) continue;
      std::string path = store.dir(m.name) + "/" + f.path;
      UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) throw_errno("open " + path);
      uint64_t offset = 0;
      core::Checksum64 checksum;
      for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          throw_errno("read " + path);
        }
        bool last = offset + static_cast<uint64_t>(n) >= f.size;
        checksum.update(buf.data(), static_cast<std::size_t>(n));
        proto::Request req;
        auto* p = req.mutable_put_file();
        p->set_staging(staging);
        p->set_path(f.path);
        p->set_offset(offset);
        p->set_data(buf.data(), static_cast<std::size_t>(n));
        if (last) {
          p->set_last(true);
          p->set_checksum64(checksum.hex_digest());
        }
        // Keep a few chunks in flight: a round trip per chunk left the
        // channel idle most of the time.
        in_flight.push_back(session.agent().send(req));
        if (in_flight.size() >= k_upload_window) {
          session.agent().await(in_flight.front(), std::chrono::seconds(60));
          in_flight.pop_front();
        }
        offset += static_cast<uint64_t>(n);
        if (last) break;
        if (n == 0) throw Error("checkpoint file " + f.path + " is shorter than its manifest says");
      }
    }
    for (uint64_t id : in_flight) session.agent().await(id, std::chrono::seconds(60));
    result.upload_ms = ms_since(upload_start);

    proto::Request req;
    auto* r = req.mutable_restore();
    r->set_staging(staging);
    r->set_name(name);
    proto::CriuOptions options = m.options;
    options.MergeFrom(extra_options);
    options.set_leave_running(false);
    *r->mutable_options() = options;
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
  result.total_ms = ms_since(started);
  return result;
}

}  // namespace kcr::vm
