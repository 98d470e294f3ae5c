#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kcr {

// Exit codes; exit_codes() says what each means to whom (the man pages' EXIT STATUS).
enum class ExitCode : int {
  ok = 0,
  failure = 1,     // the operation failed; the message says why
  usage = 2,       // bad command line or configuration
  state_lost = 3,  // a probe found that a workload's state did not survive
};

// One row of the exit status table: what CODE means for COMMANDS.
struct ExitCodeInfo {
  std::optional<ExitCode> code;  // none: the exit status of the command kcr ran for the user
  std::string_view name;         // the enumerator's name, e.g. "state_lost"
  std::string_view meaning;      // one or two sentences of plain text
  std::vector<std::string_view> commands;  // command paths ("image check-kernel"); empty: all
};

// Every exit status kcr documents, in order of code; the general row of a code comes
// before the rows that say what it means for particular commands.
const std::vector<ExitCodeInfo>& exit_codes();

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
