#!/usr/bin/env bash
# kcr migrate --lazy-pages (post-copy): the workload runs in the destination
# before its memory moved; pages follow from the source's CRIU page server
# over the link kcr sets up between the two VMs. A source that dies in the
# middle is reported, not waited for, and the incomplete copy is killed.
source "$(dirname "$0")/lib.sh"

json_field() { sed -n "s/.*\"$1\":\(\"[^\"]*\"\|[^,}\[]*\).*/\1/p" | tr -d '"'; }
workload_state() {
  kcr ps "$1" --json | grep -o "\"name\":\"$2\"[^}]*" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}

kcr -q vm start src >/dev/null || fail "vm start src"
kcr run src --name buf -- kcr-scenario membuf --size 10M >/dev/null
wait_for "membuf ready" 60 kcr exec src buf -- kcr-scenario membuf-probe
sum=$(kcr exec src buf -- kcr-scenario membuf-probe)

expect_failure "lazy clone refused" "--lazy-pages cannot be combined with --keep-source" \
  kcr migrate src buf --lazy-pages --keep-source
expect_failure "lazy pre-copy refused" "--lazy-pages cannot be combined with --pre-dump" \
  kcr migrate src buf --lazy-pages --pre-dump 1

# A workload's own address in the link's subnet is never clobbered: the
# migration is refused before anything is frozen, naming it, and the
# migration_link setting moves the link to another subnet.
nic=$(kcr exec src buf -- sh -c 'ls /sys/class/net | grep -v "^lo$" | head -1')
kcr exec src buf -- ip addr add 10.97.0.9/24 dev "$nic" || fail "add an address on $nic"
expect_failure "a clash with a workload's address is refused" \
  "would replace address 10.97.0.9/24 of $nic" kcr migrate src buf --lazy-pages --to src-m1
expect_contains "the hint names migration_link" "migration_link" "$last_err"
expect_eq "refused before the freeze: the buffer runs on" "running" "$(workload_state src buf)"
expect_not_contains "the fresh destination was stopped again" '"name":"src-m1"' "$(kcr vm ls --json)"
kcr exec src buf -- ip addr del 10.97.0.9/24 dev "$nic" || fail "remove the address"
{
  if [ -n "${KCR_CONFIG:-}" ]; then cat "$KCR_CONFIG"; fi
  printf 'migration_link:\n  source: 10.98.0.1/24\n  destination: 10.98.0.2/24\n  port: 7078\n'
} >"$KCR_TEST_TMP/link.yaml"

# The 10 MB buffer moves lazily to a fresh VM and keeps its checksum.
out=$(KCR_CONFIG=$KCR_TEST_TMP/link.yaml kcr migrate src buf --lazy-pages --json)
expect_eq "lazy migration survived" "true" "$(echo "$out" | json_field survived)"
expect_eq "mode" "post-copy" "$(echo "$out" | json_field mode)"
expect_eq "to a fresh VM" "src-m1" "$(echo "$out" | json_field to)"
echo "lazy 10 MB: downtime $(echo "$out" | json_field downtime_seconds)s," \
  "memory followed in $(echo "$out" | json_field lazy_seconds)s"
expect_eq "same checksum in src-m1" "$sum" "$(kcr exec src-m1 buf -- kcr-scenario membuf-probe)"
expect_eq "source ended" "exited" "$(workload_state src buf)"
expect_contains "the link used the configured subnet" "10.98.0.2/24" \
  "$(kcr exec src-m1 buf -- ip -4 addr show dev "$nic")"
expect_eq "no lazy checkpoint left in the store" "" "$(ls -A "$KCR_DATA_DIR/checkpoints" 2>/dev/null)"

# The destination dies while the memory of a 100 MB buffer is on its way:
# the source gets its workload back, whole and running.
kcr -q vm start dst >/dev/null || fail "vm start dst"
dst_pid=$(kcr vm ls --json | grep -o '"name":"dst"[^}]*' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
kcr run src --name back -- kcr-scenario membuf --size 100M >/dev/null
wait_for "buffer 'back' ready" 120 kcr exec src back -- kcr-scenario membuf-probe
back_sum=$(kcr exec src back -- kcr-scenario membuf-probe)
kill_midway "memory follows" "$dst_pid" "$KCR" migrate src back --lazy-pages --to dst
if [ $rc -ne 0 ]; then pass; else fail "lazy migration succeeded although its destination died"; fi
echo "$err" | tail -2
expect_contains "names the dead destination" "VM 'dst' died while memory was still being copied" "$err"
expect_contains "says the source runs on" "the workload runs on in VM 'src'" "$err"
expect_contains "says the copy went with the VM" "VM 'dst' is gone, and the incomplete copy with it" "$err"
expect_eq "buffer intact in src" "$back_sum" "$(kcr exec src back -- kcr-scenario membuf-probe)"
stopped=$(kcr exec src back -- sh -c 'cat /proc/[0-9]*/stat' | awk '$3 == "T"' | wc -l)
expect_eq "no task of 'back' left stopped" "0" "$stopped"
kcr -q kill src back --signal KILL

# The source VM dies while the memory of a 100 MB buffer is on its way.
kcr run src --name big -- kcr-scenario membuf --size 100M >/dev/null
wait_for "big buffer ready" 120 kcr exec src big -- kcr-scenario membuf-probe
src_pid=$(kcr vm ls --json | grep -o '"name":"src"[^}]*' | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
start=$SECONDS
kill_midway "memory follows" "$src_pid" "$KCR" migrate src big --lazy-pages --to src-m1
if [ $rc -ne 0 ]; then pass; else fail "lazy migration succeeded although its source died"; fi
echo "$err" | tail -2
expect_true "reported within a minute, not hung ($((SECONDS - start)) s)" test $((SECONDS - start)) -lt 60
expect_contains "clear error" "kcr: error: lazy migration of workload 'big' failed" "$err"
expect_contains "says the source is gone" "VM 'src' is gone" "$err"
expect_contains "says the copy was killed" "incomplete copy in VM 'src-m1' was killed" "$err"
expect_eq "no half-restored copy runs in src-m1" "exited" "$(workload_state src-m1 big)"
expect_eq "the first buffer still runs in src-m1" "$sum" \
  "$(kcr exec src-m1 buf -- kcr-scenario membuf-probe)"
finish
