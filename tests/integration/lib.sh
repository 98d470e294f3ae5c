# Shared helpers for kcr's integration tests. Each test runs kcr for real:
# QEMU (TCG when there is no KVM), the guest kernel, the agent, CRIU.
# Every test gets its own state and data directories; the guest image cache
# is shared (scripts/setup.sh built it). KCR_TEST_IMAGE=NAME runs them on that
# image instead of 'default' (scripts/test.sh does, with the source kernel's).
set -uo pipefail

KCR=${KCR:?KCR must name the kcr binary}
KCR_TEST_TMP=$(mktemp -d /tmp/kcr-it.XXXXXX)
export KCR_STATE_DIR=$KCR_TEST_TMP/state
export KCR_DATA_DIR=$KCR_TEST_TMP/data
if [ -n "${KCR_TEST_IMAGE:-}" ]; then
  echo "image: $KCR_TEST_IMAGE" >>"$KCR_TEST_TMP/config.yaml"
  export KCR_CONFIG=$KCR_TEST_TMP/config.yaml
fi
# KCR_TEST_BACKEND=libvirt runs the test's VMs on the libvirt backend, against the daemon
# scripts/libvirt-up.sh brings up (tests/CMakeLists.txt runs some tests so, as
# integration.libvirt.NAME); skipped, saying why, only when no daemon can run here.
if [ "${KCR_TEST_BACKEND:-qemu}" != qemu ]; then
  if ! up=$("$(dirname "${BASH_SOURCE[0]}")/../../scripts/libvirt-up.sh" </dev/null 2>&1); then
    echo "SKIPPED: no libvirt daemon can run here: ${up##*$'\n'}"
    rm -rf "$KCR_TEST_TMP"
    exit 77
  fi
  echo "backend: $KCR_TEST_BACKEND" >>"$KCR_TEST_TMP/config.yaml"
  export KCR_CONFIG=$KCR_TEST_TMP/config.yaml
fi
checks=0
failures=0

kcr() { "$KCR" "$@"; }

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

pass() { checks=$((checks + 1)); }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [ "$2" == "$3" ]; then pass; else fail "$1: expected '$2', got '$3'"; fi
}

# expect_contains WHAT NEEDLE HAYSTACK
expect_contains() {
  if [[ "$3" == *"$2"* ]]; then pass; else fail "$1: expected to contain '$2', got: $3"; fi
}

expect_not_contains() {
  if [[ "$3" != *"$2"* ]]; then pass; else fail "$1: expected not to contain '$2', got: $3"; fi
}

# expect_true WHAT COMMAND...: the command must succeed
expect_true() {
  local what=$1
  shift
  if "$@"; then pass; else fail "$what: '$*' failed"; fi
}

# expect_failure WHAT NEEDLE COMMAND...: the command must exit non-zero and
# print NEEDLE on stderr; the stderr text is left in $last_err.
expect_failure() {
  local what=$1 needle=$2
  shift 2
  local out rc
  out=$("$@" 2>&1 >/dev/null)
  rc=$?
  last_err=$out
  if [ $rc -eq 0 ]; then
    fail "$what: '$*' succeeded, expected a failure"
  elif [[ "$out" != *"$needle"* ]]; then
    fail "$what: stderr lacks '$needle': $out"
  elif [[ "$out" != *"kcr: error: "* ]]; then
    fail "$what: stderr lacks the 'kcr: error:' prefix: $out"
  else
    pass
  fi
}

# wait_for WHAT SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local end=$((SECONDS + seconds))
  while [ $SECONDS -lt $end ]; do
    if "$@" >/dev/null 2>&1; then pass; return 0; fi
    sleep 0.5
  done
  fail "$what: not true within ${seconds}s: $*"
  return 1
}

# kill_midway PATTERN PID COMMAND...: runs COMMAND in the background, waits
# until PATTERN shows on its stderr, kills PID (a QEMU) 0.3 s later and waits
# for COMMAND. Leaves its exit status in $rc and its stderr in $err.
kill_midway() {
  local pattern=$1 victim=$2
  shift 2
  # Emptied here, not by the background job's redirection: that runs in the child, after this
  # shell may already have read the previous call's stderr and matched PATTERN there.
  : >"$KCR_TEST_TMP/midway.out"
  : >"$KCR_TEST_TMP/midway.err"
  "$@" >>"$KCR_TEST_TMP/midway.out" 2>>"$KCR_TEST_TMP/midway.err" &
  local job=$! seen=0
  for _ in $(seq 1 600); do
    if grep -q -- "$pattern" "$KCR_TEST_TMP/midway.err"; then seen=1 && break; fi
    sleep 0.05
  done
  if [ $seen -eq 0 ]; then
    # The kill comes too late to test what it should: say so, with what kcr and the guests
    # printed meanwhile, before the evidence dies with the VM.
    fail "kill_midway: '$pattern' never showed within 30 s on the stderr of: $*"
    sed 's/^/  stderr: /' "$KCR_TEST_TMP/midway.err" >&2
    local log
    for log in "$KCR_STATE_DIR"/vms/*/serial.log; do
      [ -f "$log" ] && tail -n 30 "$log" | sed "s|^|  $(basename "$(dirname "$log")"): |" >&2
    done
  fi
  sleep 0.3
  kill -9 "$victim"
  wait $job
  rc=$?
  err=$(cat "$KCR_TEST_TMP/midway.err")
}

qemu_pids() { pgrep -f -- "$KCR_STATE_DIR/" || true; }

cleanup() {
  local vm
  for vm in $(ls "$KCR_STATE_DIR/vms" 2>/dev/null); do
    "$KCR" -q vm stop "$vm" >/dev/null 2>&1 || true
  done
  local pids
  pids=$(qemu_pids)
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  rm -rf "$KCR_TEST_TMP"
}
trap cleanup EXIT

# The test ends here: a summary line, and a non-zero exit on any failure.
finish() {
  if [ $checks -eq 0 ] && [ $failures -eq 0 ]; then
    echo "no checks ran" >&2
    exit 1
  fi
  echo "$checks passed, $failures failed"
  [ $failures -eq 0 ]
}
