#pragma once

#include <string>

namespace kcr::agent {

// What the guest knows about CRIU and its kernel.
struct CriuStatus {
  std::string version;         // "3.17.1"; empty when criu is missing
  bool checked = false;        // `criu check` ran (ok and check_output hold its verdict)
  bool ok = false;             // `criu check` said "Looks good."
  std::string check_output;    // its output, trimmed
  std::string kernel_release;  // uname -r
};

// Runs `criu --version` and uname; with CHECK also `criu check` (each bounded in time).
CriuStatus probe_criu(bool check = true);

// Runs `criu check --feature NAME`; true when CRIU says it is supported.
// NAME must be [a-z0-9_-] (throws kcr::Error otherwise). OUTPUT gets CRIU's words.
bool check_criu_feature(const std::string& name, std::string* output);

// The criu binary every CRIU run of the agent executes.
std::string criu_binary();

}  // namespace kcr::agent
