#pragma once

#include <stdexcept>
#include <string>

namespace kcr {

// Exit codes, documented in man/kcr.1.
enum class ExitCode : int {
  ok = 0,
  failure = 1,     // the operation failed; the message says why
  usage = 2,       // bad command line or configuration
  state_lost = 3,  // a probe found that a workload's state did not survive
};

// The one error type kcr throws up to main: printed once as "kcr: error: MESSAGE"
// followed by "hint: HINT" when a hint is set.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string hint = {},
                 ExitCode code = ExitCode::failure)
      : std::runtime_error(message), m_hint(std::move(hint)), m_code(code) {}

  const std::string& hint() const { return m_hint; }
  ExitCode code() const { return m_code; }

  // Returns a copy whose message is "CONTEXT: message", keeping hint and code.
  Error with_context(const std::string& context) const {
    return Error(context + ": " + what(), m_hint, m_code);
  }

 private:
  std::string m_hint;
  ExitCode m_code;
};

// Throws Error("WHAT: strerror(errno)") for a failed system call.
[[noreturn]] void throw_errno(const std::string& what);

}  // namespace kcr
