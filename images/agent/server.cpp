#include "images/agent/server.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/reboot.h>
#include <unistd.h>

#include <thread>

#include "core/error.hpp"
#include "images/agent/copy.hpp"
#include "images/agent/exec.hpp"
#include "images/agent/link.hpp"
#include "images/agent/log.hpp"
#include "images/agent/process.hpp"
#include "kcr/version.hpp"

namespace kcr::agent {

namespace {

constexpr std::chrono::milliseconds k_poll_interval{100};
constexpr std::chrono::seconds k_write_timeout{10};
constexpr std::chrono::seconds k_shutdown_grace{2};
// A host writes each frame at once, so input that stays incomplete (or skipped) this long means
// the host left and came back faster than the port showed it: start afresh.
constexpr std::chrono::seconds k_stale_input{1};

const char* request_kind(const proto::Request& request) {
  switch (request.body_case()) {
    case proto::Request::kHello:
      return "hello";
    case proto::Request::kRun:
      return "run";
    case proto::Request::kExec:
      return "exec";
    case proto::Request::kPs:
      return "ps";
    case proto::Request::kLogs:
      return "logs";
    case proto::Request::kKill:
      return "kill";
    case proto::Request::kCheck:
      return "check";
    case proto::Request::kShutdown:
      return "shutdown";
    case proto::Request::kCheckpoint:
      return "checkpoint";
    case proto::Request::kPutFile:
      return "put_file";
    case proto::Request::kRestore:
      return "restore";
    case proto::Request::kDropStaging:
      return "drop_staging";
    case proto::Request::kLink:
      return "link";
    case proto::Request::kLazyWait:
      return "lazy_wait";
    case proto::Request::kCopyIn:
      return "copy_in";
    case proto::Request::kPutBase:
      return "put_base";
    case proto::Request::kCopyOut:
      return "copy_out";
    case proto::Request::BODY_NOT_SET:
      break;
  }
  return "empty";
}

// Entries of DIR (less "." and ".."; only all-digit names when DIGITS_ONLY): open fds, pids.
std::uint32_t count_entries(const char* dir, bool digits_only) {
  std::uint32_t n = 0;
  if (DIR* d = ::opendir(dir)) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      if (digits_only && name.find_first_not_of("0123456789") != std::string::npos) continue;
      ++n;
    }
    ::closedir(d);
  }
  return n;
}

proto::Response failure(std::uint64_t id, const std::string& message,
                        const std::string& hint = {}) {
  proto::Response response;
  response.set_id(id);
  response.mutable_error()->set_message(message);
  if (!hint.empty()) response.mutable_error()->set_hint(hint);
  return response;
}

}  // namespace

Server::Server(std::unique_ptr<Port> port, std::string state_dir, CriuStatus criu)
    : m_port(std::move(port)),
      m_workloads(std::move(state_dir)),
      m_criu(std::move(criu)),
      m_start_ms(boottime_ms()) {}

void Server::run() {
  std::string bytes;
  while (!m_stop) {
    reap_children(m_workloads, m_checkpointer);
    PortEvent event = m_port->poll(k_poll_interval, bytes);
    switch (event) {
      case PortEvent::none:
        break;
      case PortEvent::connected: {
        log_line("host connected");
        release_held();
        m_decoder.clear();
        m_discarding = false;
        proto::Response response;
        response.set_id(0);
        *response.mutable_hello() = hello();
        send(response);
        break;
      }
      case PortEvent::disconnected:
        log_line("host disconnected");
        release_held();
        m_decoder.clear();
        m_discarding = false;
        break;
      case PortEvent::data:
        on_bytes(bytes);
        break;
    }
    if (m_shutdown_requested) shut_down();
  }
}

