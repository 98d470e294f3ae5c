#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "core/config.hpp"
#include "core/transfer_progress.hpp"
#include "vm/engine/vms.hpp"

namespace kcr::engine {

// Progress lines for a person watching ("restoring it in VM 'demo-m1'").
using Progress = std::function<void(const std::string&)>;

// What every engine operation works with: the configuration, the VMs it may
// use, and where its progress goes.
struct Env {
  const core::Config& cfg;
  Vms& vms;
  Progress progress;
  // How long a restored workload may take to show that its state survived.
  std::chrono::milliseconds settle = std::chrono::seconds(15);
  // Bytes moving to and from guests (checkpoint streams, uploads), for a progress bar.
  core::OnTransfer transfer = {};

  void say(const std::string& line) const {
    if (progress) progress(line);
  }

  // Removes the partial checkpoints a killed kcr left in the store, saying so.
  void clean_store() const;
};

}  // namespace kcr::engine
