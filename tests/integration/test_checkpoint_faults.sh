#!/usr/bin/env bash
# QEMU dying in the middle of a checkpoint: a clear error, nothing in the store.
source "$(dirname "$0")/lib.sh"

kcr -q vm start demo >/dev/null || fail "vm start"
kcr run demo --name big -- kcr-scenario membuf --size 100M >/dev/null
wait_for "membuf ready" 120 kcr exec demo big -- kcr-scenario membuf-probe
pid=$(kcr vm ls --json | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')

"$KCR" checkpoint demo big -o doomed >"$KCR_TEST_TMP/out" 2>"$KCR_TEST_TMP/err" &
cp=$!
# kill QEMU while images are in flight
for _ in $(seq 1 100); do
  ls "$KCR_DATA_DIR"/checkpoints/.partial-doomed-*/images/pages-*.img >/dev/null 2>&1 && break
  sleep 0.1
done
kill -9 "$pid"
wait $cp
rc=$?
err=$(cat "$KCR_TEST_TMP/err")
if [ $rc -ne 0 ]; then pass; else fail "checkpoint succeeded although QEMU was killed"; fi
expect_contains "clear error" "kcr: error: checkpoint of workload 'big' in VM 'demo' failed" "$err"
expect_eq "nothing in the store" "" "$(ls -A "$KCR_DATA_DIR/checkpoints" 2>/dev/null)"
expect_failure "no checkpoint" "no checkpoint named 'doomed'" kcr checkpoints show doomed
finish
