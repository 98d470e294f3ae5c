#!/usr/bin/env bash
# kcr check reports CRIU's "Looks good." from inside the guest.
source "$(dirname "$0")/lib.sh"

# The agent runs criu check only when asked; vm start --json asks for its criu_ok.
json=$(kcr vm start demo --json) || fail "vm start"
expect_contains "vm start --json criu_ok" '"criu_ok":true' "$json"
expect_not_contains "no criu check before the first hello" "check ok" \
  "$(cat "$KCR_STATE_DIR/vms/demo/serial.log")"
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

# With a VM the host part checks what that VM needs: it runs already, so a
# missing default image is only a note. Without a VM it still fails the check.
{
  if [ -n "${KCR_CONFIG:-}" ]; then grep -v '^image:' "$KCR_CONFIG"; fi
  echo "image: nosuchimage"
} >"$KCR_TEST_TMP/noimage.yaml"
vm_image=$(kcr vm ls --json | sed -n 's/.*"name":"demo"[^}]*"image":"\([^"]*\)".*/\1/p')
expect_true "VM's image known" test -n "$vm_image"
out=$(KCR_CONFIG=$KCR_TEST_TMP/noimage.yaml kcr check demo)
expect_eq "check of a VM exits 0 without the default image" "0" "$?"
expect_contains "criu check output without the default image" "Looks good." "$out"
expect_contains "host part shows the VM's image" "guest image:   $vm_image (kernel" "$out"
expect_contains "missing default image noted" "default image: missing: guest image 'nosuchimage'" "$out"
json=$(KCR_CONFIG=$KCR_TEST_TMP/noimage.yaml kcr check demo --json)
expect_contains "check --json ok without the default image" '"ok":true' "$json"
KCR_CONFIG=$KCR_TEST_TMP/noimage.yaml kcr check >/dev/null
expect_eq "check without a VM fails on a missing default image" "1" "$?"
finish
