#!/usr/bin/env bash
# The libvirt backend against a real libvirt daemon (scripts/libvirt-up.sh
# brings one up; skipped, saying why, only when none can run here): a VM as a
# transient domain, shown by vm ls with its backend and URI; a workload run,
# exec'd into, checkpointed, restored in the same VM and in a QEMU-backend VM
# (checkpoints are backend-neutral), cycled; vm stop leaves no domain defined.
# Refused, leaving nothing behind: an unreachable URI, a domain name taken.
source "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)

if ! up=$("$root/scripts/libvirt-up.sh" </dev/null 2>&1); then
  echo "SKIPPED: no libvirt daemon can run here: ${up##*$'\n'}"
  exit 77
fi
uri=qemu:///system
domains() { virsh -q -c "$uri" list --all --name </dev/null 2>/dev/null; }

# Domains are named after VMs on one daemon for every state directory: names
# of this run only.
lv=lvt$$
qv=lvq$$
state2=$KCR_TEST_TMP/state2
trap 'KCR_STATE_DIR=$state2 "$KCR" -q vm stop "$lv" >/dev/null 2>&1; cleanup;
  virsh -q -c "$uri" destroy "kcr-$lv" >/dev/null 2>&1 </dev/null' EXIT

# An unreachable URI, from the environment: a clear error, nothing left.
expect_failure "unreachable URI" "cannot connect to libvirt at 'qemu+tcp://127.0.0.1:1/system'" \
  env KCR_BACKEND=libvirt KCR_CONNECT=qemu+tcp://127.0.0.1:1/system "$KCR" vm start "$lv"
expect_contains "the hint names the script" "scripts/libvirt-up.sh" "$last_err"
expect_eq "nothing left in the state directory" "" "$(ls "$KCR_STATE_DIR/vms" 2>/dev/null)"
expect_failure "--connect needs the libvirt backend" "--connect applies to the libvirt backend only" \
  kcr vm start "$qv" --backend qemu --connect "$uri"

started=$SECONDS
out=$(kcr vm start "$lv" --backend libvirt --connect "$uri" 2>&1) || fail "libvirt vm start: $out"
echo "libvirt VM booted in $((SECONDS - started)) s: ${out##*$'\n'}"
expect_contains "the domain runs" "kcr-$lv" "$(domains)"
ls_out=$(kcr vm ls)
row=$(grep "^$lv " <<<"$ls_out")
expect_contains "vm ls shows the backend" " libvirt " "$row"
expect_contains "vm ls shows the URI" " $uri " "$row"
json=$(kcr vm ls --json)
expect_contains "vm ls --json backend" '"backend":"libvirt"' "$json"
expect_contains "vm ls --json connect" "\"connect\":\"$uri\"" "$json"
expect_contains "vm.yaml records the URI" "connect: $uri" "$(cat "$KCR_STATE_DIR/vms/$lv/vm.yaml")"
expect_contains "the serial log is kept" "kcr-agent" "$(kcr vm console "$lv" --log)"

# A domain of that name already runs (another state directory's VM): refused,
# the running one untouched.
expect_failure "domain name taken" "a libvirt domain named 'kcr-$lv' already exists" \
  env KCR_STATE_DIR="$state2" "$KCR" vm start "$lv" --backend libvirt
expect_eq "the refused start left nothing" "" "$(ls "$state2/vms" 2>/dev/null)"
expect_contains "the first domain still runs" "kcr-$lv" "$(domains)"

kcr run "$lv" --name counter -- kcr-scenario counter --interval-ms 100 >/dev/null
wait_for "counter ready" 60 kcr exec "$lv" counter -- kcr-scenario counter-probe
sleep 2
at=$(kcr exec "$lv" counter -- kcr-scenario counter-probe)
expect_true "exec answers a count" test "${at:-0}" -gt 0
out=$(kcr checkpoint "$lv" counter -o lc1 --leave-running --json 2>&1) || fail "checkpoint: $out"
expect_contains "a libvirt VM's checkpoint comes through its data disk" '"channel":"disk"' "$out"
out=$(kcr restore "$lv" lc1 --name counter2 --json 2>&1) || fail "restore in the libvirt VM: $out"
expect_contains "and its restore goes in through one" '"channel":"disk"' "$out"
wait_for "restored counter runs" 30 kcr exec "$lv" counter2 -- kcr-scenario counter-probe
n=$(kcr exec "$lv" counter2 -- kcr-scenario counter-probe)
expect_true "the restored counter went on from $at (at $n)" test "${n:-0}" -ge "$at"

out=$(kcr cycle --vm "$lv" --workload counter2 -n 1 2>&1) || fail "cycle --vm on libvirt: $out"
expect_failure "save is not supported yet" "not supported on the libvirt backend" \
  kcr vm save "$lv" "$KCR_TEST_TMP/whole.vm"

# Into a VM of the QEMU backend: the checkpoint does not know its backend.
kcr -q vm start "$qv" --backend qemu >/dev/null || fail "qemu vm start"
expect_contains "vm ls shows the qemu backend" " qemu " "$(kcr vm ls | grep "^$qv ")"
out=$(kcr restore "$qv" lc1 --name counter 2>&1) || fail "restore into the qemu VM: $out"
wait_for "counter runs in the qemu VM" 30 kcr exec "$qv" counter -- kcr-scenario counter-probe
n=$(kcr exec "$qv" counter -- kcr-scenario counter-probe)
expect_true "the counter went on in the qemu VM from $at (at $n)" test "${n:-0}" -ge "$at"
kcr -q vm stop "$qv" || fail "qemu vm stop"

kcr -q vm stop "$lv" || fail "libvirt vm stop"
expect_not_contains "vm stop leaves no domain defined" "kcr-$lv" "$(domains)"
expect_eq "vm stop removed the state" "" "$(ls "$KCR_STATE_DIR/vms" 2>/dev/null)"

finish
