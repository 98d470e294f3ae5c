#!/usr/bin/env bash
# --accel auto on a host whose /dev/kvm opens but whose KVM makes QEMU abort
# ("failed to set MSR 0x10a", as on some of our machines): the VM boots under
# TCG with one line saying why, the verdict is remembered, --accel kvm fails
# with QEMU's own words, and a host without the device never tries KVM.
# A wrapper around the real QEMU aborts exactly that way when asked for KVM,
# so this runs the same on every machine, with or without a working /dev/kvm.
source "$(dirname "$0")/lib.sh"

real_qemu=$(command -v qemu-system-x86_64)
wrapper=$KCR_TEST_TMP/qemu-broken-kvm
attempts=$KCR_TEST_TMP/kvm-attempts
cat >"$wrapper" <<WRAP
#!/usr/bin/env bash
prev=
for a in "\$@"; do
  if [ "\$a" = --version ]; then echo "QEMU emulator version 7.2 (kcr test wrapper)"; exit 0; fi
  if [ "\$prev" = -accel ] && [ "\$a" = kvm ]; then
    echo kvm >>"$attempts"
    echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69" >&2
    echo "qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3183: kvm_buf_set_msrs: Assertion \\\`ret == cpu->kvm_msr_buf->nmsrs' failed." >&2
    kill -ABRT \$\$
  fi
  prev=\$a
done
exec "$real_qemu" "\$@"
WRAP
chmod +x "$wrapper"
# Its own cache directory (sharing the images), so the verdict starts unknown.
real_cache=$("$KCR" image ls --json | sed -n 's/.*"kernel":"\([^"]*\)\/images\/.*/\1/p' | head -1)
[ -n "$real_cache" ] || real_cache=/var/cache/kcr
mkdir -p "$KCR_TEST_TMP/cache"
ln -s "$real_cache/images" "$KCR_TEST_TMP/cache/images"
{
  if [ -n "${KCR_CONFIG:-}" ]; then cat "$KCR_CONFIG"; fi
  echo "qemu: $wrapper"
  echo "cache_dir: $KCR_TEST_TMP/cache"
} >"$KCR_TEST_TMP/broken-kvm.yaml"
export KCR_CONFIG=$KCR_TEST_TMP/broken-kvm.yaml
unset KCR_CACHE_DIR  # it would win over the config's cache_dir
export KCR_KVM_DEVICE=/dev/null  # a device that opens, as a broken /dev/kvm does

err=$(kcr vm start a 2>&1 >/dev/null)
expect_eq "vm start falls back" "0" "$?"
expect_contains "says KVM does not work and why" \
  "KVM does not work on this host (QEMU failed to start: qemu-system-x86_64: error: failed to set MSR 0x10a" "$err"
expect_contains "says it falls back" "falling back to TCG" "$err"
expect_contains "runs under TCG" '"accel":"tcg"' "$(kcr vm ls --json)"
expect_contains "the agent answers" "Looks good." "$(kcr check a)"
expect_contains "verdict remembered" "works: false" "$(cat "$KCR_TEST_TMP/cache/kvm-verdicts.yaml")"
expect_contains "kcr check says what the next boot uses, and why" \
  '"accel":"tcg","accel_reason":"KVM does not work here: QEMU failed to start' "$(kcr check --json)"

err=$(kcr vm start b 2>&1 >/dev/null)
expect_eq "second vm start" "0" "$?"
expect_contains "second boot goes straight to TCG" "verdict remembered in" "$err"
expect_eq "KVM was tried once" "1" "$(wc -l <"$attempts")"

expect_failure "--accel kvm fails with QEMU's words" "failed to set MSR 0x10a" kcr vm start c --accel kvm
expect_not_contains "nothing left of c" '"name":"c"' "$(kcr vm ls --json)"

rm -f "$KCR_TEST_TMP/cache/kvm-verdicts.yaml" "$attempts"
err=$(KCR_KVM_DEVICE=/nonexistent/kvm kcr vm start d 2>&1 >/dev/null)
expect_eq "vm start without a KVM device" "0" "$?"
expect_not_contains "no KVM line without the device" "KVM does not work" "$err"
expect_true "KVM never tried without the device" test ! -e "$attempts"
expect_failure "--accel kvm without the device" "cannot be opened" \
  env KCR_KVM_DEVICE=/nonexistent/kvm "$KCR" vm start e --accel kvm

kcr -q vm stop a b d
finish
