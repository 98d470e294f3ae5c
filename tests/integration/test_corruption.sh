#!/usr/bin/env bash
# A damaged checkpoint is refused before anything is sent to the guest, and
# the refusal names the file: one flipped byte in each of a real checkpoint's
# files, a truncated manifest.yaml, a manifest of format version 99. Each
# damage is made in a copy (same name, another data directory); the original
# still verifies and restores.
#
# "Before anything is sent": kcr --log-level debug logs every agent request;
# a refused restore must log no put_file, restore or drop_staging request,
# and the positive control (restoring the original) must log put_file.
source "$(dirname "$0")/lib.sh"

kcr -q vm start demo >/dev/null || fail "vm start"
kcr run demo --name w -- kcr-scenario membuf --size 1M >/dev/null
wait_for "membuf ready" 60 kcr exec demo w -- kcr-scenario membuf-probe
before=$(kcr exec demo w -- kcr-scenario membuf-probe)
kcr -q checkpoint demo w -o orig --leave-running >/dev/null || fail "checkpoint"
orig=$KCR_DATA_DIR/checkpoints/orig
expect_contains "the original verifies" "is complete" "$(kcr checkpoints verify orig 2>&1)"
ps_before=$(kcr ps demo --json)

bad_data=$KCR_TEST_TMP/bad
bad=$bad_data/checkpoints/orig
fresh_copy() {
  rm -rf "$bad_data"
  mkdir -p "$bad_data/checkpoints"
  cp -a "$orig" "$bad"
}

# refused WHAT NEEDLE...: restore of the damaged copy fails, stderr holds each
# NEEDLE, no request that carries the checkpoint reached the agent, and the VM
# runs no new workload.
refused() {
  local what=$1
  shift
  local out rc needle
  out=$(KCR_DATA_DIR=$bad_data "$KCR" -q --log-level debug restore demo orig --name restored 2>&1 >/dev/null)
  rc=$?
  last_out=$out
  if [ $rc -ne 0 ]; then pass; else fail "$what: restore succeeded"; fi
  expect_contains "$what: a kcr error" "kcr: error: " "$out"
  for needle in "$@"; do expect_contains "$what: names it" "$needle" "$out"; done
  if grep -Eq "agent request (put_file|restore|drop_staging|link)" <<<"$out"; then
    fail "$what: refused only after talking to the guest: $(grep 'agent request' <<<"$out" | tr '\n' ' ')"
  else
    pass
  fi
  expect_eq "$what: no new workload" "$ps_before" "$(kcr ps demo --json)"
}

# One flipped byte, in the middle of each file the manifest lists.
mapfile -t files < <(sed -n 's/^  - {path: \([^,]*\), size: \([0-9]*\),.*/\1 \2/p' "$orig/manifest.yaml")
if [ ${#files[@]} -ge 5 ]; then pass; else fail "the manifest lists only ${#files[@]} files"; fi
flipped=0
for entry in "${files[@]}"; do
  path=${entry% *}
  size=${entry#* }
  [ "$size" -gt 0 ] || continue
  fresh_copy
  at=$((size / 2))
  byte=$(od -An -tu1 -j "$at" -N1 "$bad/$path" | tr -d ' ')
  printf "$(printf '\\%03o' $((byte ^ 0x01)))" | dd of="$bad/$path" bs=1 seek="$at" conv=notrunc status=none
  if cmp -s "$orig/$path" "$bad/$path"; then fail "$path: the byte did not flip"; continue; fi
  refused "flipped byte in $path" "file $path"
  flipped=$((flipped + 1))
done
echo "flipped one byte in each of $flipped files"

# A truncated manifest: cut in the middle of a line, and after a whole line
# (the last file's entry gone: the YAML still parses).
lines=$(wc -l <"$orig/manifest.yaml")
fresh_copy
head -c $(($(stat -c %s "$orig/manifest.yaml") / 2)) "$orig/manifest.yaml" >"$bad/manifest.yaml"
refused "manifest cut mid-way" "manifest.yaml"
fresh_copy
head -n $((lines - 1)) "$orig/manifest.yaml" >"$bad/manifest.yaml"
refused "manifest cut after a line" "manifest.yaml" "is not listed"
expect_contains "manifest cut after a line: hint" "hint: " "$last_out"
fresh_copy
sed '/path: images\//q' "$orig/manifest.yaml" >"$bad/manifest.yaml"
refused "manifest cut after its first image" "manifest.yaml" "is not listed"

# A manifest of a format version this kcr does not read.
fresh_copy
sed -i 's/^format_version: .*/format_version: 99/' "$bad/manifest.yaml"
refused "format version 99" "manifest.yaml" "format version 99"
expect_contains "format version 99: hint" "hint: use the kcr version that wrote it" "$last_out"

# The original is untouched: it verifies, and restores (the positive control:
# a restore that uploads does log put_file).
expect_contains "the original still verifies" "is complete" "$(kcr checkpoints verify orig 2>&1)"
out=$(kcr -q --log-level debug restore demo orig --name restored 2>&1)
expect_eq "the original restores" "0" "$?"
expect_contains "a restore that uploads logs put_file" "agent request put_file" "$out"
expect_eq "the restored memory" "$before" "$(kcr exec demo restored -- kcr-scenario membuf-probe)"

kcr -q vm stop demo
finish
