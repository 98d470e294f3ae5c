#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kcr::images {

// A kernel .config: option name ("CONFIG_PVH") -> value ("y", "m", "\"-kcr\"", "64").
// Options that are "not set" are absent.
using KernelConfig = std::map<std::string, std::string>;

// Parses the text of a kernel .config; throws kcr::Error naming SOURCE when a line is
// neither an assignment, a comment nor empty.
KernelConfig parse_kernel_config(std::string_view text, const std::string& source);

// How much kcr depends on an option of the fragment (images/kernel/criu.config).
enum class Need { required, recommended, build_choice };

// One option of the fragment with the comment of its group.
struct FragmentOption {
  std::string name;   // "CONFIG_CHECKPOINT_RESTORE"
  std::string value;  // "y", "\"-kcr\"", or "n" for "# CONFIG_X is not set"
  Need need = Need::required;
  std::string needed_by;  // the group comment: "criu dump/restore (...)"
};

// Parses a fragment: groups headed by "# needed by: X", "# recommended for: X" or
// "# build choice: X". Throws kcr::Error naming SOURCE when an option has no group.
std::vector<FragmentOption> parse_kernel_fragment(std::string_view text, const std::string& source);

// The fragment kcr builds its kernel with, as compiled into kcr: text and parsed options.
std::string_view kcr_kernel_fragment_text();
const std::vector<FragmentOption>& kcr_kernel_fragment();

enum class OptionStatus { builtin, module, missing, wrong_value };

struct OptionCheck {
  FragmentOption option;
  OptionStatus status = OptionStatus::missing;
  std::string actual;  // the value in the checked config, empty when missing

  // Built in, or a module (an image of a modular kernel loads what it needs).
  bool present() const { return status == OptionStatus::builtin || status == OptionStatus::module; }
};

// The required and recommended options of a fragment checked against one kernel config.
struct KernelCheck {
  std::vector<OptionCheck> options;  // fragment order; build choices are not checked

  // Required options that are missing or have another value.
  std::vector<OptionCheck> missing_required() const;
  bool ok() const { return missing_required().empty(); }
};

// Checks CONFIG against the required and recommended options of FRAGMENT.
KernelCheck check_kernel_config(const KernelConfig& config,
                                const std::vector<FragmentOption>& fragment);

// Every option of FRAGMENT (build choices included) that does not have its value in CONFIG:
// what olddefconfig dropped because a dependency is unmet.
std::vector<FragmentOption> dropped_options(const KernelConfig& config,
                                            const std::vector<FragmentOption>& fragment);

// "built in", "module", "missing", "is X, needs Y".
std::string describe_status(const OptionCheck& check);

// One line naming the required options CHECK lacks and what each breaks, for errors:
// "CONFIG_A (needed by: X), CONFIG_B (needed by: Y)".
std::string describe_missing(const KernelCheck& check);

}  // namespace kcr::images
