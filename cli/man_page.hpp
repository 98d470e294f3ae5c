#pragma once

#include <string>

#include "cli/command_surface.hpp"

namespace kcr::cli {

// Writes kcr.1 and one page per command (kcr-vm-start.1, ...) into OUT_DIR, replacing the
// kcr*.1 pages there. Each page is generated from ROOT and the exit code table, merged with
// the hand-written sections of SOURCE_DIR/PAGE.1.in (and common.1.in for command pages).
// Throws Error for a source naming an unknown section or a page no command has.
void write_man_pages(const CommandDoc& root, const std::string& source_dir,
                     const std::string& out_dir);

}  // namespace kcr::cli
