#!/usr/bin/env bash
# Two kcr commands on one VM at once serialize on the VM's lock or fail
# clearly; neither corrupts the other's work.
source "$(dirname "$0")/lib.sh"

kcr -q vm start demo >/dev/null || fail "vm start"
kcr run demo --name big -- kcr-scenario membuf --size 64M >/dev/null
kcr run demo --name other -- kcr-scenario membuf --size 8M >/dev/null
wait_for "big ready" 120 kcr exec demo big -- kcr-scenario membuf-probe
wait_for "other ready" 60 kcr exec demo other -- kcr-scenario membuf-probe
before=$(kcr exec demo other -- kcr-scenario membuf-probe)

# start LABEL COMMAND...: runs COMMAND in the background once the VM is busy.
"$KCR" checkpoint demo big -o first --leave-running >"$KCR_TEST_TMP/first.out" 2>&1 &
first=$!
for _ in $(seq 1 100); do
  ls "$KCR_DATA_DIR"/checkpoints/.partial-first-* >/dev/null 2>&1 && break
  sleep 0.05
done
# While the first checkpoint streams: an exec, a second checkpoint of another
# workload and a checkpoint of the same workload under a taken name.
"$KCR" exec demo other -- kcr-scenario membuf-probe >"$KCR_TEST_TMP/exec.out" 2>&1 &
exec_job=$!
"$KCR" checkpoint demo other -o second --leave-running >"$KCR_TEST_TMP/second.out" 2>&1 &
second=$!
wait $first
expect_eq "first checkpoint" "0" "$?"
wait $exec_job
expect_eq "exec during a checkpoint waits its turn" "0" "$?"
expect_eq "exec saw the untouched buffer" "$before" "$(cat "$KCR_TEST_TMP/exec.out")"
wait $second
expect_eq "second checkpoint waits its turn" "0" "$?"
expect_contains "first verifies" "is complete" "$(kcr checkpoints verify first)"
expect_contains "second verifies" "is complete" "$(kcr checkpoints verify second)"
expect_failure "same name again is refused" "already exists" kcr checkpoint demo big -o first

# vm stop while a checkpoint runs: it waits for the checkpoint, then stops.
"$KCR" checkpoint demo big -o third >"$KCR_TEST_TMP/third.out" 2>&1 &
third=$!
for _ in $(seq 1 100); do
  ls "$KCR_DATA_DIR"/checkpoints/.partial-third-* >/dev/null 2>&1 && break
  sleep 0.05
done
kcr -q vm stop demo
expect_eq "vm stop after the checkpoint" "0" "$?"
wait $third
expect_eq "the checkpoint vm stop waited for" "0" "$?"
expect_contains "third verifies" "is complete" "$(kcr checkpoints verify third)"
finish
