#!/usr/bin/env bash
# kcr run --rootfs: a workload whose root is a root filesystem of the user's own (the Kata
# prototype's own case: a busybox rootfs, the counter writing /dev/shm/counter.log), its
# changes private to it and carried by each checkpoint, its base put into a fresh VM by kcr,
# and the hazards the prototype met: mounts private before the dump (in guests whose mounts
# are shared), the root and the three
# /etc binds external at dump and mapped back at restore.
source "$(dirname "$0")/lib.sh"

[ -x /bin/busybox ] || { echo "SKIPPED: /bin/busybox (busybox-static) is missing"; exit 77; }

# A busybox root filesystem: /bin/busybox and its applets as links, a few files of its own,
# and /dev/null as a device node (left out: kcr gives every workload a /dev of its own).
root=$KCR_TEST_TMP/rootfs
mkdir -p "$root"/{bin,etc,dev,data,tmp}
cp /bin/busybox "$root/bin/busybox"
for applet in sh cat echo sleep seq test ls grep rm touch mkdir hostname wc tail head stat id; do
  ln -s busybox "$root/bin/$applet"
done
echo "welcome" >"$root/etc/motd"
echo "from the base" >"$root/data/base.txt"
ln -s ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
mknod "$root/dev/null" c 1 3
tar -C "$root" -czf "$KCR_TEST_TMP/rootfs.tar.gz" .

# Every VM here has shared mounts, as systemd makes a host's: a workload's mounts arrive as
# peers of the guest's, which pivot_root and CRIU refuse unless kcr makes them private.
export KCR_GUEST_SHARED_MOUNTS=1
kcr -q vm start demo >/dev/null || fail "vm start"
expect_contains "the guest's mounts are shared" "kcr-init: mounts shared" \
  "$(cat "$KCR_STATE_DIR/vms/demo/serial.log")"

# Bad input: each refused with its reason, nothing run, nothing left in the store.
expect_failure "a missing rootfs" "$KCR_TEST_TMP/nope" \
  kcr run demo --name bad --rootfs "$KCR_TEST_TMP/nope" -- sh
python3 - "$KCR_TEST_TMP" <<'EOF'
import io, sys, tarfile
d = sys.argv[1]
def make(name, add):
    with tarfile.open(f"{d}/{name}", "w") as t:
        add(t)
def entry(t, path, kind=tarfile.REGTYPE, data=b"x", link=""):
    i = tarfile.TarInfo(path)
    i.type = kind
    i.linkname = link
    i.size = len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
make("dotdot.tar", lambda t: entry(t, "bin/../../escape"))
make("absolute.tar", lambda t: entry(t, "/etc/passwd"))
make("device.tar", lambda t: (entry(t, "etc", tarfile.DIRTYPE), entry(t, "etc/disk", tarfile.BLKTYPE)))
make("hardlink.tar", lambda t: entry(t, "etc/shadow", tarfile.LNKTYPE, link="../../etc/shadow"))
make("through-link.tar", lambda t: (entry(t, "up", tarfile.SYMTYPE, link="/"),
                                    entry(t, "up/etc/evil")))
EOF
expect_failure "a path with .." ".." kcr run demo --name bad --rootfs "$KCR_TEST_TMP/dotdot.tar" -- sh
expect_failure "an absolute path" "/etc/passwd" \
  kcr run demo --name bad --rootfs "$KCR_TEST_TMP/absolute.tar" -- sh
expect_failure "a device node outside /dev" "etc/disk" \
  kcr run demo --name bad --rootfs "$KCR_TEST_TMP/device.tar" -- sh
expect_failure "a hard link out of the tree" "etc/shadow" \
  kcr run demo --name bad --rootfs "$KCR_TEST_TMP/hardlink.tar" -- sh
expect_failure "a path through a link" "up/etc/evil" \
  kcr run demo --name bad --rootfs "$KCR_TEST_TMP/through-link.tar" -- sh
expect_eq "nothing half-written in the store" "" \
  "$(ls -A "$KCR_DATA_DIR/rootfs" 2>/dev/null | grep -v '\.tar$')"
