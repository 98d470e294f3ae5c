#!/usr/bin/env bash
# Bad input gets one clear "kcr: error:" line, a non-zero exit, and nothing
# is left behind.
source "$(dirname "$0")/lib.sh"

nothing_left() {
  local what=$1
  if [ -z "$(ls -A "$KCR_STATE_DIR/vms" 2>/dev/null)" ] && [ -z "$(qemu_pids)" ]; then
    pass
  else
    fail "$what left state or QEMU behind: $(ls -A "$KCR_STATE_DIR/vms" 2>/dev/null) $(qemu_pids)"
  fi
}

# No guest image.
KCR_CACHE_DIR=$KCR_TEST_TMP/empty-cache expect_failure "missing image" "guest image '${KCR_TEST_IMAGE:-default}' not found" kcr vm start demo
expect_contains "missing image hint" "kcr image build" "$last_err"
nothing_left "missing image"
expect_failure "unknown image" "guest image 'nope' not found" kcr vm start demo --image nope

# Names that would escape a directory.
expect_failure "slash in VM name" "VM name 'a/b' is not valid" kcr vm start a/b
expect_failure "dot-dot VM name" "VM name '..' is not valid" kcr vm start ..
nothing_left "bad names"

# Unknown VM.
expect_failure "unknown VM" "no VM named 'ghost'" kcr ps ghost
expect_contains "unknown VM hint" "kcr vm ls" "$last_err"
expect_failure "stop unknown VM" "no VM named 'ghost'" kcr vm stop ghost

# Malformed config.
printf 'memory: [1\n' >"$KCR_TEST_TMP/bad.yaml"
expect_failure "malformed YAML" "config $KCR_TEST_TMP/bad.yaml: line" kcr --config "$KCR_TEST_TMP/bad.yaml" vm ls
printf 'memroy: 1G\n' >"$KCR_TEST_TMP/typo.yaml"
expect_failure "unknown setting" "unknown setting 'memroy'" kcr --config "$KCR_TEST_TMP/typo.yaml" vm ls
expect_failure "missing config" "cannot be read" kcr --config "$KCR_TEST_TMP/none.yaml" vm ls
expect_failure "bad memory" "memory size '12X' is not valid" kcr vm start demo --memory 12X

# QEMU missing.
printf 'qemu: /nonexistent/qemu-system-x86_64\n' >"$KCR_TEST_TMP/noqemu.yaml"
expect_failure "QEMU missing" "QEMU ('/nonexistent/qemu-system-x86_64') was not found" kcr --config "$KCR_TEST_TMP/noqemu.yaml" vm start demo
expect_contains "QEMU missing hint" "apt-get install qemu-system-x86" "$last_err"
nothing_left "QEMU missing"

# A guest that never answers: a kernel that is not a kernel makes QEMU fail or
# the boot time out; either way the error shows and nothing stays.
default_dir=$(dirname "$(kcr image ls --json | sed -n 's/.*"kernel":"\([^"]*\)".*/\1/p' | head -1)")
mkdir -p "$KCR_TEST_TMP/cache/images/broken"
cp "$default_dir"/* "$KCR_TEST_TMP/cache/images/broken/"
kernel=$(sed -n 's/^kernel: //p' "$default_dir/manifest.yaml")
head -c "$(stat -c %s "$default_dir/$kernel")" /dev/urandom >"$KCR_TEST_TMP/cache/images/broken/$kernel"
printf 'boot_timeout: 10\n' >"$KCR_TEST_TMP/short.yaml"
KCR_CACHE_DIR=$KCR_TEST_TMP/cache expect_failure "unbootable kernel" "VM 'broken'" kcr --config "$KCR_TEST_TMP/short.yaml" vm start broken --image broken
nothing_left "unbootable kernel"

# Now a real VM for the workload-level errors.
kcr -q vm start demo >/dev/null || fail "vm start demo"
expect_failure "duplicate VM" "VM 'demo' already exists" kcr vm start demo
expect_failure "unknown workload" "no workload named 'ghost'" kcr exec demo ghost -- true
expect_failure "bad workload name" "workload name '../x' is not valid" kcr run demo --name ../x -- true
kcr run demo --name w -- sleep 1000 >/dev/null || fail "run w"
expect_failure "duplicate workload" "workload 'w' already exists" kcr run demo --name w -- true
expect_failure "bad signal" "'NOPE' is not a signal" kcr kill demo w --signal NOPE
expect_failure "missing command" "no command to run" kcr run demo --name x
expect_failure "bad env" "is not KEY=VALUE" kcr run demo --name y -e FOO -- true
expect_failure "kill unknown workload" "no workload named 'ghost'" kcr kill demo ghost

# A QEMU that dies is noticed: ls reports it once, then it is gone.
pid=$(kcr vm ls --json | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
kill -9 "$pid"
sleep 0.5
expect_failure "dead VM" "VM 'demo' is not running" kcr ps demo
expect_eq "dead VM cleaned up" "[]" "$(kcr vm ls --json)"
nothing_left "dead VM"

# Kernel configs: one lacking what CRIU needs exits 1 naming each option and what needs it.
data=$(dirname "$0")/../data
out=$(kcr image check-kernel "$data/broken-no-checkpoint-restore.config")
expect_eq "check-kernel exit status on a broken config" "1" "$?"
expect_contains "broken config summary" "MISSING 2 of" "$out"
expect_contains "broken config names the option" \
  "CONFIG_CHECKPOINT_RESTORE (needed by: criu dump/restore" "$out"
out=$(kcr image check-kernel "$data/debian-cloud-6.1.0-56.config" --json)
expect_eq "check-kernel exit status on Debian's config" "0" "$?"
expect_contains "Debian's virtio console is a module" \
  '"option":"CONFIG_VIRTIO_CONSOLE","status":"module"' "$out"
expect_failure "not a kernel config" "not a kernel config line" kcr image check-kernel /etc/passwd
expect_failure "two config sources" "give one of" kcr image check-kernel --debian --image x

finish
