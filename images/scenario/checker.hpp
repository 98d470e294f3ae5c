#pragma once

// The generic probe: a workload that keeps kernel state (a lock, a timer, a namespace) checks
// that state itself when asked, because only it can. The probe writes a request with a fresh
// sequence number to STATE_DIR/NAME.request; the workload, polling, answers in
// STATE_DIR/NAME.report with "SEQ ok FINGERPRINT..." or "SEQ bad REASON"; the probe prints
// what follows SEQ. The fingerprint must describe the state (what was read back from the
// pipe, which pids are alive, ...) and include the workload's seed(), drawn at its start, so
// a workload restarted instead of restored answers differently; the host's "same" judge
// compares the answers before the checkpoint and after the restore.

#include <functional>
#include <optional>
#include <string>

#include "images/scenario/modes.hpp"

namespace kcr::scenario {

// 16 hex digits drawn from getrandom(2) once per process start (fork keeps it).
const std::string& seed();
// The seed as a number, for deriving data from it.
uint64_t seed_number();

// A seed-derived block of N bytes, different for each TAG; a block's checksum in hex.
std::string seeded(std::size_t n, uint64_t tag);
std::string sum_of(const std::string& d);

// The Uid:, Gid: and Groups: lines of /proc/PID/status, tabs as spaces, each ended by ';';
// nullopt when the process is gone.
std::optional<std::string> process_ids(int pid);

// What a check answers: "ok ..." or "bad ...", one line.
using Check = std::function<std::string()>;

// Answers a pending request for NAME, if there is one; call it often (every 50 ms or so)
// from the workload's loop. Returns true when it answered one.
bool answer_checks(const Args& a, const std::string& name, const Check& check);

// A workload's loop that does nothing but answer checks, TICK (if any) run between polls.
[[noreturn]] void serve_checks(const Args& a, const std::string& name, const Check& check,
                               const std::function<void()>& tick = {});

// The probe mode: "probe --name NAME [--timeout-s 10]". Prints the answer; exits 0 for ok,
// 3 for bad, 1 when the workload does not answer in time.
int run_probe(const Args& a);

}  // namespace kcr::scenario
