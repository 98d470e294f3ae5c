#include "vm/agent_client.hpp"

#include <fmt/core.h>

#include <random>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/log.hpp"

namespace kcr::vm {

namespace {

// True when RESP carries the body that answers REQ.
bool reply_fits(const proto::Request& req, const proto::Response& resp) {
  using R = proto::Request;
  using P = proto::Response;
  switch (req.body_case()) {
    case R::kHello:
      return resp.body_case() == P::kHello;
    case R::kRun:
      return resp.body_case() == P::kRun;
    case R::kExec:
      return resp.body_case() == P::kExec;
    case R::kPs:
      return resp.body_case() == P::kPs;
    case R::kLogs:
      return resp.body_case() == P::kLogs;
    case R::kCheck:
      return resp.body_case() == P::kCheck;
    case R::kCopyOut:
      return resp.body_case() == P::kCopyOut;
    case R::kKill:
    case R::kShutdown:
    case R::kCopyIn:
      return resp.body_case() == P::kOk;
    default:
      return true;
  }
}

// The request's kind as the protocol names it ("checkpoint", "put_file").
std::string request_kind(const proto::Request& req) {
  const auto* field = req.GetDescriptor()->FindFieldByNumber(req.body_case());
  return field ? field->name() : "empty";
}

// At debug level: one line per request, with how long the agent took.
void log_request(const std::string& kind, std::chrono::steady_clock::time_point sent,
                 const Error* failed) {
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  if (failed) {
    core::log(core::LogLevel::debug,
              fmt::format("agent request {} failed after {:.3f} s: {}", kind, s, failed->what()));
  } else {
    core::log(core::LogLevel::debug, fmt::format("agent request {}: {:.3f} s", kind, s));
  }
}

}  // namespace

AgentClient::AgentClient(const std::string& socket_path)
    : AgentClient(core::connect_unix(socket_path, "the agent")) {}

AgentClient::AgentClient(UniqueFd fd) : m_fd(std::move(fd)), m_stream(m_fd.get()) {
  std::random_device rd;
  m_next_id = ((static_cast<uint64_t>(rd()) << 32) | rd()) >> 1;
  if (m_next_id == 0) m_next_id = 1;
}

proto::Hello AgentClient::wait_hello(std::chrono::milliseconds timeout,
                                     const std::function<void()>& still_alive) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + timeout;
  auto nudge = std::chrono::milliseconds(500);
  for (;;) {
    if (still_alive) still_alive();
    auto now = Clock::now();
    if (now >= deadline) throw HelloTimeout();
    proto::Request req;
    req.mutable_hello();
    write_request(req);
    auto wait = std::min<std::chrono::milliseconds>(
        nudge, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
    auto frame = m_stream.read(wait);
    while (frame) {
      proto::Response resp;
      if (resp.ParseFromString(*frame) && resp.has_hello()) {
        if (core::log_enabled(core::LogLevel::debug)) {
          log_request("hello", deadline - timeout, nullptr);
        }
        return resp.hello();
      }
      frame = m_stream.read(std::chrono::milliseconds(0));
    }
    if (!m_stream.timed_out()) throw_closed("the agent channel closed (QEMU exited?)");
    nudge = std::min(nudge * 2, std::chrono::milliseconds(2000));
  }
}

proto::Response AgentClient::call(proto::Request request, std::chrono::milliseconds timeout) {
  return call_streaming(std::move(request), timeout, {});
}

proto::Response AgentClient::call_streaming(
    proto::Request request, std::chrono::milliseconds timeout,
    const std::function<void(const proto::Response&)>& on_part) {
  const bool debug = core::log_enabled(core::LogLevel::debug);
  auto sent = std::chrono::steady_clock::now();
  uint64_t id = write_request(request);
  request.set_id(id);
  try {
    auto resp = receive(id, &request, timeout, on_part);
    if (debug) log_request(request_kind(request), sent, nullptr);
    return resp;
  } catch (const Error& e) {
    if (debug) log_request(request_kind(request), sent, &e);
    throw;
  }
}

uint64_t AgentClient::send(proto::Request request) {
  std::string kind = core::log_enabled(core::LogLevel::debug) ? request_kind(request) : "";
  uint64_t id = write_request(std::move(request));
  if (!kind.empty()) m_pending[id] = {kind, std::chrono::steady_clock::now()};
  return id;
}

uint64_t AgentClient::write_request(proto::Request request) {
  uint64_t id = m_next_id++;
  request.set_id(id);
  std::string payload;
  request.SerializeToString(&payload);
  try {
    m_stream.write(payload, std::chrono::seconds(30));
  } catch (const Error&) {
    std::string why = m_why_closed ? m_why_closed() : std::string();
    if (!why.empty()) throw Error(why);
    throw;
  }
  return id;
}

void AgentClient::throw_closed(const char* fallback) const {
  std::string why = m_why_closed ? m_why_closed() : std::string();
  throw Error(why.empty() ? std::string(fallback) : why);
}

proto::Response AgentClient::await(uint64_t id, std::chrono::milliseconds timeout) {
  auto pending = m_pending.extract(id);
  try {
    auto resp = receive(id, nullptr, timeout, {});
    if (pending) log_request(pending.mapped().kind, pending.mapped().sent, nullptr);
    return resp;
  } catch (const Error& e) {
    if (pending) log_request(pending.mapped().kind, pending.mapped().sent, &e);
    throw;
  }
}

proto::Response AgentClient::receive(uint64_t id, const proto::Request* request,
                                     std::chrono::milliseconds timeout,
                                     const std::function<void(const proto::Response&)>& on_part) {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) throw Error("the agent did not answer in time");
    auto frame = m_stream.read(left);
    if (!frame) {
      if (m_stream.timed_out()) throw Error("the agent did not answer in time");
      throw_closed("the agent channel closed (did the VM stop?)");
    }
    proto::Response resp;
    if (!resp.ParseFromString(*frame))
      throw Error("protocol error: unparsable reply from the agent");
    if (resp.id() != id) continue;  // an unsolicited hello or a reply to an abandoned request
    if (resp.body_case() == proto::Response::kChunk ||
        resp.body_case() == proto::Response::kFileDone ||
        resp.body_case() == proto::Response::kCopyEntry) {
      if (!on_part) throw Error("protocol error: unexpected file data from the agent");
      on_part(resp);
      deadline = Clock::now() + timeout;
      continue;
    }
    if (resp.has_error()) throw Error(resp.error().message(), resp.error().hint());
    if (request && !reply_fits(*request, resp)) {
      throw Error("protocol error: the agent answered a " +
                  std::string(request->GetDescriptor()->oneof_decl(0)->name()) +
                  " request with the wrong reply");
    }
    return resp;
  }
}

}  // namespace kcr::vm
