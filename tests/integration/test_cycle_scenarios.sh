#!/usr/bin/env bash
# kcr cycle proves state survives checkpoint/restore in the guest: a counter
# (5 cycles in a row: session leaders and PID reuse hurt on repeats), a 10 MB
# buffer's checksum, a listening TCP socket, an established TCP connection.
source "$(dirname "$0")/lib.sh"

# The README's main command: a temporary VM, the counter, 3 cycles.
out=$(kcr cycle --json)
rc=$?
expect_eq "kcr cycle exit status" "0" "$rc"
expect_contains "kcr cycle ok" '"ok":true' "$out"
expect_eq "three cycles" "3" "$(grep -o '"survived":true' <<<"$out" | wc -l)"
expect_contains "cycle reports CRIU stats" '"frozen_time":' "$out"
# Every number in --json is a JSON number: the counter's readings too.
expect_eq "counter readings are JSON numbers" "6" \
  "$(grep -Eo '"(at_checkpoint|after_restore)":[0-9]+[,}]' <<<"$out" | wc -l)"
expect_eq "temporary VM removed" "[]" "$(kcr vm ls --json)"
expect_eq "cycle checkpoints removed" "[]" "$(kcr checkpoints ls --json)"

kcr -q vm start demo >/dev/null || fail "vm start"

kcr run demo --name counter -- kcr-scenario counter >/dev/null
kcr run demo --name membuf -- kcr-scenario membuf --size 10M >/dev/null
kcr run demo --name listener -- kcr-scenario tcp-listen --port 8080 >/dev/null
kcr run demo --name pair -- kcr-scenario tcp-pair --port 9090 >/dev/null
wait_for "counter ready" 30 kcr exec demo counter -- kcr-scenario counter-probe
wait_for "membuf ready" 60 kcr exec demo membuf -- kcr-scenario membuf-probe
wait_for "listener ready" 30 kcr exec demo listener -- kcr-scenario tcp-probe --port 8080
wait_for "pair ready" 30 kcr exec demo pair -- kcr-scenario tcp-pair-probe

for w in counter:5 membuf:3 listener:3 pair:3; do
  name=${w%%:*}
  n=${w##*:}
  out=$(kcr cycle --vm demo --workload "$name" --count "$n" --json)
  rc=$?
  expect_eq "$name: cycle exit status" "0" "$rc"
  expect_contains "$name: all cycles survived" '"ok":true' "$out"
  expect_eq "$name: $n cycles" "$n" "$(grep -o '"survived":true' <<<"$out" | wc -l)"
done

# After all that the workloads still answer and the counter kept counting.
expect_contains "ps after cycles" "running" "$(kcr ps demo | grep counter)"
c=$(kcr exec demo counter -- kcr-scenario counter-probe)
if [ "${c:-0}" -ge 5 ]; then pass; else fail "counter should have counted past 5, got '$c'"; fi

# A restored workload's log keeps its old lines and gets new ones.
logs=$(kcr logs demo counter)
expect_contains "log survives restore" "counter" "$logs"

finish
