#!/usr/bin/env bash
# checkpoint / restore / checkpoints: leave-running, clones, the store, and
# what must never happen: a damaged checkpoint restored, a failed checkpoint
# that loses the workload or leaves a partial checkpoint behind.
source "$(dirname "$0")/lib.sh"

kcr -q vm start demo >/dev/null || fail "vm start"
kcr run demo --name counter -- sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/c; echo tick $i; sleep 1; done' >/dev/null
wait_for "counter counts" 30 sh -c "[ \"\$(\"$KCR\" exec demo counter -- cat /tmp/c)\" -ge 2 ]"

# --leave-running: the workload keeps running, the checkpoint is restorable.
out=$(kcr checkpoint demo counter -o c1 --leave-running --print-stats)
expect_contains "checkpoint reports" "checkpoint 'c1'" "$out"
expect_contains "print-stats in podman's names" '"runtime_checkpoint_duration"' "$out"
expect_contains "print-stats frozen_time" '"frozen_time":' "$out"
at=$(kcr exec demo counter -- cat /tmp/c)
expect_contains "still running" "running" "$(kcr ps demo | grep '^counter ')"
sleep 2
later=$(kcr exec demo counter -- cat /tmp/c)
if [ "$later" -gt "$at" ]; then pass; else fail "left-running counter should keep counting: $at then $later"; fi

# the store
expect_contains "checkpoints ls" "c1" "$(kcr checkpoints ls)"
show=$(kcr checkpoints show c1)
expect_contains "show names the workload" "workload 'counter'" "$show"
expect_contains "show options" "leave-running" "$show"
expect_contains "verify" "complete" "$(kcr checkpoints verify c1)"
json=$(kcr checkpoints show c1 --json)
expect_contains "manifest has per-file digests" '"sha256":"' "$json"
expect_contains "manifest has CRIU version" '"criu_version":"3.' "$json"
expect_failure "duplicate checkpoint name" "a checkpoint named 'c1' already exists" kcr checkpoint demo counter -o c1

# restore as a clone next to the original; a name clash is refused
expect_failure "restore over a running name" "workload 'counter' already exists" kcr restore demo c1
kcr restore demo c1 --name clone >/dev/null || fail "restore as clone"
clone=$(kcr exec demo clone -- cat /tmp/c)
# the dump happened just before 'at' was read, so the clone starts at at-1 or later
if [ "${clone:-0}" -ge $((at - 1)) ]; then pass; else fail "clone counter $clone should continue from about $at"; fi
expect_contains "clone listed" "running" "$(kcr ps demo | grep '^clone ')"
expect_contains "clone's log carries the old lines" "tick 1" "$(kcr logs demo clone)"

# into a fresh VM: the workload's files (its private tmpfs) and log travel
# with the checkpoint
kcr -q vm start fresh >/dev/null || fail "start a second VM"
kcr restore fresh c1 >/dev/null || fail "restore into a fresh VM"
moved=$(kcr exec fresh counter -- cat /tmp/c)
if [ "${moved:-0}" -ge $((at - 1)) ]; then pass; else fail "counter in the fresh VM $moved should continue from about $at"; fi
expect_contains "log in the fresh VM keeps the old lines" "tick 1" "$(kcr logs fresh counter)"
sleep 1.5
later=$(kcr exec fresh counter -- cat /tmp/c)
if [ "${later:-0}" -gt "${moved:-0}" ]; then pass; else fail "counter in the fresh VM should keep counting: $moved then $later"; fi

# A workload in a user namespace of its own (root as host uid 100000) and a cgroup namespace
# moves too: its maps, its files' owners and its count come along, and it checkpoints again.
kcr run demo --name uns --uidmap 0:100000:65536 --cgroupns private -- sh -c 'i=0; touch /tmp/mine; while :; do i=$((i+1)); echo $i > /tmp/c; sleep 0.2; done' >/dev/null
wait_for "the userns counter counts" 30 sh -c "[ \"\$(\"$KCR\" exec demo uns -- cat /tmp/c 2>/dev/null)\" -ge 3 ]"
kcr checkpoint demo uns -o u1 >/dev/null || fail "checkpoint a userns workload"
uat=$(kcr checkpoints show u1 --json >/dev/null && echo ok)
expect_eq "the userns checkpoint is stored" "ok" "$uat"
kcr restore fresh u1 >/dev/null || fail "restore a userns workload into a fresh VM"
expect_eq "its uid_map came along" "0 100000 65536" \
  "$(kcr exec fresh uns -- cat /proc/2/uid_map | tr -s ' ' | sed 's/^ //')"
