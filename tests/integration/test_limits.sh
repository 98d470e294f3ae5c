#!/usr/bin/env bash
# kcr run --memory and --pids-limit (podman's words): the workload runs in a
# cgroup v2 group of its own with those limits, kcr exec runs inside it, and
# the limits hold again after a restore in a fresh VM (CRIU 3.17 restores a
# cgroup v2 membership but none of the group's properties: kcr carries them).
source "$(dirname "$0")/lib.sh"

kcr -q vm start demo >/dev/null || fail "vm start"
expect_failure "a bad size" "--memory 'lots' is not a memory size" \
  kcr run demo --name bad --memory lots -- sleep 1
expect_failure "a size too small" "at least 4m" kcr run demo --name bad --memory 1m -- sleep 1
expect_failure "no pids limit of 0" "pids-limit" kcr run demo --name bad --pids-limit 0 -- sleep 1
kcr run demo --name lim --memory 64m --pids-limit 16 -- sleep 100000 >/dev/null || fail "run"

# check_limits VM NAME: the group's limits, that exec runs in it, and both enforced.
check_limits() {
  local vm=$1 name=$2 out
  expect_eq "$vm: exec runs in the workload's cgroup" "0::/kcr/$name" \
    "$(kcr exec "$vm" "$name" -- cat /proc/self/cgroup)"
  expect_eq "$vm: its init too" "0::/kcr/$name" "$(kcr exec "$vm" "$name" -- cat /proc/1/cgroup)"
  expect_eq "$vm: memory.max" "67108864" \
    "$(kcr exec "$vm" "$name" -- cat /sys/fs/cgroup/kcr/$name/memory.max)"
  expect_eq "$vm: pids.max" "16" "$(kcr exec "$vm" "$name" -- cat /sys/fs/cgroup/kcr/$name/pids.max)"
  out=$(kcr exec "$vm" "$name" -- sh -c 'for i in $(seq 20); do sleep 1 & done' 2>&1)
  expect_contains "$vm: the 17th process cannot fork" "can't fork" "$out"
  sleep 1.5
  kcr exec --timeout 60 "$vm" "$name" -- kcr-scenario membuf --size 100M >/dev/null 2>&1
  expect_eq "$vm: 100 MB in a 64 MB group is killed" "137" "$?"
  expect_contains "$vm: by the group's OOM killer" "oom_kill 1" \
    "$(kcr exec "$vm" "$name" -- cat /sys/fs/cgroup/kcr/$name/memory.events)"
  expect_contains "$vm: the workload itself lives on" "running" "$(kcr ps "$vm")"
}
check_limits demo lim

# A frozen cgroup (an engine freezes a container before its checkpoint): CRIU cannot seize
# frozen tasks, so kcr thaws it first (the Kata prototype's hazard). Frozen from outside it.
kcr run demo --name side -- sleep 100000 >/dev/null || fail "run side"
kcr exec demo side -- sh -c 'echo 1 >/sys/fs/cgroup/kcr/lim/cgroup.freeze' || fail "freeze"
wait_for "the group is frozen" 10 \
  sh -c "'$KCR' exec demo side -- grep -q 'frozen 1' /sys/fs/cgroup/kcr/lim/cgroup.events"
kcr -q checkpoint demo lim -o was-frozen --leave-running >/dev/null ||
  fail "checkpoint a workload of a frozen cgroup"
expect_eq "it was thawed for CRIU" "0" \
  "$(kcr exec demo side -- cat /sys/fs/cgroup/kcr/lim/cgroup.freeze)"
expect_contains "and runs" "running" "$(kcr ps demo | grep lim)"
kcr -q checkpoints rm was-frozen

kcr -q checkpoint demo lim -o limited || fail "checkpoint"
expect_true "the limits travel in the checkpoint" \
  test -s "$KCR_DATA_DIR/checkpoints/limited/images/kcr-limits.txt"
kcr -q vm start fresh >/dev/null || fail "vm start fresh"
kcr -q restore fresh limited --name lim2 || fail "restore"
check_limits fresh lim2
expect_eq "no group of the old name" "1" \
  "$(kcr exec fresh lim2 -- sh -c 'test -d /sys/fs/cgroup/kcr/lim; echo $?')"

# And in the same VM, restored twice under two names: two groups, each limited.
kcr -q restore demo limited --name a || fail "restore a"
kcr -q restore demo limited --name b || fail "restore b"
expect_eq "copy a in its own group" "0::/kcr/a" "$(kcr exec demo a -- cat /proc/1/cgroup)"
expect_eq "copy b in its own group" "0::/kcr/b" "$(kcr exec demo b -- cat /proc/1/cgroup)"
expect_eq "copy b limited" "16" "$(kcr exec demo b -- cat /sys/fs/cgroup/kcr/b/pids.max)"
finish
