#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace kcr::core {

// Where one transfer stands: what moves (PHASE, e.g. "checkpoint 'c1'"), how
// far, and since when. The data path reports it on every chunk; whoever
// shows it decides how often to draw.
struct TransferProgress {
  std::string phase;
  std::string verb = "sent";  // "received" or "sent": the plain line's word
  uint64_t done = 0;          // bytes so far
  uint64_t total = 0;         // bytes in all; 0 when not known in advance
  double elapsed_s = 0;       // since the transfer began
  bool finished = false;      // the last report of this transfer
};

// Receives transfer reports; empty means nobody watches.
using OnTransfer = std::function<void(const TransferProgress&)>;

// Counts one transfer's bytes for an OnTransfer watcher; its last report
// goes out however the transfer ends, so a bar on the screen is closed.
class TransferMeter {
 public:
  TransferMeter(const OnTransfer& watcher, std::string phase, std::string verb, uint64_t total)
      : m_watcher(watcher), m_started(std::chrono::steady_clock::now()) {
    m_state.phase = std::move(phase);
    m_state.verb = std::move(verb);
    m_state.total = total;
  }
  TransferMeter(const TransferMeter&) = delete;
  TransferMeter& operator=(const TransferMeter&) = delete;
  ~TransferMeter() { finish(); }

  void add(uint64_t bytes) {
    m_state.done += bytes;
    report();
  }
  void finish() {
    if (m_state.finished) return;
    m_state.finished = true;
    report();
  }

 private:
  void report() {
    if (!m_watcher) return;
    m_state.elapsed_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - m_started).count();
    m_watcher(m_state);
  }

  const OnTransfer& m_watcher;
  std::chrono::steady_clock::time_point m_started;
  TransferProgress m_state;
};

}  // namespace kcr::core
