#pragma once

#include <string>

#include "cli/command_surface.hpp"

namespace kcr::cli {

// The bash completion script for ROOT's commands and options ('complete -F _kcr kcr');
// names (VMs, workloads, checkpoints, images, scenarios) come from 'kcr __complete'.
std::string bash_completion(const CommandDoc& root);

// The same for zsh: an autoloadable _kcr (#compdef kcr).
std::string zsh_completion(const CommandDoc& root);

}  // namespace kcr::cli
