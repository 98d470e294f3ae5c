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

# Killed once the workload runs in the destination but before the source was
# ended: a copy too many, never a loss.
KCR_FAULT=migrate.before-ending-source "$KCR" migrate demo counter --to dst -o mig2 >/dev/null 2>&1
expect_eq "migrate before-ending-source: kcr was killed" "137" "$?"
counts_on "migrate before-ending-source"
expect_contains "the copy runs in the destination" '"state":"running"' "$(kcr ps dst --json)"

kcr -q vm stop demo dst
finish
