#include "core/signals.hpp"

#include <algorithm>
#include <array>
#include <csignal>
#include <utility>

#include "core/error.hpp"

namespace kcr::core {

namespace {

constexpr std::array<std::pair<const char*, int>, 20> k_signals = {{
    {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},   {"ABRT", SIGABRT},
    {"FPE", SIGFPE},   {"KILL", SIGKILL}, {"SEGV", SIGSEGV}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},
    {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},
    {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU}, {"WINCH", SIGWINCH},
}};

}  // namespace

int parse_signal(const std::string& text) {
  std::string s = text;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  if (!s.empty() &&
      std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (s.size() <= 2) {
      int n = std::stoi(s);
      if (n >= 1 && n <= 64) return n;
    }
  } else {
    for (const auto& [name, number] : k_signals) {
      if (s == name) return number;
    }
  }
  throw Error("'" + text + "' is not a signal",
              "use a name such as TERM, KILL, INT, HUP, USR1 or a number from 1 to 64",
              ExitCode::usage);
}

std::string signal_name(int signal) {
  for (const auto& [name, number] : k_signals) {
    if (number == signal) return name;
  }
  return "SIG" + std::to_string(signal);
}

}  // namespace kcr::core