void Server::on_bytes(const std::string& bytes) {
  m_last_data = Clock::now();
  if (m_discarding) return;
  m_decoder.feed(bytes);
  for (;;) {
    std::optional<std::string> frame;
    try {
      frame = m_decoder.next();
    } catch (const std::exception& e) {
      // A bad length prefix leaves no way to find the next frame: answer once, then skip the
      // stream until the host reconnects.
      log_line(std::string("bad frame: ") + e.what());
      m_decoder.clear();
      m_discarding = true;
      proto::Response response = failure(0, e.what(), "reconnect to resynchronise the stream");
      send(response);
      return;
    }
    if (!frame) return;
    on_frame(*frame);
    if (m_discarding || m_shutdown_requested) return;
  }
}

void Server::on_frame(const std::string& frame) {
  proto::Request request;
  proto::Response response;
  if (!request.ParseFromString(frame)) {
    log_line("malformed request");
    response = failure(0, "malformed request");
  } else {
    reap_children(m_workloads, m_checkpointer);
    response = handle(request);
    log_line(std::string("request ") + std::to_string(request.id()) + " " + request_kind(request) +
             (response.has_error() ? ": " + response.error().message() : ""));
  }
  send(response);
}

void Server::send(proto::Response& response) {
  std::string frame = core::serialize_frame(response);
  if (frame.empty()) {
    frame = core::serialize_frame(failure(response.id(), "the reply does not fit in one frame"));
  }
  if (!m_port->write_all(frame, k_write_timeout)) {
    // A partly written frame leaves the host's stream unusable; it has to reconnect.
    log_line("could not write a reply to the host");
    m_discarding = true;
    m_decoder.clear();
  }
}

SendFn Server::stream_sender() {
  return [this](proto::Response& response) {
    if (m_discarding) return false;
    send(response);
    return !m_discarding;
  };
}

proto::Hello Server::hello() const {
  proto::Hello hello;
  hello.set_protocol_version(k_protocol_version);
  hello.set_agent_version(k_version);
  hello.set_kernel_release(m_criu.kernel_release);
  hello.set_criu_version(m_criu.version);
  hello.set_criu_checked(m_criu.checked);
  hello.set_criu_ok(m_criu.ok);
  hello.set_criu_check(m_criu.check_output);
  hello.set_uptime_ms(boottime_ms());
  hello.set_agent_start_ms(m_start_ms);
  hello.set_out_disk_bytes(m_checkpointer.out_disk().size());
  hello.set_in_disk_bytes(m_checkpointer.in_disk().size());
  return hello;
}

