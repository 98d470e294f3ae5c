#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/scenario.hpp"
#include "vm/engine/env.hpp"

namespace kcr::engine {

struct SuiteRequest {
  std::vector<std::string> scenarios;  // empty: every scenario in the registry
  unsigned modes = core::mode_cycle;   // core::SuiteModeBit flags
  unsigned count = 3;                  // cycles per cycle case
  std::string image;                   // guest image; empty: the config's default
  unsigned jobs = 0;                   // cases at once, each in its own VMs; 0: default_jobs()
};

// pass: as it should be (state survived; for the restart control, the probe
// noticed). fail: it should have passed. xfail: failed as the registry says it
// does. xpass: passed although the registry says it fails (report it: the
// limit is gone). unsupported: the scenario does not run in this mode (its
// registry entry says so); never counted as a pass.
enum class Outcome { pass, fail, xfail, xpass, unsupported };
std::string_view outcome_word(Outcome o);
// The outcome a case has when it survived (or not) and is (or is not) expected to fail.
Outcome outcome_of(bool survived, bool expected_to_fail);
// True for the outcomes the suite's exit status reports.
bool unexpected(Outcome o);

struct SuiteCase {
  std::string scenario, mode;
  Outcome outcome = Outcome::fail;
  std::string xfail;                 // the registry's reason, when one applies
  std::string detail;                // why it failed: the verdict, or the error with CRIU's lines
  std::string before, after;         // what the probe saw
  double seconds = 0;                // the whole case, VM boots included
  double dump_s = 0, restore_s = 0;  // CRIU dump and kcr restore (cycle: mean of the rounds)
  double downtime_s = 0;             // migrate modes
  uint64_t image_bytes = 0;          // checkpoint size (cycle: the largest round)
  unsigned rounds = 0;
};

struct SuiteResult {
  std::string image, kernel, criu;  // what ran it (from the first VM's hello)
  std::string started;              // ISO-8601 UTC
  double seconds = 0;
  unsigned jobs = 1, count = 0;
  std::vector<SuiteCase> cases;  // scenario by scenario, modes in registry order
  bool ok() const;               // no unexpected outcome
};

// Jobs that fit this host: one per core, as many as its free memory holds
// VMs of MEMORY_MIB, at least 1, at most 8.
unsigned default_jobs(uint64_t memory_mib);

// Runs every selected scenario in every selected mode it supports, JOBS at a
// time, each case in VMs of its own that it stops again. A case that cannot
// run (a failed checkpoint, say) is a failure with its error, not an abort.
// ON_CASE is called (from the thread that ran it) as each case ends.
SuiteResult run_suite(
    Env& env, const SuiteRequest& request,
    const std::function<void(const SuiteCase&, size_t done, size_t total)>& on_case = {});

}  // namespace kcr::engine