expect_not_contains "no workload of the bad runs" "bad" "$(kcr ps demo)"
# A command the root filesystem lacks: the workload exits 127 and its log says why.
kcr -q run demo --name bad2 --rootfs "$root" -- no-such-command >/dev/null || fail "run bad2"
wait_for "the missing command's workload exits" 20 sh -c "'$KCR' ps demo | grep bad2 | grep -q 'exited 127'"
expect_contains "its log says why" "cannot run 'no-such-command'" "$(kcr logs demo bad2 2>&1)"

counter='i=0; while :; do i=$((i+1)); echo $i >>/dev/shm/counter.log; sleep 0.2; done'
kcr run demo --name c --rootfs "$KCR_TEST_TMP/rootfs.tar.gz" -- sh -c "$counter" >/dev/null ||
  fail "run with a rootfs"
# The directory and its tar.gz (in another order) are two bases.
expect_eq "the bases in the store" "2" "$(ls "$KCR_DATA_DIR/rootfs" | grep -c '\.tar$')"
wait_for "the counter counts" 30 kcr exec demo c -- test -s /dev/shm/counter.log

# The root is that filesystem, the guest's files not visible.
x() { kcr exec "$1" "$2" -- "${@:3}"; }
expect_eq "the base's file" "from the base" "$(x demo c cat /data/base.txt)"
expect_eq "the guest's agent is not visible" "no" "$(x demo c sh -c 'test -e /usr/bin/kcr-agent && echo yes || echo no')"
expect_eq "its hostname" "c" "$(x demo c hostname)"
expect_eq "kcr's /etc/hostname" "c" "$(x demo c cat /etc/hostname)"
expect_contains "kcr's /etc/hosts" "127.0.1.1	c" "$(x demo c cat /etc/hosts)"
expect_eq "/etc/resolv.conf a file, not the base's link" "regular file" \
  "$(x demo c stat -c %F /etc/resolv.conf | sed 's/regular empty file/regular file/')"
expect_eq "a minimal /dev" "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero" \
  "$(x demo c ls /dev | tr '\n' ' ' | sed 's/ $//')"
expect_eq "/dev/null works" "" "$(x demo c sh -c 'echo gone >/dev/null; cat /dev/null')"
expect_eq "/sys read-only" "1" "$(x demo c sh -c 'touch /sys/x 2>/dev/null; echo $?')"
mounts=$(x demo c cat /proc/self/mountinfo)
expect_not_contains "no shared mount (CRIU: unreachable sharing)" "shared:" "$mounts"
expect_not_contains "no slave mount" "master:" "$mounts"
expect_contains "its root is an overlay" " / / " "$(echo "$mounts" | grep overlay)"
expect_eq "its init is kcr-init, pid 1" "kcr-init" "$(x demo c cat /proc/1/comm)"

# Changes: a file written, one of the base's deleted, one changed, a directory made.
x demo c sh -c 'echo written >/data/new.txt; rm /etc/motd; echo changed >/data/base.txt; mkdir -p /var/lib/app; echo state >/var/lib/app/s' ||
  fail "change the root filesystem"

# last_count VM NAME: the counter's last value.
last_count() { x "$1" "$2" tail -n 1 /dev/shm/counter.log; }
check_changes() {
  local vm=$1 name=$2
  expect_eq "$vm/$name: the written file" "written" "$(x "$vm" "$name" cat /data/new.txt)"
  expect_eq "$vm/$name: the deleted file stays deleted" "no" \
    "$(x "$vm" "$name" sh -c 'test -e /etc/motd && echo yes || echo no')"
  expect_eq "$vm/$name: the changed file" "changed" "$(x "$vm" "$name" cat /data/base.txt)"
  expect_eq "$vm/$name: the new directory" "state" "$(x "$vm" "$name" cat /var/lib/app/s)"
}
check_changes demo c

