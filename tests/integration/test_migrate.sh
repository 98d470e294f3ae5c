#!/usr/bin/env bash
# kcr migrate: workloads move into a fresh VM or a running one and keep their
# state; bad names are refused before anything is frozen; a destination that
# dies mid-restore loses nothing.
source "$(dirname "$0")/lib.sh"

# workload_state VM NAME: "running", "exited" or nothing.
workload_state() {
  kcr ps "$1" --json | grep -o "\"name\":\"$2\"[^}]*" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}
json_field() { sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[^,}]*\).*/\1/p" | tr -d '"'; }

kcr -q vm start demo >/dev/null || fail "vm start demo"
kcr run demo --name counter -- kcr-scenario counter --interval-ms 100 >/dev/null
kcr run demo --name buf -- kcr-scenario membuf --size 10M >/dev/null
kcr run demo --name pair -- kcr-scenario tcp-pair --port 9090 >/dev/null
wait_for "counter warm" 60 bash -c "[ \"\$($KCR exec demo counter -- kcr-scenario counter-probe)\" -ge 20 ]"
wait_for "membuf ready" 60 kcr exec demo buf -- kcr-scenario membuf-probe
wait_for "tcp pair ready" 60 kcr exec demo pair -- kcr-scenario tcp-pair-probe

# Bad input: refused with the reason, nothing frozen, no VM booted.
expect_failure "unknown VM" "no VM named 'nosuch'" kcr migrate nosuch counter
expect_failure "unknown workload" "no running workload named 'ghost' in VM 'demo'" \
  kcr migrate demo ghost
expect_failure "into itself" "where it already runs" kcr migrate demo counter --to demo
expect_failure "bad destination name" "is not valid" kcr migrate demo counter --to 'bad/name'
expect_eq "no VM was booted by bad input" "demo" "$(kcr vm ls --json | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ' | sed 's/ $//')"
expect_eq "counter still runs in demo" "running" "$(workload_state demo counter)"

# The counter moves to a fresh VM (demo-m1) and keeps counting from where it was.
out=$(kcr migrate demo counter --json)
expect_eq "counter migrate ok" "true" "$(echo "$out" | json_field ok)"
expect_eq "fresh VM name" "demo-m1" "$(echo "$out" | json_field to)"
expect_eq "fresh VM" "true" "$(echo "$out" | json_field fresh_vm)"
expect_eq "counter survived" "true" "$(echo "$out" | json_field survived)"
at=$(echo "$out" | json_field at_checkpoint)
downtime=$(echo "$out" | json_field downtime_seconds)
echo "counter migration: downtime ${downtime}s, counter at $at"
expect_true "downtime reported" awk -v d="$downtime" 'BEGIN { exit !(d > 0) }'
expect_true "counter was warm" test "$at" -ge 20
sleep 1
now=$(kcr exec demo-m1 counter -- kcr-scenario counter-probe)
expect_true "counter continues in demo-m1 ($at -> $now)" test "$now" -gt "$at"
expect_eq "counter ended in demo" "exited" "$(workload_state demo counter)"
expect_eq "checkpoint removed after success" "" "$(ls -A "$KCR_DATA_DIR/checkpoints" 2>/dev/null)"

# The 10 MB buffer is cloned into the running demo-m1: same checksum there,
# and the source keeps running (--keep-source); the checkpoint is kept.
sum=$(kcr exec demo buf -- kcr-scenario membuf-probe)
out=$(kcr migrate demo buf --to demo-m1 --keep-source --keep-checkpoint -o bufcp --json)
expect_eq "membuf migrate ok" "true" "$(echo "$out" | json_field ok)"
expect_eq "not a fresh VM" "false" "$(echo "$out" | json_field fresh_vm)"
expect_eq "source left running" "running" "$(echo "$out" | json_field source)"
expect_eq "same checksum in demo-m1" "$sum" "$(kcr exec demo-m1 buf -- kcr-scenario membuf-probe)"
expect_eq "same checksum in demo" "$sum" "$(kcr exec demo buf -- kcr-scenario membuf-probe)"
expect_true "checkpoint kept and complete" kcr -q checkpoints verify bufcp

# Same workload name in the destination: refused before anything is frozen.
expect_failure "name taken in destination" "already has a workload named 'buf'" \
  kcr migrate demo buf --to demo-m1
expect_eq "buf still runs in demo" "$sum" "$(kcr exec demo buf -- kcr-scenario membuf-probe)"

# An established TCP connection (both ends in one workload) keeps flowing.
out=$(kcr migrate demo pair --to demo-m1 --json)
expect_eq "tcp pair migrate ok" "true" "$(echo "$out" | json_field survived)"
wait_for "tcp pair answers in demo-m1" 20 kcr exec demo-m1 pair -- kcr-scenario tcp-pair-probe

# The destination dies in the middle of the restore: the source workload is
# resumed and the checkpoint stays, complete, in the store.
kcr -q vm start dst >/dev/null || fail "vm start dst"
dst_pid=$(kcr vm ls --json | grep -o '"name":"dst"[^}]*' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
kcr run demo --name big -- kcr-scenario membuf --size 100M >/dev/null
wait_for "big buffer ready" 120 kcr exec demo big -- kcr-scenario membuf-probe
big_sum=$(kcr exec demo big -- kcr-scenario membuf-probe)
kill_midway "restoring it in VM 'dst'" "$dst_pid" "$KCR" migrate demo big --to dst -o kept
if [ $rc -ne 0 ]; then pass; else fail "migrate succeeded although the destination was killed"; fi
expect_contains "clear error" "kcr: error: migration of workload 'big' failed" "$err"
expect_contains "says the source is safe" "the source workload is not lost" "$err"
expect_contains "names the checkpoint" "checkpoint 'kept' stays in the store" "$err"
expect_true "kept checkpoint is complete" kcr -q checkpoints verify kept
expect_eq "big buffer intact in demo" "$big_sum" "$(kcr exec demo big -- kcr-scenario membuf-probe)"
stopped=$(kcr exec demo big -- sh -c 'cat /proc/[0-9]*/stat' | awk '$3 == "T"' | wc -l)
expect_eq "no task of big left stopped" "0" "$stopped"
finish
