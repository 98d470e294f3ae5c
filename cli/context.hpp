#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/progress.hpp"
#include "core/config.hpp"
#include "core/format.hpp"
#include "core/json.hpp"
#include "vm/engine/env.hpp"
#include "vm/engine/vms.hpp"
#include "vm/vm.hpp"

namespace kcr::cli {

// State shared by every subcommand: global options and the loaded config.
struct Context {
  std::string config_path;
  bool json = false;
  bool quiet = false;
  int exit_code = 0;  // what main returns when no error was thrown

  // The effective configuration, loaded on first use.
  const core::Config& config();

  // The engine's environment: this host's VMs, progress lines and transfer bars to stderr.
  engine::Env& engine();

  // Where progress goes on stderr: lines, and a bar while bytes move.
  ProgressBar& progress_bar();

 private:
  std::unique_ptr<ProgressBar> m_bar;
  std::optional<core::Config> m_config;
  std::unique_ptr<engine::LocalVms> m_vms;
  std::unique_ptr<engine::Env> m_env;
};

// Adds --json to SUB, setting ctx.json.
void add_json_flag(CLI::App* sub, Context& ctx);

// Prints a progress line to stderr unless --json or --quiet.
void progress(Context& ctx, const std::string& line);

// Shows a transfer report on stderr unless --json or --quiet.
void transfer_progress(Context& ctx, const core::TransferProgress& p);

// Prints ROWS under HEADERS, columns padded to their widest cell.
void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows);

// Prints J followed by a newline to stdout.
void print_json(const core::Json& j);

// Replaces control characters (terminal escapes from the guest) with '?',
// keeping newlines and tabs when KEEP_NEWLINES is set.
std::string sanitize(const std::string& text, bool keep_newlines = false);

using core::format_bytes;
using core::format_seconds;

// Boots the VM SPEC describes (its empty fields: the config's); fills HELLO when given.
vm::VmInfo start_vm_from_image(Context& ctx, const engine::StartSpec& spec, proto::Hello* hello);

// Registration of each command group, one file each.
void register_image_commands(CLI::App& app, Context& ctx);
void register_vm_commands(CLI::App& app, Context& ctx);
void register_workload_commands(CLI::App& app, Context& ctx);
void register_check_command(CLI::App& app, Context& ctx);
void register_checkpoint_commands(CLI::App& app, Context& ctx);
void register_inspect_commands(CLI::App* checkpoints, Context& ctx);
void register_cycle_command(CLI::App& app, Context& ctx);
void register_migrate_command(CLI::App& app, Context& ctx);
void register_suite_commands(CLI::App& app, Context& ctx);
void register_version_command(CLI::App& app, Context& ctx);

// Adds the global --log-level (or $KCR_LOG_LEVEL) and --log-file options,
// applied to core/log.hpp's logger as soon as they are parsed.
void add_log_options(CLI::App& app);

}  // namespace kcr::cli
