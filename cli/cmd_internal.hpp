#pragma once

#include <CLI/CLI.hpp>

#include "cli/context.hpp"

namespace kcr::cli {

// Hidden: __describe (man pages and completion scripts from APP's definitions, for the
// build) and __complete KIND [VM] (names for the completion scripts, one a line).
void register_internal_commands(CLI::App& app, Context& ctx);

}  // namespace kcr::cli
