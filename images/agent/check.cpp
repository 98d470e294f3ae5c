#include "images/agent/check.hpp"

#include <sys/utsname.h>
#include <sys/wait.h>

#include "core/criu_options.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "images/agent/process.hpp"

namespace kcr::agent {

namespace {

constexpr std::chrono::seconds k_criu_timeout{30};

}  // namespace

std::string criu_binary() {
  // Looked up on the agent's PATH: the image puts criu where the host has it, /usr/sbin or
  // /usr/local/sbin.
  return "criu";
}

CriuStatus probe_criu(bool check_too) {
  CriuStatus status;
  utsname names{};
  if (::uname(&names) == 0) status.kernel_release = names.release;
  try {
    auto version = run_command(core::criu_version_argv(criu_binary()), k_criu_timeout);
    if (WIFEXITED(version.status) && WEXITSTATUS(version.status) == 0) {
      status.version = core::parse_criu_version(version.output);
    }
    if (!check_too) return status;
    status.checked = true;
    auto check = run_command(core::criu_check_argv(criu_binary()), k_criu_timeout);
    status.check_output = core::trim(check.output);
    if (check.timed_out) status.check_output += "\n(criu check timed out)";
    status.ok = !check.timed_out && check.output.find("Looks good.") != std::string::npos;
  } catch (const std::exception& e) {
    status.check_output = std::string("cannot run criu: ") + e.what();
  }
  return status;
}

bool check_criu_feature(const std::string& name, std::string* output) {
  // An empty name would make the whole "criu check" of criu_check_argv.
  if (name.empty()) throw Error("'' is not a CRIU feature name");
  auto check = run_command(core::criu_check_argv(criu_binary(), name), k_criu_timeout);
  *output = core::trim(check.output);
  return !check.timed_out && WIFEXITED(check.status) && WEXITSTATUS(check.status) == 0 &&
         check.output.find("is supported") != std::string::npos;
}

}  // namespace kcr::agent
