#!/usr/bin/env bash
# The data directory on a filesystem too small for the checkpoint (an 8 MB
# tmpfs, a 32 MB workload): checkpoint and import fail with ENOSPC named and
# where, leave nothing partial and store nothing; the workload keeps running
# with its memory intact, and a checkpoint into a roomy data directory works.
source "$(dirname "$0")/lib.sh"

small=$KCR_TEST_TMP/small
mkdir -p "$small"
if ! why=$(mount -t tmpfs -o size=8m tmpfs "$small" 2>&1); then
  echo "SKIPPED: cannot mount a small tmpfs: $why"
  exit 77
fi
unmount_small() {
  umount "$small" 2>/dev/null
  cleanup
}
trap unmount_small EXIT

# Nothing on the small filesystem but the store's directory: no .partial-*,
# no lock, no checkpoint, and (a freed tmpfs) almost no space used.
nothing_partial() {
  local what=$1
  expect_eq "$what: no partial left" "" "$(ls -A "$small/checkpoints" 2>/dev/null)"
  local used
  used=$(df --output=used -k "$small" | tail -1 | tr -d ' ')
  if [ "${used:-0}" -lt 512 ]; then pass; else fail "$what: $used KiB still used on $small"; fi
}

# full WHAT NEEDLE KCR-ARGS...: kcr with the small data directory fails with
# NEEDLE and ENOSPC named with the store's path, leaves nothing partial and
# stores nothing, also once the next kcr command ran. Its stderr is in $out.
full() {
  local what=$1 needle=$2
  shift 2
  out=$(KCR_DATA_DIR=$small "$KCR" -q "$@" 2>&1 >/dev/null)
  if [ $? -ne 0 ]; then pass; else fail "$what into an 8 MB filesystem succeeded"; fi
  expect_contains "$what: a kcr error" "$needle" "$out"
  expect_contains "$what: the disk is full" "No space left on device" "$out"
  expect_contains "$what: names where" "$small/checkpoints" "$out"
  nothing_partial "$what"
  expect_eq "$what: nothing stored" "[]" "$(KCR_DATA_DIR=$small kcr checkpoints ls --json)"
  nothing_partial "$what, then kcr checkpoints ls"
}

kcr -q vm start demo >/dev/null || fail "vm start"
kcr run demo --name big -- kcr-scenario membuf --size 32M >/dev/null
wait_for "membuf ready" 120 kcr exec demo big -- kcr-scenario membuf-probe
before=$(kcr exec demo big -- kcr-scenario membuf-probe)
expect_contains "probe before" "ok " "$before"

# A checkpoint that does not fit.
full "checkpoint" "kcr: error: checkpoint of workload 'big' in VM 'demo' failed" \
  checkpoint demo big -o full
expect_contains "the workload still runs" "running" "$(kcr ps demo | grep -w big)"
expect_eq "its memory is unchanged" "$before" "$(kcr exec demo big -- kcr-scenario membuf-probe)"

# The same checkpoint into a roomy data directory.
out=$(kcr -q checkpoint demo big -o roomy --leave-running 2>&1)
expect_eq "checkpoint into a roomy data dir" "0" "$?"
expect_contains "it verifies" "is complete" "$(kcr checkpoints verify roomy 2>&1)"
expect_eq "still running after it" "$before" "$(kcr exec demo big -- kcr-scenario membuf-probe)"

# An import that does not fit: an uncompressed archive of ~32 MB.
archive=$KCR_TEST_TMP/roomy.tar
kcr -q checkpoints export roomy -o "$archive" --compress none >/dev/null || fail "export"
size=$(stat -c %s "$archive")
if [ "$size" -gt $((8 << 20)) ]; then pass; else fail "the archive has only $size bytes"; fi
full "import" "kcr: error: " checkpoints import "$archive"

# restore --import stores first: it fails the same way and sends no file.
full "restore --import" "kcr: error: " --log-level debug restore demo --import "$archive" --name again
expect_not_contains "restore --import sent no file" "agent request put_file" "$out"
expect_eq "no workload 'again'" "" "$(kcr ps demo | grep -w again)"

# The roomy store imports it under another name.
expect_true "import into a roomy data dir" kcr -q checkpoints import "$archive" --name roomy2
expect_contains "the import verifies" "is complete" "$(kcr checkpoints verify roomy2 2>&1)"

kcr -q vm stop demo
finish
