#pragma once

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

}  // namespace kcr::core