# Three cycles in the same VM: the counter never resets, the changes stay.
prev=$(last_count demo c)
for round in 1 2 3; do
  kcr -q checkpoint demo c -o "round$round" >/dev/null || fail "checkpoint $round"
  kcr -q restore demo "round$round" >/dev/null || fail "restore $round"
  sleep 1
  now=$(last_count demo c)
  if [ "${now:-0}" -gt "${prev:-0}" ] 2>/dev/null; then pass; else fail "round $round: counter $prev -> $now"; fi
  first=$(x demo c head -n 1 /dev/shm/counter.log)
  expect_eq "round $round: the log starts at 1 (no restart)" "1" "$first"
  prev=$now
done
check_changes demo c
expect_true "the checkpoint carries the changes" \
  test -s "$KCR_DATA_DIR/checkpoints/round3/images/rootfs-diff.tar"
expect_contains "and names its base" "rootfs: \"sha256:" \
  "$(sed 's/rootfs: sha256/rootfs: "sha256/' "$KCR_DATA_DIR/checkpoints/round3/manifest.yaml")"
kcr -q checkpoints verify round3 >/dev/null || fail "verify a rootfs checkpoint"
# Exactly the three /etc binds are external mounts in CRIU's images (externalizing every
# sub-path bind breaks restore); the root is mapped back by --root at restore.
mounts=$(kcr checkpoints inspect round3 --mounts)
for f in hosts hostname resolv.conf; do
  expect_contains "/etc/$f is external in the images" "/etc/$f  tmpfs tmpfs (external kcr-etc-$f)" "$mounts"
done
expect_eq "and nothing else is" "3" "$(grep -c external <<<"$mounts")"
expect_contains "the root is the overlay" "/  overlay overlay" "$mounts"

# A fresh VM: kcr puts the base there itself.
kcr -q checkpoint demo c -o moved >/dev/null || fail "checkpoint to move"
kcr -q vm start fresh >/dev/null || fail "vm start fresh"
kcr -q restore fresh moved --name c2 >/dev/null || fail "restore in a fresh VM"
sleep 1
check_changes fresh c2
expect_eq "fresh: its hostname is the one it ran with" "c" "$(x fresh c2 hostname)"
n=$(last_count fresh c2)
if [ "${n:-0}" -gt "${prev:-0}" ] 2>/dev/null; then pass; else fail "fresh VM: counter $prev -> $n"; fi

# A base that is not the one it ran on is refused, naming both digests; without the store's
# copy of the base, restore says how to give it.
other=$KCR_TEST_TMP/other
cp -a "$root" "$other"
echo "different" >"$other/data/base.txt"
kcr -q vm start third >/dev/null || fail "vm start third"
expect_failure "another base" "its digest is sha256:" \
  kcr restore third moved --name c3 --rootfs "$other"
expect_contains "naming the checkpoint's digest too" "the checkpoint's sha256:" "$last_err"
mkdir -p "$KCR_TEST_TMP/aside"
mv "$KCR_DATA_DIR/rootfs/"*.tar "$KCR_TEST_TMP/aside/"
expect_failure "no base on this host" "not on this host" kcr restore third moved --name c3
expect_contains "the hint says how" "--rootfs" "$last_err"
expect_true "nothing of the failed restores runs" \
  test -z "$(kcr ps third | grep c3)"
kcr -q restore third moved --name c3 --rootfs "$KCR_TEST_TMP/rootfs.tar.gz" >/dev/null ||
  fail "restore with the base given again"
check_changes third c3

# Migrate into a fresh VM, plain and with pre-copy.
kcr migrate fresh c2 --to m1 >/dev/null 2>"$KCR_TEST_TMP/migrate.err" || fail "migrate"
check_changes m1 c2
# The base goes into the destination before the workload is frozen: not in the downtime.
expect_eq "the base moves before the freeze" "root filesystem freeze" \
  "$(grep -oE '\] (root filesystem|freeze):' "$KCR_TEST_TMP/migrate.err" | sed 's/^\] //; s/:$//' | tr '\n' ' ' | sed 's/ $//')"
kcr -q migrate m1 c2 --to m2 --pre-dump 2 >/dev/null || fail "migrate --pre-dump 2"
check_changes m2 c2
n2=$(last_count m2 c2)
if [ "${n2:-0}" -gt "${n:-0}" ] 2>/dev/null; then pass; else fail "after migrate: counter $n -> $n2"; fi
finish