proto::Response Server::handle(const proto::Request& request) {
  proto::Response response;
  response.set_id(request.id());
  try {
    switch (request.body_case()) {
      case proto::Request::kHello:
        // A host says hello when it connects, and every kcr command is its own connection:
        // whoever held a stopped checkpoint is gone, even if its hangup went unseen while
        // the agent was busy (the port reports no change when a new host came meanwhile).
        release_held();
        m_bases.abort();
        *response.mutable_hello() = hello();
        break;
      case proto::Request::kRun:
        to_proto(m_workloads.run(request.run()), response.mutable_run()->mutable_workload());
        break;
      case proto::Request::kExec: {
        const Workload& workload = m_workloads.get(request.exec().workload());
        *response.mutable_exec() = exec_in_workload(workload, request.exec());
        break;
      }
      case proto::Request::kPs:
        *response.mutable_ps() = m_workloads.ps();
        response.mutable_ps()->set_agent_fds(count_entries("/proc/self/fd", false));
        response.mutable_ps()->set_guest_processes(count_entries("/proc", true));
        break;
      case proto::Request::kLogs:
        *response.mutable_logs() = m_workloads.logs(request.logs());
        break;
      case proto::Request::kKill:
        m_workloads.kill(request.kill().workload(), request.kill().signal(), request.kill().all());
        // Ending or resuming it is the host's decision on a stopped checkpoint.
        if (request.kill().signal() == SIGKILL || request.kill().signal() == SIGCONT) {
          m_held.erase(request.kill().workload());
        }
        response.mutable_ok();
        break;
      case proto::Request::kCheck: {
        // A feature probe alone does not redo the whole (slower) criu check.
        if (request.check().features().empty()) m_criu = probe_criu();
        auto* check = response.mutable_check();
        for (const auto& name : request.check().features()) {
          auto* feature = check->add_features();
          feature->set_name(name);
          std::string output;
          feature->set_ok(check_criu_feature(name, &output));
          feature->set_output(output);
        }
        check->set_ok(m_criu.ok);
        check->set_output(m_criu.check_output);
        check->set_criu_version(m_criu.version);
        check->set_kernel_release(m_criu.kernel_release);
        check->set_agent_version(k_version);
        break;
      }
      case proto::Request::kShutdown:
        m_shutdown_requested = true;
        response.mutable_ok();
        break;
      case proto::Request::kCheckpoint: {
        const auto& c = request.checkpoint();
        *response.mutable_checkpoint() =
            m_checkpointer.checkpoint(request.id(), c, stream_sender());
        // CRIU left the tree stopped (--leave-stopped) until the host decides. A lazy
        // dump's CRIU holds it itself and resumes it when its page server ends.
        if (c.pre_dump_round() == 0 && !c.options().leave_running() &&
            !response.checkpoint().lazy()) {
          m_held.insert(c.workload());
        }
        break;
      }
      case proto::Request::kPutFile:
        m_checkpointer.put_file(request.put_file());
        response.mutable_ok();
        break;
      case proto::Request::kRestore:
        *response.mutable_restore() =
            m_checkpointer.restore(request.id(), request.restore(), stream_sender());
        break;
      case proto::Request::kDropStaging:
        m_checkpointer.drop_staging(request.drop_staging().staging());
        response.mutable_ok();
        break;
      case proto::Request::kLink:
        bring_up_link(request.link().address());
        response.mutable_ok();
        break;
      case proto::Request::kLazyWait:
        *response.mutable_lazy_wait() = m_checkpointer.lazy_wait(request.lazy_wait());
        break;
      case proto::Request::kCopyIn:
        copy_in(m_workloads.get(request.copy_in().workload()), request.copy_in());
        response.mutable_ok();
        break;
      case proto::Request::kPutBase:
        *response.mutable_put_base() = m_bases.put(request.put_base());
        break;
      case proto::Request::kCopyOut:
        *response.mutable_copy_out() =
            copy_out(request.id(), m_workloads.get(request.copy_out().workload()),
                     request.copy_out(), stream_sender());
        break;
      case proto::Request::BODY_NOT_SET:
        return failure(request.id(), "malformed request");
    }
  } catch (const Error& e) {
    return failure(request.id(), e.what(), e.hint());
  } catch (const std::exception& e) {
    return failure(request.id(), e.what());
  } catch (...) {
    return failure(request.id(), "internal error");
  }
  return response;
}

std::vector<std::string> Server::release_held() {
  if (int n = m_checkpointer.drop_abandoned_staging()) {
    log_always("dropped " + std::to_string(n) + " staging area(s) a gone host left behind");
  }
  std::vector<std::string> resumed;
  for (const auto& name : m_held) {
    try {
      m_workloads.kill(name, SIGCONT, true);
      resumed.push_back(name);
      log_always("the host went away before deciding on the checkpoint of workload '" + name +
                 "': resumed it");
    } catch (const std::exception&) {
      // gone already: nothing to resume
    }
  }
  m_held.clear();
  return resumed;
}

void Server::shut_down() {
  log_always("shutting down");
  m_workloads.signal_all(SIGTERM);
  auto deadline = Clock::now() + k_shutdown_grace;
  while (m_workloads.any_running() && Clock::now() < deadline) {
    reap_children(m_workloads, m_checkpointer);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  m_workloads.signal_all(SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  reap_children(m_workloads, m_checkpointer);
  ::sync();
  if (::getpid() != 1) {
    // Not the guest's init (a test on a host): powering off would hit the host.
    m_stop = true;
    return;
  }
  ::reboot(RB_POWER_OFF);
  ::reboot(RB_HALT_SYSTEM);
  // Still here: keep serving rather than let PID 1 exit (that panics the guest).
  log_always("power off failed; still serving");
  m_shutdown_requested = false;
}

}  // namespace kcr::agent
