#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "agent.pb.h"
#include "core/checkpoint_store.hpp"
#include "core/json.hpp"
#include "core/scenario.hpp"
#include "vm/checkpoint.hpp"

namespace kcr::cli {

// The runc/podman checkpoint flags, parsed into proto::CriuOptions.
struct CriuFlags {
  // migrate: the dump flags but --leave-running (migrate says --keep-source).
  enum class Use { dump, restore, migrate };

  bool leave_running = false;
  bool tcp_established = false;
  bool tcp_skip_in_flight = false;
  bool ext_unix_sk = false;
  bool file_locks = false;
  bool link_remap = false;
  bool shell_job = false;
  std::string manage_cgroups_mode;

  // Adds the flags that apply to USE to SUB.
  void add_to(CLI::App* sub, Use use);
  proto::CriuOptions to_proto() const;
  // "leave-running, tcp-established" or "none".
  static std::string describe(const proto::CriuOptions& o);
};

core::Json manifest_json(const core::CheckpointManifest& m, const core::CheckpointStore& store);
core::Json restore_json(const core::CheckpointManifest& m, const vm::RestoreResult& r);

// Adds at_checkpoint and after_restore (JSON numbers when the probe read a
// number), survived and detail to J.
void set_verdict(core::Json& j, const core::ProbeVerdict& v);

// podman's --print-stats shape, microseconds.
core::Json podman_dump_stats(const core::CheckpointManifest& m);
core::Json podman_restore_stats(const vm::RestoreResult& r);

}  // namespace kcr::cli
