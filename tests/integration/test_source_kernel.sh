#!/usr/bin/env bash
# The guest kernel kcr builds from Debian's linux-source (everything built in, booted
# through its PVH entry) does what Debian's does: criu check, counter and TCP cycles.
# Skipped (exit 77) when no source kernel is built: building one takes ~11 minutes on 2
# cores (scripts/build-source-kernel.sh, or scripts/test.sh with KCR_TEST_SOURCE_KERNEL=1).
source "$(dirname "$0")/lib.sh"

if ! why=$(kcr image check-kernel --source 2>&1 >/dev/null); then
  echo "SKIPPED: ${why#kcr: error: }"
  exit 77
fi

image=${KCR_SOURCE_IMAGE:-source}
out=$(kcr image build --kernel source --name "$image" 2>&1)
expect_eq "image build exit status" "0" "$?"
expect_contains "source image built" "(source)" "$out"
ls_json=$(kcr image ls --json)
expect_contains "image ls flavor" '"kernel_flavor":"source"' "$ls_json"
expect_contains "boots the uncompressed kernel" "/images/$image/vmlinux\"" "$ls_json"

out=$(kcr image check-kernel --image "$image")
expect_eq "check-kernel exit status" "0" "$?"
expect_contains "everything built in" "present (all built in)" "$out"

kcr -q vm start sk --image "$image" >/dev/null || fail "vm start"
out=$(kcr check sk)
expect_eq "check exit status" "0" "$?"
expect_contains "criu check output" "Looks good." "$out"
expect_contains "guest kernel is kcr's" "-kcr" "$out"
serial=$(kcr vm console sk --log)
expect_not_contains "no modules to load" "loading kernel modules" "$serial"

# A workload does not migrate between guests whose kernels differ, unless --force:
# refused before anything is frozen.
kcr -q image build --kernel debian --name debian >/dev/null || fail "debian image build"
kcr -q vm start dk --image debian >/dev/null || fail "vm start dk"
kcr run dk --name counter -- kcr-scenario counter >/dev/null
wait_for "counter runs in dk" 60 kcr exec dk counter -- kcr-scenario counter-probe
expect_failure "migrate across kernels refused" "runs a different guest" \
  kcr migrate dk counter --to sk
expect_contains "the reason names both kernels" "kernel 6.1.0" "$last_err"
expect_contains "the hint names --force" "--force" "$last_err"
before=$(kcr exec dk counter -- kcr-scenario counter-probe)
sleep 1
after=$(kcr exec dk counter -- kcr-scenario counter-probe)
expect_true "the counter kept running in dk ($before -> $after)" test "$after" -gt "$before"
kcr -q vm stop sk dk || fail "vm stop"

out=$(kcr cycle --image "$image" --count 3)
expect_eq "counter cycle exit status" "0" "$?"
expect_eq "three cycles survived" "3" "$(grep -c ' yes$' <<<"$out")"
out=$(kcr cycle --image "$image" --scenario tcp-established --count 1)
expect_eq "tcp-established cycle exit status (nftables lock)" "0" "$?"
expect_contains "tcp-established survived" " yes" "$out"
finish
