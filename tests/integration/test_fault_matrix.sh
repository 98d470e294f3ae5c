#!/usr/bin/env bash
# The fault matrix (issue #11): for every named fault point (core/fault.hpp,
# ARCHITECTURE.md "Faults and what the user sees"), the operation fails with a
# clear error, and afterwards the store holds only complete checkpoints that
# verify (no .partial-* once a next command ran), the source workload counts
# on, the destination runs no copy, no QEMU is left but the VMs' own, and every
# VM's lock is free. Host points fire through KCR_FAULT=POINT:kill|fail; agent
# points through KCR_AGENT_FAULT=POINT:ACTION at vm start (kcr.fault= on the
# guest's kernel command line, each point once per boot, so one VM carries
# several). test_interrupted.sh kills kcr at the older host points;
# test_checkpoint_faults.sh kills QEMU mid-checkpoint; neither is repeated here.
# KCR_FAULT_MATRIX=full (scripts/faults) adds the agent's `stall` (5+ min:
# past the host's 300 s stream timeout).
source "$(dirname "$0")/lib.sh"
full=$([ "${KCR_FAULT_MATRIX:-}" = full ] && echo 1 || echo 0)

KCR_AGENT_FAULT=checkpoint.agent-stream:enospc,pre-dump.agent-stream:eio,lazy.agent-stream:enospc \
  kcr -q vm start src >/dev/null || fail "vm start src"
KCR_AGENT_FAULT=restore.agent-put-file:enospc,restore.agent-before-criu:eio,restore.agent-after-criu:eio,lazy.agent-page-server:enospc \
  kcr -q vm start dst >/dev/null || fail "vm start dst"
kcr run src --name counter -- kcr-scenario counter --interval-ms 100 >/dev/null
wait_for "counter ready" 60 kcr exec src counter -- kcr-scenario counter-probe

count() { kcr exec "$1" "$2" -- kcr-scenario counter-probe 2>/dev/null; }
state() { kcr ps "$1" --json | sed -n "s/.*\"name\":\"$2\"[^}]*\"state\":\"\\([a-z]*\\)\".*/\\1/p"; }
partials() { ls -A "$KCR_DATA_DIR/checkpoints" 2>/dev/null | grep -c '^\.partial' || true; }

# The source workload runs on with its state: running, and counting up.
source_ok() {
  local what=$1 a b
  wait_for "$what: source running" 20 test "$(state src counter)" = running
  a=$(count src counter)
  sleep 0.5
  b=$(count src counter)
  if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ]; then pass; else fail "$what: counter stuck ($a -> $b)"; fi
}

# After the next kcr command: no partial, and every stored checkpoint verifies.
store_ok() {
  local what=$1 name
  kcr checkpoints ls >/dev/null 2>&1 || fail "$what: checkpoints ls"
  expect_eq "$what: no partial checkpoint" "0" "$(partials)"
  for name in $(kcr checkpoints ls --json | grep -o '"name":"[^"]*"' | cut -d'"' -f4); do
    expect_contains "$what: $name verifies" "is complete" "$(kcr checkpoints verify "$name" 2>&1)"
  done
}

# Nothing left behind: only the VMs in $vms have a QEMU, their locks are free,
# and the destination runs nothing.
vms="src dst"
procs_ok() {
  local what=$1 vm n=0
  for vm in $vms; do
    n=$((n + 1))
    expect_true "$what: $vm's lock is free" flock -n "$KCR_STATE_DIR/vms/$vm/lock" true
  done
  expect_eq "$what: QEMU processes" "$n" "$(qemu_pids | wc -w)"
  expect_not_contains "$what: no copy in the destination" '"state":"running"' "$(kcr ps dst --json)"
}

