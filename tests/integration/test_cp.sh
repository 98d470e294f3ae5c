#!/usr/bin/env bash
# kcr cp, like podman cp: a static binary copied into a workload runs there
# with kcr exec, survives a checkpoint and a restore in a fresh VM; trees go
# both ways with modes and links kept; paths resolve inside the workload's
# root ('..' and links cannot leave it); bad input is refused and leaves
# nothing behind.
source "$(dirname "$0")/lib.sh"

kcr -q vm start demo >/dev/null || fail "vm start"
kcr run demo --name w -- sleep 100000 >/dev/null || fail "run w"
kcr run demo --name other -- sleep 100000 >/dev/null || fail "run other"

# A static binary in, run in the workload.
bb=$(command -v busybox)
out=$(kcr cp "$bb" demo:w:/tmp/busybox 2>&1)
expect_eq "cp of a static binary" "0" "$?"
expect_contains "cp says where it went" "to demo:w:/tmp/busybox" "$out"
expect_eq "it runs in the workload" "hello" "$(kcr exec demo w -- /tmp/busybox echo hello)"
want=$(sha256sum <"$bb" | cut -d' ' -f1)
expect_eq "its bytes arrived" "$want" "$(kcr exec demo w -- /tmp/busybox sha256sum /tmp/busybox | cut -d' ' -f1)"
expect_eq "mode kept" "755" "$(kcr exec demo w -- /tmp/busybox stat -c %a /tmp/busybox)"
expect_eq "the workload's private /tmp got it, not another's" "1" \
  "$(kcr exec demo other -- sh -c 'test -e /tmp/busybox; echo $?')"

# A tree in: modes, a link, an empty file, into an existing directory.
src=$KCR_TEST_TMP/tree
mkdir -p "$src/sub/deep"
echo one >"$src/a.txt"
chmod 600 "$src/a.txt"
: >"$src/empty"
head -c 3000000 /dev/urandom >"$src/sub/deep/big.bin"
chmod 750 "$src/sub"
ln -s ../a.txt "$src/sub/link"
expect_true "cp -r in" kcr -q cp "$src" demo:w:/tmp
listing=$(kcr exec demo w -- sh -c 'cd /tmp/tree && find . | sort && stat -c "%n %a" a.txt sub && readlink sub/link && wc -c < empty')
expect_contains "tree: deep file" "./sub/deep/big.bin" "$listing"
expect_contains "tree: file mode" "a.txt 600" "$listing"
expect_contains "tree: dir mode" "sub 750" "$listing"
expect_contains "tree: link kept as a link" "../a.txt" "$listing"
expect_eq "tree: big file's bytes" "$(sha256sum <"$src/sub/deep/big.bin" | cut -d' ' -f1)" \
  "$(kcr exec demo w -- sha256sum /tmp/tree/sub/deep/big.bin | cut -d' ' -f1)"
expect_eq "no temporaries left in the workload" "" \
  "$(kcr exec demo w -- find /tmp -name '*.kcr-cp*')"

# And out again: identical trees, modes kept, set-id bits dropped.
kcr exec demo w -- sh -c 'cp /tmp/busybox /tmp/tree/suid && chmod 4755 /tmp/tree/suid' || fail "suid file"
back=$KCR_TEST_TMP/back
mkdir "$back"
expect_true "cp -r out" kcr -q cp demo:w:/tmp/tree "$back"
expect_true "the tree came back whole" diff -r --no-dereference -x suid "$src" "$back/tree"
expect_eq "tree back: big file" "$(sha256sum <"$src/sub/deep/big.bin")" "$(sha256sum <"$back/tree/sub/deep/big.bin")"
expect_eq "tree back: file mode" "600" "$(stat -c %a "$back/tree/a.txt")"
expect_eq "tree back: dir mode" "750" "$(stat -c %a "$back/tree/sub")"
expect_eq "tree back: link" "../a.txt" "$(readlink "$back/tree/sub/link")"
expect_eq "tree back: set-uid dropped" "755" "$(stat -c %a "$back/tree/suid")"
expect_eq "nothing else beside it" "tree" "$(ls -A "$back")"
expect_true "cp of one file out to a new name" kcr -q cp demo:w:/tmp/tree/a.txt "$KCR_TEST_TMP/a.copy"
expect_eq "its content" "one" "$(cat "$KCR_TEST_TMP/a.copy")"

# Paths resolve inside the workload's root.
kcr exec demo w -- ln -s ../../../../../../tmp /tmp/up || fail "link"
echo escape >"$KCR_TEST_TMP/e"
expect_true "cp through .. and a climbing link" kcr -q cp "$KCR_TEST_TMP/e" demo:w:/../../tmp/up/e
expect_eq "landed in the workload's /tmp" "escape" "$(kcr exec demo w -- cat /tmp/e)"
kcr exec demo w -- ln -s /proc/1/root /tmp/magic || fail "magic link"
expect_failure "a /proc magic link is not followed" "in the workload" \
  kcr cp "$KCR_TEST_TMP/e" demo:w:/tmp/magic/x

# The binary survives a checkpoint and runs after a restore in a fresh VM.
kcr -q checkpoint demo w -o with-bb || fail "checkpoint"
kcr -q vm start fresh >/dev/null || fail "vm start fresh"
kcr -q restore fresh with-bb --name w || fail "restore in fresh"
expect_eq "the copied binary runs after the restore" "after" "$(kcr exec fresh w -- /tmp/busybox echo after)"

# Bad input: clear errors, nothing left behind.
expect_failure "host to host" "one of the two must be VM:WORKLOAD:/PATH" kcr cp "$bb" "$KCR_TEST_TMP/x"
expect_failure "relative path in the workload" "must be absolute" kcr cp "$bb" demo:other:tmp/x
expect_failure "missing host source" "cannot copy $KCR_TEST_TMP/missing" kcr cp "$KCR_TEST_TMP/missing" demo:other:/tmp/x
expect_failure "unknown workload" "no workload" kcr cp "$bb" demo:nope:/tmp/x
expect_failure "missing directory in the workload" "cannot open the directory /no/such" \
  kcr cp "$bb" demo:other:/no/such/x
expect_failure "missing source in the workload" "no /tmp/none in workload 'other'" \
  kcr cp demo:other:/tmp/none "$KCR_TEST_TMP/none"
expect_true "nothing created on the host" test ! -e "$KCR_TEST_TMP/none"
expect_failure "an existing directory target is not overwritten" "already exists" \
  kcr cp fresh:w:/tmp/tree "$back"
finish
