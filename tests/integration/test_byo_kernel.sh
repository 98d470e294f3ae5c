#!/usr/bin/env bash
# kcr image build --kernel-image/--kernel-config[/--kernel-modules]: a kernel of
# the user's own. "Their own" here is Debian's cloud kernel unpacked as a
# kernel build leaves it (bzImage, .config, modules_install tree): the image
# boots it and cycles a workload. A config that lacks what kcr needs, or needs
# modules nobody gave, is refused naming the options, and leaves no image.
source "$(dirname "$0")/lib.sh"

deb=$(ls /var/cache/kcr/downloads/linux-image-*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then
  echo "SKIPPED: no Debian kernel package in /var/cache/kcr/downloads (kcr image build fetches it)"
  exit 77
fi
tree=$KCR_TEST_TMP/kernel
dpkg-deb -x "$deb" "$tree" || fail "unpack $deb"
image=$(ls "$tree"/boot/vmlinuz-* | head -1)
config=$(ls "$tree"/boot/config-* | head -1)
release=${image##*/vmlinuz-}
name=kcr-test-byok-$$
trap '"$KCR" -q image rm "$name" >/dev/null 2>&1; cleanup' EXIT

expect_failure "modules needed but not given" "has options kcr needs as modules, and no modules were given" \
  kcr image build --name "$name" --kernel-image "$image" --kernel-config "$config"
expect_contains "the refusal names them" "CONFIG_VIRTIO_CONSOLE" "$last_err"
grep -v '^CONFIG_CHECKPOINT_RESTORE=' "$config" >"$KCR_TEST_TMP/no-cr.config"
expect_failure "a config without checkpoint/restore" "lacks options kcr needs" \
  kcr image build --name "$name" --kernel-image "$image" --kernel-config "$KCR_TEST_TMP/no-cr.config" \
  --kernel-modules "$tree"
expect_contains "the refusal names it" "CHECKPOINT_RESTORE" "$last_err"
expect_failure "not a kernel" "cannot find the kernel's release in /bin/true" \
  kcr image build --name "$name" --kernel-image /bin/true --kernel-config "$config"
expect_failure "an image without its config" "needs both --kernel-image and --kernel-config" \
  kcr image build --name "$name" --kernel-image "$image"
expect_failure "modules of another kernel" "no modules of kernel $release in $KCR_TEST_TMP" \
  kcr image build --name "$name" --kernel-image "$image" --kernel-config "$config" --kernel-modules "$KCR_TEST_TMP"
expect_eq "no image left by a refused build" "" "$(kcr image ls | grep -- "$name")"

out=$(kcr image build --name "$name" --kernel-image "$image" --kernel-config "$config" --kernel-modules "$tree" 2>&1)
expect_eq "image build with the user's kernel" "0" "$?"
expect_contains "it says whose kernel" "kernel $release (custom)" "$out"
expect_contains "image ls shows the flavor" '"kernel_flavor":"custom"' "$(kcr image ls --json)"
kcr -q vm start byok --image "$name" >/dev/null || fail "vm start on the user's kernel"
expect_contains "the VM runs it" "$name (kernel $release" "$(kcr check byok 2>&1)"
kcr run byok --name counter -- kcr-scenario counter --interval-ms 100 >/dev/null || fail "run"
wait_for "counter ready" 60 kcr exec byok counter -- kcr-scenario counter-probe
expect_true "2 cycles on the user's kernel" kcr -q cycle --vm byok --workload counter --count 2
finish
