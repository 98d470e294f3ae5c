#!/usr/bin/env bash
# kcr killed in the middle of a checkpoint or a migration (an ssh session
# dropping, an OOM kill) loses nothing: the agent resumes a workload a
# checkpoint left stopped once the host is gone without deciding, and the next
# kcr command removes the partial checkpoint the dead kcr left, saying so.
# KCR_FAULT=POINT kills kcr with SIGKILL at a named point (core/fault.hpp).
source "$(dirname "$0")/lib.sh"

kcr -q vm start demo >/dev/null || fail "vm start"
kcr -q vm start dst >/dev/null || fail "vm start dst"
kcr run demo --name counter -- kcr-scenario counter --interval-ms 100 >/dev/null
wait_for "counter ready" 60 kcr exec demo counter -- kcr-scenario counter-probe
count() { kcr exec demo counter -- kcr-scenario counter-probe 2>/dev/null; }
state() { kcr ps demo --json | sed -n 's/.*"name":"counter"[^}]*"state":"\([a-z]*\)".*/\1/p'; }
# The counter runs on: it counts, and ps says running.
counts_on() {
  local what=$1 a b
  wait_for "$what: resumed" 20 test "$(state)" = running
  a=$(count)
  sleep 0.5
  b=$(count)
  if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ]; then pass; else fail "$what: counter stuck ($a -> $b)"; fi
}
partials() { ls -A "$KCR_DATA_DIR/checkpoints" 2>/dev/null | grep -c '^\.partial' || true; }

for point in checkpoint.during-transfer checkpoint.before-commit; do
  KCR_FAULT=$point "$KCR" checkpoint demo counter -o "c-$point" >/dev/null 2>&1
  expect_eq "$point: kcr was killed" "137" "$?"
  counts_on "$point"
  err=$(kcr checkpoints ls 2>&1 >/dev/null)
  expect_contains "$point: the next command says what it removed" "a checkpoint a killed kcr left unfinished" "$err"
  expect_eq "$point: no partial checkpoint left" "0" "$(partials)"
  expect_failure "$point: nothing stored" "no checkpoint named" kcr checkpoints show "c-$point"
done

# Killed after the checkpoint was stored but before the workload was ended:
# the checkpoint is complete and the workload runs on (nothing lost either way).
KCR_FAULT=checkpoint.after-commit "$KCR" checkpoint demo counter -o stored >/dev/null 2>&1
expect_eq "after-commit: kcr was killed" "137" "$?"
counts_on "after-commit"
expect_contains "after-commit: the checkpoint is complete" "is complete" "$(kcr checkpoints verify stored)"

# An injected failure instead of a kill: a clear error, the same guarantees.
expect_failure "injected failure" "injected fault at checkpoint.before-commit" \
  env KCR_FAULT=checkpoint.before-commit:fail "$KCR" checkpoint demo counter -o failed
counts_on "injected failure"
expect_eq "injected failure: no partial checkpoint" "0" "$(partials)"

# A migration killed after the source was frozen and dumped.
KCR_FAULT=migrate.after-dump "$KCR" migrate demo counter --to dst -o mig >/dev/null 2>&1
expect_eq "migrate after-dump: kcr was killed" "137" "$?"
counts_on "migrate after-dump"
expect_not_contains "no copy in the destination" '"name":"counter"' "$(kcr ps dst --json)"
expect_contains "its checkpoint is complete" "is complete" "$(kcr checkpoints verify mig)"

# Killed after a pre-copy round was staged, or after the VMs were linked for
# post-copy: the source never stopped for good.
for case in "migrate.after-pre-dump --pre-dump 1" "migrate.after-link --lazy-pages"; do
  point=${case%% *}
  KCR_FAULT=$point "$KCR" migrate demo counter --to dst -o "m-${point#migrate.}" ${case#* } >/dev/null 2>&1
  expect_eq "$point: kcr was killed" "137" "$?"
  counts_on "$point"
  expect_not_contains "$point: no copy in the destination" '"name":"counter"' "$(kcr ps dst --json)"
done

# Killed once the workload runs in the destination but before the source was
# ended: a copy too many, never a loss.
KCR_FAULT=migrate.before-ending-source "$KCR" migrate demo counter --to dst -o mig2 >/dev/null 2>&1
expect_eq "migrate before-ending-source: kcr was killed" "137" "$?"
counts_on "migrate before-ending-source"
expect_contains "the copy runs in the destination" '"state":"running"' "$(kcr ps dst --json)"

# A restore killed during the upload or just before CRIU: the checkpoint is
# untouched, no half-restored copy, the staging it left is dropped by the next
# command, and the same restore then works.
kcr -q checkpoint demo counter -o base --leave-running >/dev/null || fail "checkpoint base"
sums() { (cd "$KCR_DATA_DIR/checkpoints/base" && find . -type f -exec sha256sum {} + | sort); }
base_sums=$(sums)
for point in restore.during-upload restore.before-criu; do
  KCR_FAULT=$point "$KCR" restore dst base --name "r-${point#restore.}" >/dev/null 2>&1
  expect_eq "$point: kcr was killed" "137" "$?"
  expect_not_contains "$point: no half-restored copy" "\"name\":\"r-" "$(kcr ps dst --json)"
  expect_eq "$point: the checkpoint is untouched" "$base_sums" "$(sums)"
done
expect_contains "the agent dropped the staging a dead kcr left" "staging area(s) a gone host left" \
  "$(kcr vm console dst --log)"
kcr -q restore dst base --name again >/dev/null
expect_contains "the restore works afterwards" '"name":"again"' "$(kcr ps dst --json)"

# A cycle killed between its checkpoint and its restore: the checkpoint it
# stored is complete, so the workload can be restored from it.
kcr -q run demo --name tocycle -- kcr-scenario counter --interval-ms 100 >/dev/null
wait_for "tocycle ready" 60 kcr exec demo tocycle -- kcr-scenario counter-probe
KCR_FAULT=cycle.between-checkpoint-and-restore "$KCR" cycle --vm demo --workload tocycle --keep >/dev/null 2>&1
expect_eq "cycle: kcr was killed" "137" "$?"
kept=$(kcr checkpoints ls --json | grep -o '"name":"cycle-[0-9]*-1"' | cut -d'"' -f4)
expect_true "cycle: its checkpoint is kept" test -n "$kept"
if [ -n "$kept" ]; then
  expect_contains "cycle: it verifies" "is complete" "$(kcr checkpoints verify "$kept")"
  kcr -q restore demo "$kept" >/dev/null
  wait_for "cycle: the workload restores from it" 30 kcr exec demo tocycle -- kcr-scenario counter-probe
fi

kcr -q vm stop demo dst
finish
