#!/usr/bin/env bash
# kcr image build --criu: a CRIU of the user's own goes into the image with its
# shared libraries, and kcr check, the image and every checkpoint name its
# version. "Their own" here is Debian's criu with its version string patched
# to 3.17.9, so the version proves which binary ran. Bad binaries are refused
# and leave no image behind.
source "$(dirname "$0")/lib.sh"

image=kcr-test-byo-$$
mine=$KCR_TEST_TMP/criu/criu
mkdir -p "$(dirname "$mine")"
python3 -c 'import sys; b=open("/usr/sbin/criu","rb").read(); assert b.count(b"3.17.1")==1; open(sys.argv[1],"wb").write(b.replace(b"3.17.1", b"3.17.9"))' "$mine" ||
  fail "patching criu"
chmod +x "$mine"
cleanup_image() { "$KCR" -q image rm "$image" >/dev/null 2>&1 || true; }
trap 'cleanup_image; cleanup' EXIT

out=$(kcr image build --name "$image" --criu "$mine" 2>&1)
expect_eq "image build --criu" "0" "$?"
expect_contains "the build names the CRIU" "CRIU 3.17.9" "$out"
expect_contains "image ls names it" '"criu_version":"3.17.9"' "$(kcr image ls --json)"

kcr -q vm start byo --image "$image" >/dev/null || fail "vm start"
expect_contains "kcr check in the VM names it" "3.17.9" "$(kcr check byo 2>&1)"
kcr run byo --name counter -- kcr-scenario counter --interval-ms 100 >/dev/null || fail "run"
wait_for "counter ready" 60 kcr exec byo counter -- kcr-scenario counter-probe
expect_true "checkpoint with the own CRIU" kcr -q checkpoint byo counter -o byo-1
expect_contains "the checkpoint names it" '"criu_version":"3.17.9"' "$(kcr checkpoints show byo-1 --json)"
expect_true "the own CRIU restores it" kcr -q restore byo byo-1
wait_for "counter counts on" 30 kcr exec byo counter -- kcr-scenario counter-probe

expect_failure "not an executable" "the CRIU binary $KCR_TEST_TMP/none is not an executable file" \
  kcr image build --name "$image-bad" --criu "$KCR_TEST_TMP/none"
expect_failure "not CRIU at all" "printed no CRIU version" \
  kcr image build --name "$image-bad" --criu /bin/true
expect_eq "no image left by a refused build" "" "$(kcr image ls | grep -- "$image-bad")"
finish