# row SIDE POINT ACTION NEEDLE KCR-ARGS...: runs kcr with the fault (host) or
# in a VM that carries it (agent), checks the failure: killed (137) for
# `kill`, else a non-zero exit and a "kcr: error:" line containing NEEDLE.
row() {
  local side=$1 point=$2 action=$3 needle=$4
  shift 4
  what="$point:$action"
  local env_args=(env)
  [ "$side" = host ] && env_args=(env "KCR_FAULT=$point:$action")
  local started=$SECONDS
  "${env_args[@]}" "$KCR" -q "$@" >"$KCR_TEST_TMP/row.out" 2>"$KCR_TEST_TMP/row.err"
  local rc=$?
  err=$(cat "$KCR_TEST_TMP/row.err")
  if [ "$action" = kill ]; then
    expect_eq "$what: kcr was killed" "137" "$rc"
  else
    if [ $rc -ne 0 ] && [ $rc -ne 137 ]; then pass; else fail "$what: exit $rc, expected an error"; fi
    expect_contains "$what: an error line" "kcr: error: " "$err"
    expect_contains "$what: says what failed" "$needle" "$err"
  fi
  echo "  $what: $((SECONDS - started)) s: $(grep -m1 'kcr: error:' <<<"$err")" >&2
}

# Agent points, in the order their one-shot faults fire.
row agent checkpoint.agent-stream enospc "No space left on device" checkpoint src counter -o c-stream
source_ok "$what"
store_ok "$what"
procs_ok "$what"

kcr -q checkpoint src counter -o base --leave-running >/dev/null || fail "checkpoint base"
sums() { (cd "$KCR_DATA_DIR/checkpoints/base" && find . -type f -exec sha256sum {} + | sort); }
base_sums=$(sums)
for case in restore.agent-put-file:enospc:"not enough space" \
  restore.agent-before-criu:eio:"Input/output error" \
  restore.agent-after-criu:eio:"Input/output error"; do
  IFS=: read -r point action needle <<<"$case"
  row agent "$point" "$action" "$needle" restore dst base --name "r-${point#restore.}"
  expect_eq "$what: the checkpoint is untouched" "$base_sums" "$(sums)"
  store_ok "$what"
  procs_ok "$what"
done
source_ok "restores"

row agent pre-dump.agent-stream eio "Input/output error" migrate src counter --to dst -o m-pre --pre-dump 1
source_ok "$what"
store_ok "$what"
procs_ok "$what"
for point in lazy.agent-stream lazy.agent-page-server; do
  row agent "$point" enospc "No space left on device" migrate src counter --to dst -o "m-${point#lazy.}" --lazy-pages
  source_ok "$what"
  store_ok "$what"
  procs_ok "$what"
done

# Host points: archives. A failed export writes no archive and leaves no
# temporary file; a killed one leaves its .partial-* beside, never the archive.
kcr -q checkpoints export base -o "$KCR_TEST_TMP/base.tar.zst" || fail "export base"
mkdir -p "$KCR_TEST_TMP/out"
for point in archive.export-during-write archive.export-before-rename; do
  for action in fail kill; do
    row host "$point" "$action" "injected fault at $point" checkpoints export base -o "$KCR_TEST_TMP/out/x.tar.zst"
    expect_true "$what: no archive" test ! -e "$KCR_TEST_TMP/out/x.tar.zst"
    if [ "$action" = fail ]; then
      expect_eq "$what: no temporary file" "" "$(ls -A "$KCR_TEST_TMP/out")"
    fi
    rm -f "$KCR_TEST_TMP"/out/.partial-*
    store_ok "$what"
  done
done
for point in archive.import-during-read archive.import-before-commit; do
  for action in fail kill; do
    row host "$point" "$action" "injected fault at $point" checkpoints import "$KCR_TEST_TMP/base.tar.zst" --name imp
    store_ok "$what"
    expect_failure "$what: nothing imported" "no checkpoint named 'imp'" kcr checkpoints show imp
  done
done
kcr -q checkpoints import "$KCR_TEST_TMP/base.tar.zst" --name imp >/dev/null
expect_contains "import works afterwards" "is complete" "$(kcr checkpoints verify imp 2>&1)"

