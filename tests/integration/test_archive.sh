#!/usr/bin/env bash
# Checkpoint archives as podman writes them: kcr checkpoint --export, import
# into a fresh store, restore into a fresh VM and the counter counts on; the
# archive is a tar GNU tar lists, with checkpoint/ images crit decodes; a
# damaged archive is refused and stores nothing.
source "$(dirname "$0")/lib.sh"

kcr -q vm start demo >/dev/null || fail "vm start"
kcr run demo --name counter -- kcr-scenario counter --interval-ms 100 >/dev/null
wait_for "counter ready" 60 kcr exec demo counter -- kcr-scenario counter-probe
sleep 3
at=$(kcr exec demo counter -- kcr-scenario counter-probe)
archive=$KCR_TEST_TMP/counter.tar.zst
out=$(kcr checkpoint demo counter -o c1 --export "$archive" 2>&1)
expect_eq "checkpoint --export" "0" "$?"
expect_true "archive written" test -s "$archive"

# GNU tar's --zstd runs the zstd program; without it, list an uncompressed export.
listed=$archive
if ! command -v zstd >/dev/null; then
  echo "zstd not installed: listing an uncompressed export instead" >&2
  listed=$KCR_TEST_TMP/counter.tar
  kcr -q checkpoints export c1 -o "$listed" --compress none || fail "export --compress none"
fi
list=$(tar -a -tf "$listed")
expect_contains "tar lists checkpoint/" "checkpoint/" "$list"
expect_contains "tar lists the images" "checkpoint/inventory.img" "$list"
expect_contains "tar lists config.dump" "config.dump" "$list"
mkdir -p "$KCR_TEST_TMP/x"
tar -a -xf "$listed" -C "$KCR_TEST_TMP/x"
expect_contains "crit decodes an image from the archive" '"magic": "INVENTORY"' \
  "$(crit show "$KCR_TEST_TMP/x/checkpoint/inventory.img" 2>&1)"
expect_contains "verify checks an archive without importing" "c1" "$(kcr checkpoints verify "$archive" 2>&1)"

# Another machine: a fresh store and a fresh VM.
export KCR_DATA_DIR=$KCR_TEST_TMP/data2
kcr -q vm start fresh >/dev/null || fail "vm start fresh"
out=$(kcr restore fresh --import "$archive" 2>&1)
expect_eq "restore --import" "0" "$?"
wait_for "the counter runs in the fresh VM" 30 kcr exec fresh counter -- kcr-scenario counter-probe
n=$(kcr exec fresh counter -- kcr-scenario counter-probe)
if [ "${n:-0}" -ge "${at:-1}" ]; then pass; else fail "the counter went back from $at to $n"; fi
expect_contains "import stored it" "is complete" "$(kcr checkpoints verify c1)"

# A damaged archive: refused, nothing stored.
export KCR_DATA_DIR=$KCR_TEST_TMP/data3
head -c 20000 "$archive" >"$KCR_TEST_TMP/cut.tar.zst"
expect_failure "a truncated archive is refused" "kcr: error:" kcr checkpoints import "$KCR_TEST_TMP/cut.tar.zst"
expect_eq "nothing stored" "[]" "$(kcr checkpoints ls --json)"
expect_eq "no partial left" "" "$(ls -A "$KCR_DATA_DIR/checkpoints" 2>/dev/null | grep partial)"

kcr -q vm stop demo fresh
finish
