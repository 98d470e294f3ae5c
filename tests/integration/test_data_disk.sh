#!/usr/bin/env bash
# Checkpoint images through a VM's data disks (vm/data_disk.hpp): a checkpoint leaves the guest
# through out.img and a restore comes in through in.img, as --json's "channel" says, and both
# files are sparse again afterwards. A VM started with KCR_DATA_DISKS=0 has none and uses the
# agent's port; checkpoints move between the two kinds. The guest cannot write its in disk. Each
# range is given back once read, so a 128 MB checkpoint passes through a 72 MB state directory;
# a full one sends the bytes through the port instead: the checkpoint is still complete,
# verified and restorable, and the workload keeps running.
source "$(dirname "$0")/lib.sh"

blocks() { stat -c %b "$1"; }

kcr -q vm start dd --memory 768M || fail "vm start dd"
dir=$KCR_STATE_DIR/vms/dd
for f in out.img in.img; do
  expect_true "$f exists" test -f "$dir/$f"
  expect_eq "$f takes no space yet" "0" "$(blocks "$dir/$f")"
done
serial=$(cat "$dir/serial.log")
expect_contains "the guest found its out disk" "data disk kcr-out is /dev/vd" "$serial"
expect_contains "the guest found its in disk" "data disk kcr-in is /dev/vd" "$serial"

kcr run dd --name buf -- kcr-scenario membuf --size 64M >/dev/null
wait_for "membuf ready" 120 kcr exec dd buf -- kcr-scenario membuf-probe
# Only the host writes a restore's images: the in disk is read-only to the guest.
in_dev=$(sed -n 's/.*data disk kcr-in is \(\/dev\/vd[a-z]*\),.*/\1/p' <<<"$serial")
expect_contains "the in disk is a device" "/dev/vd" "$in_dev"
if kcr exec dd buf -- sh -c "echo x >$in_dev" >/dev/null 2>&1; then
  fail "the guest wrote its in disk"
else
  pass
fi
expect_eq "in.img untouched by the guest" "0" "$(blocks "$dir/in.img")"
before=$(kcr exec dd buf -- kcr-scenario membuf-probe)

j=$(kcr checkpoint dd buf -o c1 --leave-running --json) || fail "checkpoint through the disk"
expect_contains "checkpoint says it came through the disk" '"channel":"disk"' "$j"
expect_eq "out.img given back" "0" "$(blocks "$dir/out.img")"
expect_true "the checkpoint verifies" kcr -q checkpoints verify c1
expect_contains "checkpoints show says so too" '"channel":"disk"' "$(kcr checkpoints show c1 --json)"

kcr -q kill dd buf --signal KILL
wait_for "buf gone" 30 bash -c "! $KCR ps dd | grep -q '^buf .*running'"
j=$(kcr restore dd c1 --json) || fail "restore through the disk"
expect_contains "restore says it went in through the disk" '"channel":"disk"' "$j"
expect_eq "in.img given back" "0" "$(blocks "$dir/in.img")"
expect_eq "memory intact after the disk round trip" "$before" \
  "$(kcr exec dd buf -- kcr-scenario membuf-probe)"

# A VM without data disks: the port, both ways, and checkpoints move between the two kinds.
KCR_DATA_DISKS=0 kcr -q vm start pp --memory 768M || fail "vm start pp"
expect_true "a port-only VM has no data disks" test ! -e "$KCR_STATE_DIR/vms/pp/out.img"
j=$(kcr migrate dd buf --to pp --json) || fail "migrate dd -> pp: $j"
expect_contains "migrate into the port-only VM survives" '"survived":true' "$j"
expect_eq "memory intact in pp" "$before" "$(kcr exec pp buf -- kcr-scenario membuf-probe)"
j=$(kcr checkpoint pp buf -o c2 --leave-running --json) || fail "checkpoint through the port"
expect_contains "the port-only VM checkpoints through the port" '"channel":"port"' "$j"
j=$(kcr restore dd c2 --name back --json) || fail "restore c2 into dd"
expect_contains "a port checkpoint restores through the disk" '"channel":"disk"' "$j"
expect_eq "memory intact in dd" "$before" "$(kcr exec dd back -- kcr-scenario membuf-probe)"
kcr -q vm stop pp

# The state directory on a 72 MB filesystem: each range the host read is given back at once,
# so a 128 MB checkpoint passes through it, and a restore holds at most four 16 MiB pieces there. Once that filesystem is full, the guest's writes to
# out.img fail (an I/O error, reported to the guest, not a paused VM) and the rest goes through
# the port.
small=$KCR_TEST_TMP/small
mkdir -p "$small"
if ! why=$(mount -t tmpfs -o size=72m tmpfs "$small" 2>&1); then
  fail "cannot mount a small tmpfs: $why"
  finish
fi
unmount_small() {
  KCR_STATE_DIR=$small "$KCR" -q vm stop full >/dev/null 2>&1
  umount "$small" 2>/dev/null
  cleanup
}
trap unmount_small EXIT
ks() { KCR_STATE_DIR=$small "$KCR" "$@"; }
ks -q vm start full --memory 768M || fail "vm start with a small state directory"
ks run full --name buf -- kcr-scenario membuf --size 128M >/dev/null
wait_for "membuf ready in full" 120 ks exec full buf -- kcr-scenario membuf-probe
before=$(ks exec full buf -- kcr-scenario membuf-probe)
j=$(ks checkpoint full buf -o c4 --leave-running --json) || fail "checkpoint through 72 MB: $j"
expect_contains "128 MB through a 72 MB state directory, by the disk" '"channel":"disk"' "$j"
expect_true "that checkpoint verifies" kcr -q checkpoints verify c4
j=$(ks restore full c4 --name b4 --json) || fail "restore through 72 MB: $j"
expect_contains "128 MB back through a 72 MB state directory, by the disk" '"channel":"disk"' "$j"
expect_eq "memory intact in the copy" "$before" "$(ks exec full b4 -- kcr-scenario membuf-probe)"
ks -q kill full b4 --signal KILL
# Fill the small filesystem to the last block, so every write into the disks fails. (Leaving a
# few MB would not do: chunks are given back as soon as they are read, and a chunk streamed beside
# the dump can be small enough to fit.)
head -c 80M /dev/zero >"$small/filler" 2>/dev/null
j=$(ks checkpoint full buf -o c3 --leave-running --json) || fail "checkpoint with a full host disk: $j"
expect_contains "a full host disk sends the images through the port" '"channel":"port"' "$j"
expect_true "the port's checkpoint verifies" kcr -q checkpoints verify c3
expect_eq "the workload kept running" "$before" "$(ks exec full buf -- kcr-scenario membuf-probe)"
ks -q kill full buf --signal KILL
wait_for "buf gone in full" 30 bash -c "! KCR_STATE_DIR=$small $KCR ps full | grep -q '^buf .*running'"
j=$(ks restore full c3 --json) || fail "restore with a full host disk: $j"
expect_contains "a full host disk sends a restore through the port" '"channel":"port"' "$j"
expect_eq "memory intact after the port fallback" "$before" \
  "$(ks exec full buf -- kcr-scenario membuf-probe)"
rm -f "$small/filler"
ks -q vm stop full

kcr -q vm stop dd
finish