# Restored, kcr not done: the copy runs in the VM (what the user asked for),
# whether kcr died or failed; nothing else is left.
for action in kill fail; do
  row host restore.after-criu "$action" "injected fault at restore.after-criu" restore dst base --name "ac-$action"
  wait_for "$what: the restored copy runs" 20 kcr exec dst "ac-$action" -- kcr-scenario counter-probe
  kcr kill dst "ac-$action" -s KILL >/dev/null
  wait_for "$what: the copy ended" 20 test "$(state dst "ac-$action")" != running
  store_ok "$what"
  procs_ok "$what"
done

# The older host points with `fail` (test_interrupted.sh kills kcr at each).
host_fail=(restore.during-upload:restore restore.before-criu:restore migrate.after-dump:migrate
  checkpoint.during-transfer:checkpoint checkpoint.before-commit:checkpoint
  migrate.after-pre-dump:migrate-pre migrate.after-link:migrate-lazy)
for case in "${host_fail[@]}"; do
  point=${case%%:*}
  case ${case#*:} in
    checkpoint) args=(checkpoint src counter -o "f-$point") ;;
    restore) args=(restore dst base --name f-restore) ;;
    migrate) args=(migrate src counter --to dst -o "f-$point") ;;
    migrate-pre) args=(migrate src counter --to dst -o "f-$point" --pre-dump 1) ;;
    migrate-lazy) args=(migrate src counter --to dst -o "f-$point" --lazy-pages) ;;
  esac
  row host "$point" fail "injected fault at $point" "${args[@]}"
  source_ok "$what"
  store_ok "$what"
  procs_ok "$what"
done

# The destination's QEMU killed (kill-qemu=dst) at each step of a migration or
# a restore: a clear error, the source runs on, the checkpoint is untouched.
lost="the source workload is not lost"
for case in restore.during-upload:restore:"the checkpoint is unchanged" \
  restore.before-criu:restore:"the checkpoint is unchanged" \
  migrate.after-dump:migrate:"$lost" migrate.after-pre-dump:migrate-pre:"$lost" \
  migrate.after-link:migrate-lazy:"$lost"; do
  IFS=: read -r point kind needle <<<"$case"
  case $kind in
    restore) args=(restore dst base --name q-restore) ;;
    migrate) args=(migrate src counter --to dst -o "q-$point") ;;
    migrate-pre) args=(migrate src counter --to dst -o "q-$point" --pre-dump 1) ;;
    migrate-lazy) args=(migrate src counter --to dst -o "q-$point" --lazy-pages) ;;
  esac
  row host "$point" kill-qemu=dst "$needle" "${args[@]}"
  expect_eq "$what: the checkpoint is untouched" "$base_sums" "$(sums)"
  wait_for "$what: dst's QEMU is gone" 20 test -z "$(pgrep -f -- "$KCR_STATE_DIR/vms/dst/")"
  vms=src
  source_ok "$what"
  store_ok "$what"
  for vm in $vms; do
    expect_true "$what: $vm's lock is free" flock -n "$KCR_STATE_DIR/vms/$vm/lock" true
  done
  expect_true "$what: dst's lock is free" flock -n "$KCR_STATE_DIR/vms/dst/lock" true
  expect_eq "$what: QEMU processes" "1" "$(qemu_pids | wc -w)"
  kcr -q vm stop dst >/dev/null 2>&1
  kcr -q vm start dst >/dev/null || fail "$what: dst starts again"
  vms="src dst"
done

# The agent exits (PID 1: the guest panics, QEMU exits): a clear error, no
# QEMU, no partial, the lock free and the name reusable once stopped.
exit_points=(checkpoint.agent-stream restore.agent-put-file restore.agent-before-criu
  restore.agent-after-criu)
