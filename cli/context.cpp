#include "cli/context.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/log.hpp"

namespace kcr::cli {

const core::Config& Context::config() {
  if (!m_config) m_config = core::load_config(config_path);
  return *m_config;
}

engine::Env& Context::engine() {
  if (!m_env) {
    auto say = [this](const std::string& line) { progress(*this, line); };
    m_vms = std::make_unique<engine::LocalVms>(config(), say);
    m_env = std::make_unique<engine::Env>(engine::Env{config(), *m_vms, say});
    m_env->transfer = [this](const core::TransferProgress& p) { transfer_progress(*this, p); };
  }
  return *m_env;
}

ProgressBar& Context::progress_bar() {
  if (!m_bar) m_bar = std::make_unique<ProgressBar>(STDERR_FILENO);
  return *m_bar;
}

void add_log_options(CLI::App& app) {
  app.add_option_function<std::string>(
         "--log-level",
         [](const std::string& level) { core::set_log_level(*core::parse_log_level(level)); },
         "What kcr logs on stderr (or --log-file): debug shows each agent request and its "
         "duration, the QEMU command line and the CRIU options sent (default warn)")
      ->envname("KCR_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option_function<std::string>(
      "--log-file", [](const std::string& path) { core::set_log_file(path); },
      "Append log lines to PATH instead of stderr");
}

void add_json_flag(CLI::App* sub, Context& ctx) {
  sub->add_flag("--json", ctx.json, "Print machine-readable JSON on stdout");
}

void progress(Context& ctx, const std::string& line) {
  if (ctx.json || ctx.quiet) return;
  std::fflush(stderr);
  ctx.progress_bar().line(line);
}

void transfer_progress(Context& ctx, const core::TransferProgress& p) {
  if (ctx.json || ctx.quiet) return;
  ctx.progress_bar().update(p);
}

void print_table(const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows) {
  fmt::print("{}", core::format_table(headers, rows));
}

void print_json(const core::Json& j) {
  fmt::print("{}\n", j.dump());
}

std::string sanitize(const std::string& text, bool keep_newlines) {
  std::string out = text;
  for (char& c : out) {
    auto u = static_cast<unsigned char>(c);
    if (keep_newlines && (c == '\n' || c == '\t')) continue;
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

}  // namespace kcr::cli
