#!/usr/bin/env bash
# kcr check reports CRIU's "Looks good." from inside the guest.
source "$(dirname "$0")/lib.sh"

kcr -q vm start demo >/dev/null || fail "vm start"
out=$(kcr check demo)
expect_eq "check exit status" "0" "$?"
expect_contains "criu check output" "Looks good." "$out"
release=$(kcr image ls --json | sed -n "s/.*\"name\":\"${KCR_TEST_IMAGE:-default}\"[^}]*\"kernel_release\":\"\([^\"]*\)\".*/\1/p")
expect_true "image's kernel release known" test -n "$release"
expect_contains "guest kernel reported" "guest kernel:  $release" "$out"
json=$(kcr check demo --json)
expect_contains "check --json ok" '"ok":true' "$json"
expect_contains "check --json criu" '"criu_ok":true' "$json"
expect_contains "host check" '"qemu":"QEMU emulator version' "$json"
finish
