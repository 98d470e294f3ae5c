#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "cli/cmd_internal.hpp"
#include "cli/context.hpp"
#include "core/error.hpp"
#include "kcr/version.hpp"

int main(int argc, char** argv) {
  // A VM that dies while kcr writes to its sockets must give an error, not
  // kill kcr before it can resume the source workload or clean up.
  std::signal(SIGPIPE, SIG_IGN);
  kcr::cli::Context ctx;
  CLI::App app{
      "kcr boots a QEMU microVM with a CRIU-capable guest kernel, runs a workload in it\n"
      "through kcr's own agent, and checkpoints, restores and migrates it with CRIU.",
      "kcr"};
  app.footer(
      "Examples:\n"
      "  kcr image build                      build the default guest image\n"
      "  kcr vm start demo                    boot a VM named demo\n"
      "  kcr run demo --name counter -- sh -c 'i=0; while :; do i=$((i+1)); echo $i >/tmp/c; "
      "sleep 1; done'\n"
      "  kcr exec demo counter -- cat /tmp/c  run a command inside the workload\n"
      "  kcr vm stop demo\n"
      "See 'kcr COMMAND --help' and man kcr (exit codes, files, configuration).");
  app.set_version_flag("--version", std::string("kcr ") + kcr::k_version);
  app.add_option("--config", ctx.config_path,
                 "YAML configuration file (default: $KCR_CONFIG or /etc/kcr/config.yaml)");
  app.add_flag("-q,--quiet", ctx.quiet, "Print no progress lines on stderr");
  kcr::cli::add_log_options(app);
  app.require_subcommand(1);
  app.fallthrough();

  kcr::cli::register_image_commands(app, ctx);
  kcr::cli::register_vm_commands(app, ctx);
  kcr::cli::register_workload_commands(app, ctx);
  kcr::cli::register_checkpoint_commands(app, ctx);
  kcr::cli::register_cycle_command(app, ctx);
  kcr::cli::register_migrate_command(app, ctx);
  kcr::cli::register_suite_commands(app, ctx);
  kcr::cli::register_check_command(app, ctx);
  kcr::cli::register_version_command(app, ctx);
  kcr::cli::register_internal_commands(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    fmt::print(stderr, "kcr: error: {}\n", e.what());
    fmt::print(stderr, "hint: run 'kcr --help' or 'kcr COMMAND --help'\n");
    return static_cast<int>(kcr::ExitCode::usage);
  } catch (const kcr::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "kcr: error: {}\n", kcr::cli::sanitize(e.what(), true));
    if (!e.hint().empty()) fmt::print(stderr, "hint: {}\n", kcr::cli::sanitize(e.hint(), true));
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    fmt::print(stderr, "kcr: error: {}\n", e.what());
    return static_cast<int>(kcr::ExitCode::failure);
  }
  return ctx.exit_code;
}
