#include "images/agent/check.hpp"

#include <sys/utsname.h>
#include <sys/wait.h>

#include <sstream>

#include "core/error.hpp"
#include "images/agent/process.hpp"

namespace kcr::agent {

namespace {

constexpr const char* k_criu = "/usr/sbin/criu";
constexpr std::chrono::seconds k_criu_timeout{30};

}  // namespace

std::string trim(const std::string& text) {
  const char* space = " \t\r\n";
  auto begin = text.find_first_not_of(space);
  if (begin == std::string::npos) return {};
  auto end = text.find_last_not_of(space);
  return text.substr(begin, end - begin + 1);
}

std::string parse_criu_version(const std::string& output) {
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.rfind("Version:", 0) == 0) return trim(line.substr(8));
  }
  return {};
}

CriuStatus probe_criu() {
  CriuStatus status;
  utsname names{};
  if (::uname(&names) == 0) status.kernel_release = names.release;
  try {
    auto version = run_command({k_criu, "--version"}, k_criu_timeout);
    if (WIFEXITED(version.status) && WEXITSTATUS(version.status) == 0) {
      status.version = parse_criu_version(version.output);
    }
    auto check = run_command({k_criu, "check"}, k_criu_timeout);
    status.check_output = trim(check.output);
    if (check.timed_out) status.check_output += "\n(criu check timed out)";
    status.ok = !check.timed_out && check.output.find("Looks good.") != std::string::npos;
  } catch (const std::exception& e) {
    status.check_output = std::string("cannot run criu: ") + e.what();
  }
  return status;
}

bool check_criu_feature(const std::string& name, std::string* output) {
  bool valid = !name.empty() && name.size() <= 32;
  for (char c : name) {
    valid = valid && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  }
  if (!valid) throw Error("'" + name + "' is not a CRIU feature name");
  auto check = run_command({k_criu, "check", "--feature", name}, k_criu_timeout);
  *output = trim(check.output);
  return !check.timed_out && WIFEXITED(check.status) && WEXITSTATUS(check.status) == 0 &&
         check.output.find("is supported") != std::string::npos;
}

}  // namespace kcr::agent
