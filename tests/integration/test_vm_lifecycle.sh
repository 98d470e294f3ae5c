#!/usr/bin/env bash
# A user's first session: start a VM, run the counter, look at it, kill it,
# stop the VM, and find nothing left behind.
source "$(dirname "$0")/lib.sh"

out=$(kcr vm start demo --memory 512M --cpus 1 2>&1)
expect_contains "vm start reports" "VM 'demo' is running" "$out"
expect_eq "vm dir is private" "700" "$(stat -c %a "$KCR_STATE_DIR/vms/demo")"
expect_eq "agent socket is private" "600" "$(stat -c %a "$KCR_STATE_DIR/vms/demo/agent.sock")"

ls_json=$(kcr vm ls --json)
expect_contains "vm ls --json names demo" '"name":"demo","state":"running"' "$ls_json"
expect_contains "vm ls table" "demo" "$(kcr vm ls)"

out=$(kcr run demo --name counter -- sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/c; echo tick $i; sleep 1; done')
expect_contains "run reports" "workload 'counter' running" "$out"

wait_for "counter has counted" 30 kcr exec demo counter -- test -s /tmp/c
first=$(kcr exec demo counter -- cat /tmp/c)
sleep 2
second=$(kcr exec demo counter -- cat /tmp/c)
if [ "${first:-0}" -ge 1 ] && [ "${second:-0}" -gt "${first:-0}" ]; then pass; else fail "counter should grow: $first then $second"; fi

# exec passes the command's exit status through
kcr exec demo counter -- sh -c 'exit 7'
expect_eq "exec exit status" "7" "$?"
json=$(kcr exec demo counter --json -- sh -c 'echo out; echo err >&2')
expect_contains "exec --json stdout" '"stdout":"out\n"' "$json"
expect_contains "exec --json stderr" '"stderr":"err\n"' "$json"

# the workload has its own PID namespace (its init is PID 1) and a private /tmp
expect_eq "PID 1 of the workload's namespace is its init" "kcr-init" "$(kcr exec demo counter -- cat /proc/1/comm)"
kcr run demo --name other -- sleep 1000 >/dev/null
if kcr exec demo other -- cat /tmp/c >/dev/null 2>&1; then
  fail "another workload can see counter's /tmp/c"
else
  pass
fi
expect_eq "hostname is the workload name" "other" "$(kcr exec demo other -- hostname)"

# Under TCG the guest kernel copies and clears memory with plain loops: the string instructions
# it would pick (ERMS, REP_GOOD) run one byte per step there. Under KVM it keeps them.
accel=$(kcr vm ls --json | grep -o '"name":"demo"[^}]*' | sed -n 's/.*"accel":"\([a-z]*\)".*/\1/p')
flags=$(kcr exec demo other -- grep -m1 '^flags' /proc/cpuinfo)
if [ "$accel" = tcg ]; then
  expect_contains "TCG: the kernel is told to forget them" "clearcpuid=erms,rep_good" \
    "$(kcr exec demo other -- cat /proc/cmdline)"
  expect_not_contains "TCG: no rep_good in the guest's CPU flags" " rep_good" "$flags"
  expect_not_contains "TCG: no erms in the guest's CPU flags" " erms" "$flags"
  KCR_TCG_STRING_OPS=1 kcr -q vm start strings --memory 256M >/dev/null || fail "vm start strings"
  kcr run strings --name w -- sleep 1000 >/dev/null
  expect_contains "KCR_TCG_STRING_OPS=1 keeps them" " rep_good" \
    "$(kcr exec strings w -- grep -m1 '^flags' /proc/cpuinfo)"
  kcr -q vm stop strings >/dev/null
else
  expect_eq "accel is kvm when not tcg" "kvm" "$accel"
  expect_not_contains "KVM: the kernel keeps the CPU's string instructions" "clearcpuid" \
    "$(kcr exec demo other -- cat /proc/cmdline)"
fi

# -e and the other options may come in any order before "--"; what follows "--" is the
# command's, its own options (sh -c) included.
kcr run demo --name envy -e A=1 -- sh -c 'echo $A > /tmp/a; sleep 1000' >/dev/null
expect_eq "run --name -e -- keeps the command's -c" "0" "$?"
wait_for "run -e reached the command" 30 kcr exec demo envy -- test -s /tmp/a
expect_eq "run -e sets the variable" "1" "$(kcr exec demo envy -- cat /tmp/a)"
kcr run demo -e A=2 -e PATH=/bin:/usr/bin --cwd /tmp --name envy2 -- sh -c 'echo $A$PATH > a; sleep 1000' >/dev/null
expect_eq "run -e -e --cwd --name -- keeps the command's -c" "0" "$?"
wait_for "run -e -e reached the command" 30 kcr exec demo envy2 -- test -s /tmp/a
expect_eq "run -e twice sets both" "2/bin:/usr/bin" "$(kcr exec demo envy2 -- cat /tmp/a)"
expect_eq "exec -e -- keeps the command's -c" "3" "$(kcr exec demo envy -e B=3 -- sh -c 'echo $B')"
expect_eq "exec -e --timeout -e -- keeps the command's -c" "45" \
  "$(kcr exec demo envy -e B=4 --timeout 30 -e C=5 -- sh -c 'echo $B$C')"

# --uidmap: a user namespace of its own, root inside as host uid 100000; --cgroupns private:
# rooted at its cgroup /kcr/NAME. exec joins both and runs as its root.
kcr run demo --name userns --uidmap 0:100000:65536 --cgroupns private -- sh -c 'touch /tmp/f; sleep 1000' >/dev/null
expect_eq "run --uidmap starts it" "0" "$?"
wait_for "the userns workload created its file" 30 kcr exec demo userns -- test -e /tmp/f
expect_eq "its uid_map is the one given" "0 100000 65536" \
  "$(kcr exec demo userns -- cat /proc/2/uid_map | tr -s ' ' | sed 's/^ //')"
expect_eq "the gid map defaults to the uid map" "0 100000 65536" \
  "$(kcr exec demo userns -- cat /proc/2/gid_map | tr -s ' ' | sed 's/^ //')"
expect_eq "exec runs as its root" "0:0" "$(kcr exec demo userns -- sh -c 'echo $(id -u):$(id -g)')"
expect_eq "its files belong to its root" "0" "$(kcr exec demo userns -- stat -c %u /tmp/f)"
expect_eq "its cgroup namespace is rooted at its cgroup" "0::/" "$(kcr exec demo userns -- cat /proc/2/cgroup)"
expect_failure "a uid map without container id 0" "does not map container id 0" \
  kcr run demo --name bad --uidmap 1:100000:10 -- true
expect_failure "a malformed uid map" "is not CONTAINER_ID:HOST_ID:SIZE" \
  kcr run demo --name bad --uidmap 0:100000 -- true
expect_failure "overlapping lines" "overlap" \
  kcr run demo --name bad --uidmap 0:100000:10 --uidmap 5:200000:10 -- true
expect_failure "a gid map alone" "--gidmap needs --uidmap" \
  kcr run demo --name bad --gidmap 0:100000:10 -- true
kcr -q kill demo userns

ps=$(kcr ps demo)
expect_contains "ps shows counter" "counter" "$ps"
expect_contains "ps shows running" "running" "$ps"
expect_contains "ps --json" '"name":"counter"' "$(kcr ps demo --json)"

logs=$(kcr logs demo counter)
expect_contains "logs carry stdout" "tick 1" "$logs"

# --follow ends by itself when the workload exits
kcr run demo --name short -- sh -c 'echo one; sleep 2; echo two' >/dev/null
out=$(timeout 60 "$KCR" logs demo short --follow)
expect_eq "logs --follow until exit" $'one\ntwo' "$out"

# --all reaches every process: STOP the whole tree, see the counter stand
# still, CONT it, see it move again.
kcr -q kill demo counter --signal STOP --all
sleep 0.5
s1=$(kcr exec demo counter -- cat /tmp/c)
sleep 2
s2=$(kcr exec demo counter -- cat /tmp/c)
expect_eq "stopped tree does not count" "$s1" "$s2"
counter_state() { kcr ps demo --json | grep -o '"name":"counter","pid":[0-9]*,"state":"[a-z]*"'; }
expect_contains "ps --json shows the stopped tree" '"state":"stopped"' "$(counter_state)"
expect_contains "ps shows stopped with its pid" "stopped" "$(kcr ps demo | grep '^counter ' | grep -v ' - ')"
kcr -q kill demo counter --signal CONT --all
expect_contains "ps --json shows the resumed tree running" '"state":"running"' "$(counter_state)"
sleep 2.5
s3=$(kcr exec demo counter -- cat /tmp/c)
if [ "${s3:-0}" -gt "${s2:-0}" ]; then pass; else fail "counter should resume after CONT: $s2 then $s3"; fi
# stopped too when only the init, or only the command (PID 2 of the workload), is stopped
kcr -q kill demo counter --signal STOP
expect_contains "ps shows a stopped init" '"state":"stopped"' "$(counter_state)"
kcr -q kill demo counter --signal CONT
expect_contains "ps shows the init running again" '"state":"running"' "$(counter_state)"
kcr exec demo counter -- sh -c 'kill -STOP 2'
expect_contains "ps shows a stopped command" '"state":"stopped"' "$(counter_state)"
kcr exec demo counter -- sh -c 'kill -CONT 2'
expect_contains "ps shows the command running again" '"state":"running"' "$(counter_state)"

out=$(kcr kill demo counter --signal TERM)
expect_contains "kill reports" "sent TERM" "$out"
wait_for "counter exits after TERM" 20 sh -c "\"$KCR\" ps demo | grep counter | grep -v running"
expect_contains "ps shows how it ended (128+TERM)" "exited 143" "$(kcr ps demo | grep counter)"

pid=$(kcr vm ls --json | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
kcr vm stop demo
expect_eq "vm ls empty after stop" "[]" "$(kcr vm ls --json)"
expect_true "state dir removed" test ! -e "$KCR_STATE_DIR/vms/demo"
# (a zombie may linger where PID 1 of this machine does not reap; it has no cmdline)
expect_eq "QEMU process gone" "" "$(cat /proc/$pid/cmdline 2>/dev/null | tr -d '\0')"

finish
