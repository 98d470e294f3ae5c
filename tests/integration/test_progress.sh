#!/usr/bin/env bash
# What kcr says on stderr: a progress bar redrawn with \r on a terminal and
# plain lines through a pipe while a 100 MB checkpoint streams, nothing with
# -q; kcr version names every component; --log-level debug shows the QEMU
# command line and each agent request, the default level none of it.
source "$(dirname "$0")/lib.sh"

if ! command -v script >/dev/null; then
  echo "SKIPPED: script (util-linux) is needed for a pseudo-terminal"
  exit 77
fi

# --log-level debug: the QEMU command line and the agent's requests.
err=$(kcr --log-level debug vm start demo --memory 768M 2>&1 >/dev/null) || fail "vm start: $err"
expect_contains "debug shows the QEMU command line" "debug: QEMU command line: " "$err"
expect_contains "the command line names the kernel" " -kernel " "$err"
expect_contains "debug shows agent requests with their duration" "agent request hello: " "$err"
err=$(kcr ps demo 2>&1 >/dev/null)
expect_eq "the default level logs nothing" "" "$err"
err=$(KCR_LOG_LEVEL=debug kcr ps demo 2>&1 >/dev/null)
expect_contains "KCR_LOG_LEVEL=debug" "agent request ps: " "$err"
err=$(kcr --log-level debug --log-file "$KCR_TEST_TMP/kcr.log" ps demo 2>&1 >/dev/null)
expect_eq "--log-file keeps stderr clean" "" "$err"
expect_contains "--log-file has the lines" "agent request ps: " "$(cat "$KCR_TEST_TMP/kcr.log")"
expect_failure "an unknown level is refused" "--log-level" kcr --log-level loud ps demo

kcr run demo --name big -- kcr-scenario membuf --size 100M >/dev/null
wait_for "membuf ready" 120 kcr exec demo big -- kcr-scenario membuf-probe

# A terminal: script gives kcr a pseudo-terminal for stdout and stderr.
script -qfec "$KCR checkpoint demo big -o c1 --leave-running" /dev/null >"$KCR_TEST_TMP/tty.out" ||
  fail "checkpoint on a terminal"
tty=$(cat "$KCR_TEST_TMP/tty.out")
# Each redraw starts with \r and shows the bytes and the rate; the result line follows.
bars=$(tr '\r' '\n' <"$KCR_TEST_TMP/tty.out" | grep -Ec "^checkpoint 'c1'  [0-9.]+ [KM]?i?B  [0-9.]+ [KM]?i?B/s")
if [ "$bars" -ge 2 ]; then pass; else fail "the bar was not redrawn with \r ($bars draws): $tty"; fi
expect_contains "the bar shows the rate" "MiB/s" "$tty"
expect_contains "the result still prints" "checkpoint 'c1': " "$tty"

# A pipe: plain lines, at most one a second, no \r. Through a data disk, 100 MB can be stored
# in less than the second before the first line: this part runs in a VM whose images move
# through the agent's port only (KCR_DATA_DISKS=0), as they did before data disks.
KCR_DATA_DISKS=0 kcr -q vm start slow --memory 768M || fail "vm start slow"
kcr run slow --name big -- kcr-scenario membuf --size 100M >/dev/null
wait_for "membuf ready in slow" 120 kcr exec slow big -- kcr-scenario membuf-probe
kcr checkpoint slow big -o c2 --leave-running 2>&1 | cat >"$KCR_TEST_TMP/pipe.out"
pipe=$(cat "$KCR_TEST_TMP/pipe.out")
expect_eq "no \\r through a pipe" "0" "$(tr -cd '\r' <"$KCR_TEST_TMP/pipe.out" | wc -c)"
expect_contains "plain lines name bytes and rate" "checkpoint 'c2': " "$pipe"
if grep -Eq "^checkpoint 'c2': [0-9.]+ MiB received, [0-9.]+ (MiB|KiB)/s$" "$KCR_TEST_TMP/pipe.out"; then
  pass
else
  fail "no plain progress line: $pipe"
fi

# -q and --json: nothing on stderr, even on a terminal.
script -qfec "$KCR -q checkpoint demo big -o c3 --leave-running >/dev/null" /dev/null \
  >"$KCR_TEST_TMP/quiet.out" || fail "quiet checkpoint"
expect_eq "-q shows no progress" "" "$(cat "$KCR_TEST_TMP/quiet.out")"
kcr checkpoints rm c1 >/dev/null
kcr checkpoints rm c3 >/dev/null

# The restore upload's total is known: share and ETA. On a terminal, where the bar is drawn
# from 0.3 s on: through a pipe the first plain line comes after 1 s, and an upload of 100 MB
# can be done by then (the source-built kernel's guest takes ~0.9 s through the port, ~0.4 s
# through a data disk: so into the VM without one).
kcr kill slow big --signal KILL >/dev/null
wait_for "big gone" 30 bash -c "! $KCR ps slow | grep -q '^big .*running'"
script -qfec "$KCR restore slow c2 --name back" /dev/null >"$KCR_TEST_TMP/restore.out" ||
  fail "restore on a terminal"
restore=$(tr '\r' '\n' <"$KCR_TEST_TMP/restore.out")
expect_contains "restore upload shows the total" "/ 100." "$restore"
expect_contains "restore upload shows an ETA" "  ETA " "$restore"
expect_true "restored memory intact" kcr exec slow back -- kcr-scenario membuf-probe
kcr -q vm stop slow

# kcr version: every component, numbers as JSON numbers.
v=$(kcr version --json)
for key in '"kcr":{"version":"' '"host":{"kernel":"' '"arch":"' '"qemu":"' '"libvirt":"' \
  '"criu":' '"image":{"name":"' '"agent_version":"' '"criu_version":"' '"kernel_release":"'; do
  expect_contains "version names $key" "$key" "$v"
done
if [[ "$v" =~ \"protocol_version\":[0-9]+[,}] ]]; then pass; else fail "protocol_version is not a number: $v"; fi
expect_not_contains "no VM without one named" '"vm":' "$v"
v=$(kcr version demo --json)
expect_contains "the VM's guest" '"vm":{"name":"demo","image":"' "$v"
if [[ "$v" =~ \"vm\":.*\"protocol_version\":[0-9]+,.*\"uptime_seconds\":[0-9.]+\} ]]; then
  pass
else
  fail "the VM's numbers are not JSON numbers: $v"
fi
text=$(kcr version demo)
for word in "kcr:" "host kernel:" "QEMU:" "libvirt:" "host CRIU:" "image:" "VM:"; do
  expect_contains "version text has $word" "$word" "$text"
done

kcr -q vm stop demo
finish