expect_eq "its file still belongs to its root" "0" "$(kcr exec fresh uns -- stat -c %u /tmp/mine)"
expect_eq "its cgroup namespace came along" "0::/" "$(kcr exec fresh uns -- cat /proc/2/cgroup)"
u1=$(kcr exec fresh uns -- cat /tmp/c)
sleep 1
u2=$(kcr exec fresh uns -- cat /tmp/c)
if [ "${u2:-0}" -gt "${u1:-0}" ] && [ "${u1:-0}" -ge 3 ]; then pass; else fail "userns counter should continue: $u1 then $u2"; fi
kcr checkpoint fresh uns -o u2 >/dev/null || fail "checkpoint the restored userns workload again"
kcr restore fresh u2 >/dev/null || fail "restore it again"
expect_eq "restored twice, still its map" "0 100000 65536" \
  "$(kcr exec fresh uns -- cat /proc/2/uid_map | tr -s ' ' | sed 's/^ //')"
kcr -q vm stop fresh

# the restored clone checkpoints again, now without --leave-running
kcr checkpoint demo clone -o c2 >/dev/null || fail "checkpoint of a restored workload"
expect_not_contains "clone gone after checkpoint" "running" "$(kcr ps demo | grep '^clone ' || true)"
kcr restore demo c2 >/dev/null || fail "restore c2"
expect_contains "clone back" "running" "$(kcr ps demo | grep '^clone ')"

# A damaged checkpoint is refused before anything is sent, and stays as it was.
kcr checkpoint demo counter -o c3 --leave-running >/dev/null || fail "checkpoint c3"
dir=$(kcr checkpoints show c3 --json | sed -n 's/.*"directory":"\([^"]*\)".*/\1/p')
img=$(ls "$dir"/images/pages-*.img | head -1)
printf 'X' | dd of="$img" bs=1 seek=0 conv=notrunc 2>/dev/null
before=$(find "$dir" -type f -exec sha256sum {} + | sort)
expect_failure "damaged checkpoint refused" "does not match its sha256 digest" kcr restore demo c3 --name damaged
after=$(find "$dir" -type f -exec sha256sum {} + | sort)
expect_eq "failed restore leaves the checkpoint untouched" "$before" "$after"
expect_eq "no half-restored workload" "" "$(kcr ps demo | grep '^damaged ' || true)"

# A CRIU failure shows CRIU's Error lines and keeps the full log; the workload
# keeps running and nothing is stored.
kcr run demo --name netns -- unshare -n sleep 1000 >/dev/null || fail "run netns workload"
expect_failure "criu dump failure" "Error (" kcr checkpoint demo netns -o bad
expect_contains "full CRIU log kept" "the full CRIU log is kept in" "$last_err"
log=$(sed -n 's/.*the full CRIU log is kept in \([^ ]*\.log\).*/\1/p' <<<"$last_err")
expect_true "kept log exists" test -s "$log"
expect_contains "failed workload still running" "running" "$(kcr ps demo | grep '^netns ')"
expect_failure "failed checkpoint stored nothing" "no checkpoint named 'bad'" kcr checkpoints show bad

# Full disk during the transfer: nothing partial, workload still running.
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$KCR_TEST_TMP/small"
  mount -t tmpfs -o size=1M tmpfs "$KCR_TEST_TMP/small"
  kcr run demo --name big -- kcr-scenario membuf --size 10M >/dev/null
  wait_for "membuf ready" 60 kcr exec demo big -- kcr-scenario membuf-probe
  KCR_DATA_DIR=$KCR_TEST_TMP/small expect_failure "disk full" "No space left on device" kcr checkpoint demo big -o full
  expect_eq "nothing partial on a full disk" "" "$(ls -A "$KCR_TEST_TMP/small/checkpoints" 2>/dev/null)"
  expect_contains "workload survives a failed checkpoint" "running" "$(kcr ps demo | grep '^big ')"
  expect_true "its memory is intact" kcr exec demo big -- kcr-scenario membuf-probe
  umount "$KCR_TEST_TMP/small"
else
  fail "the full-disk check needs root to mount a small tmpfs"
fi

kcr checkpoints rm c1 c2 c3 u1 u2 >/dev/null
expect_eq "checkpoints removed" "[]" "$(kcr checkpoints ls --json)"
# What kcr exec leaves running in the background belongs to the workload (a session of its
# own inside the workload's PID namespace): it is checkpointed and restored with it.
kcr run demo --name bg -- sleep 100000 >/dev/null || fail "run bg"
kcr exec demo bg -- sh -c 'sleep 100001 >/dev/null 2>&1 &' || fail "exec in the background"
expect_true "checkpoint with what exec left running" kcr -q checkpoint demo bg -o bg-1
expect_true "restore it" kcr -q restore demo bg-1 --name bg2
expect_eq "the background process came back too" "1" \
  "$(kcr exec demo bg2 -- ps -o args | grep -c '^sleep 100001$')"
finish