for point in "${exit_points[@]}"; do
  KCR_AGENT_FAULT=$point:exit kcr -q vm start x >/dev/null || fail "vm start x"
  if [ "$point" = checkpoint.agent-stream ]; then
    kcr -q run x --name counter -- kcr-scenario counter --interval-ms 100 >/dev/null
    wait_for "x: counter ready" 60 kcr exec x counter -- kcr-scenario counter-probe
    row agent "$point" exit "the agent channel closed" checkpoint x counter -o x-stream
  else
    # Nothing else runs in x: the restored tree takes the pids it had in src.
    row agent "$point" exit "the agent channel closed" restore x base --name x-r
  fi
  wait_for "$what: QEMU of x is gone" 20 test -z "$(pgrep -f -- "$KCR_STATE_DIR/vms/x/")"
  expect_true "$what: x's lock is free" flock -n "$KCR_STATE_DIR/vms/x/lock" true
  store_ok "$what"
  procs_ok "$what"
  kcr -q vm stop x >/dev/null 2>&1
  expect_not_contains "$what: x is gone after vm stop" '"name":"x"' "$(kcr vm ls --json)"
done

# Post-copy with the workload running in the destination and its memory still
# coming from the source. kcr failing there: the copy is killed, the source's
# CRIU ended, which resumes it.
row host migrate.during-memory fail "injected fault at migrate.during-memory" \
  migrate src counter --to dst -o m-mem-fail --lazy-pages
source_ok "$what"
store_ok "$what"
procs_ok "$what"
# kcr killed there: nothing decides against the migration, so it completes on
# its own: the copy counts on in the destination, the source has ended.
row host migrate.during-memory kill "" migrate src counter --to dst -o m-mem-kill --lazy-pages
wait_for "$what: the copy counts in the destination" 30 kcr exec dst counter -- kcr-scenario counter-probe
wait_for "$what: the source has ended" 30 test "$(state src counter)" != running
a=$(count dst counter)
sleep 0.5
expect_true "$what: the copy counts on" test "$(count dst counter)" -gt "${a:-0}"
store_ok "$what"
for vm in src dst; do
  expect_true "$what: $vm's lock is free" flock -n "$KCR_STATE_DIR/vms/$vm/lock" true
done
kcr kill dst counter -s KILL >/dev/null
wait_for "$what: the copy ended" 20 test "$(state dst counter)" != running
# The source's QEMU killed there: the memory is gone with it, and so is the
# copy that needed it (post-copy's one loss, by design): nothing half-restored.
kcr run src --name c2 -- kcr-scenario counter --interval-ms 100 >/dev/null
wait_for "c2 ready" 60 kcr exec src c2 -- kcr-scenario counter-probe
row host migrate.during-memory kill-qemu=src "is gone, and the workload's memory with it" \
  migrate src c2 --to dst -o m-mem-qemu --lazy-pages
wait_for "$what: src's QEMU is gone" 20 test -z "$(pgrep -f -- "$KCR_STATE_DIR/vms/src/")"
vms=dst
store_ok "$what"
procs_ok "$what"
kcr -q vm stop src >/dev/null 2>&1

# The agent stalls past the host's 300 s stream timeout: the host gives up
# with a clear error and the agent, once awake, resumes the workload.
if [ "$full" = 1 ]; then
  KCR_AGENT_FAULT=checkpoint.agent-stream:stall kcr -q vm start x >/dev/null || fail "vm start x"
  vms="dst x"
  kcr -q run x --name counter -- kcr-scenario counter --interval-ms 100 >/dev/null
  wait_for "x: counter ready" 60 kcr exec x counter -- kcr-scenario counter-probe
  row agent checkpoint.agent-stream stall "did not answer in time" checkpoint x counter -o x-stall
  wait_for "$what: resumed after the stall" 60 test "$(state x counter)" = running
  store_ok "$what"
  procs_ok "$what"
  kcr -q vm stop x
  vms=dst
fi

kcr -q vm stop dst
finish
