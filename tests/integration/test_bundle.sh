#!/usr/bin/env bash
# kcr run --bundle: an OCI runtime bundle as runc takes it (config.json + rootfs). A read-only
# root (with the writable overlay under it that CRIU needs), a tmpfs mount, a user, a hostname
# and a memory limit, each still so after a checkpoint and a restore in a fresh VM; and what
# kcr cannot honour refused, naming the field, with nothing left running.
source "$(dirname "$0")/lib.sh"

[ -x /bin/busybox ] || { echo "SKIPPED: /bin/busybox (busybox-static) is missing"; exit 77; }

bundle=$KCR_TEST_TMP/bundle
mkdir -p "$bundle/rootfs"/{bin,etc,tmp}
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in sh cat echo sleep test touch id hostname tail grep head; do
  ln -s busybox "$bundle/rootfs/bin/$applet"
done
echo "app:x:1000:1000::/tmp:/bin/sh" >"$bundle/rootfs/etc/passwd"
mkdir -p "$bundle/rootfs/srv"
echo "shared from the rootfs" >"$bundle/rootfs/srv/note"

# config VARIANT: the bundle's config.json, with VARIANT's change (python edits the JSON).
config() {
  python3 - "$bundle/config.json" "$1" <<'EOF'
import json, sys
path, variant = sys.argv[1], sys.argv[2]
c = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False,
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
        "args": ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i >>/scratch/count; sleep 0.2; done"],
        "env": ["PATH=/bin", "GREETING=hello"],
        "cwd": "/tmp",
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "bundled",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=1777", "size=8m"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
    ],
    "linux": {
        "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
        "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 64}},
    },
}
if variant == "capabilities":
    c["process"]["capabilities"] = {"bounding": ["CAP_KILL"]}
elif variant == "network":
    c["linux"]["namespaces"].append({"type": "network"})
elif variant == "bind":
    c["mounts"].append({"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind"]})
elif variant == "good":
    # A bind of a directory of its own root filesystem, read-only.
    c["mounts"].append({"destination": "/shared", "type": "bind", "source": "rootfs/srv",
                        "options": ["rbind", "ro"]})
elif variant == "unknown-mount":
    c["mounts"].append({"destination": "/x", "type": "ext4", "source": "/dev/vda"})
elif variant == "broken":
    open(path, "w").write("{\"ociVersion\": ")
    sys.exit(0)
json.dump(c, open(path, "w"), indent=2)
EOF
}

# Shared guest mounts, as in test_rootfs: the bundle's mounts must still come out private.
export KCR_GUEST_SHARED_MOUNTS=1
kcr -q vm start demo >/dev/null || fail "vm start"

# Refused, naming the field; nothing runs.
for v in capabilities:process.capabilities network:'"network" is not supported' \
  bind:'mounts[3] (/data) binds the host path /srv' unknown-mount:'"/x" has type "ext4"' broken:'config.json'; do
  config "${v%%:*}"
  expect_failure "a bundle with ${v%%:*}" "${v#*:}" kcr run demo --name bad --bundle "$bundle"
done
expect_failure "a command beside --bundle" "no command" kcr run demo --name bad --bundle "$bundle" -- sh
expect_failure "a bundle without config.json" "config.json" kcr run demo --name bad --bundle "$KCR_TEST_TMP"
expect_not_contains "nothing of them runs" "bad" "$(kcr ps demo)"

config good
kcr run demo --name app --bundle "$bundle" >/dev/null || fail "run the bundle"
wait_for "it counts into its tmpfs" 30 kcr exec demo app -- test -s /scratch/count

# check VM NAME: what the bundle asked for.
check() {
  local vm=$1 name=$2
  expect_eq "$vm: the command runs as the bundle's user" "uid=1000 gid=1000" \
    "$(kcr exec "$vm" "$name" -- sh -c "grep -E '^(Uid|Gid):' /proc/2/status | awk '{print \$2}' | tr '\n' ' '" |
      awk '{print "uid=" $1 " gid=" $2}')"
  expect_contains "$vm: with its additional group" "Groups:	5" "$(kcr exec "$vm" "$name" -- grep Groups /proc/2/status)"
  expect_eq "$vm: its environment" "GREETING=hello" \
    "$(kcr exec "$vm" "$name" -- sh -c 'tr "\0" "\n" </proc/2/environ | grep GREETING')"
  expect_eq "$vm: its cwd" "/tmp" "$(kcr exec "$vm" "$name" -- sh -c 'readlink /proc/2/cwd')"
  expect_eq "$vm: its hostname" "bundled" "$(kcr exec "$vm" "$name" -- hostname)"
  expect_eq "$vm: the root is read-only" "1" \
    "$(kcr exec "$vm" "$name" -- sh -c 'touch /etc/new 2>/dev/null; echo $?')"
  expect_contains "$vm: mounted ro" " / / ro,nosuid" "$(kcr exec "$vm" "$name" -- grep ' / / ' /proc/self/mountinfo)"
  expect_not_contains "$vm: no mount shared with the guest's" "shared:" \
    "$(kcr exec "$vm" "$name" -- cat /proc/self/mountinfo)"
  expect_contains "$vm: the mqueue mount" " /dev/mqueue " "$(kcr exec "$vm" "$name" -- grep mqueue /proc/self/mountinfo)"
  expect_eq "$vm: /sys read-only" "1" "$(kcr exec "$vm" "$name" -- sh -c 'touch /sys/x 2>/dev/null; echo $?')"
  expect_contains "$vm: the tmpfs mount, its size" "size=8192k" \
    "$(kcr exec "$vm" "$name" -- grep ' /scratch ' /proc/self/mountinfo)"
  expect_eq "$vm: the bind mount of its own /srv" "shared from the rootfs" \
    "$(kcr exec "$vm" "$name" -- cat /shared/note)"
  expect_contains "$vm: read-only" " /shared ro," "$(kcr exec "$vm" "$name" -- grep ' /shared ' /proc/self/mountinfo)"
  expect_eq "$vm: the memory limit" "67108864" \
    "$(kcr exec "$vm" "$name" -- cat /sys/fs/cgroup/kcr/$name/memory.max)"
  expect_eq "$vm: the pids limit" "64" "$(kcr exec "$vm" "$name" -- cat /sys/fs/cgroup/kcr/$name/pids.max)"
  expect_eq "$vm: in its cgroup" "0::/kcr/$name" "$(kcr exec "$vm" "$name" -- cat /proc/2/cgroup)"
}
check demo app
before=$(kcr exec demo app -- tail -n 1 /scratch/count)

kcr -q checkpoint demo app -o bundled >/dev/null || fail "checkpoint"
kcr -q vm start fresh >/dev/null || fail "vm start fresh"
kcr -q restore fresh bundled >/dev/null || fail "restore in a fresh VM"
sleep 1
check fresh app
after=$(kcr exec fresh app -- tail -n 1 /scratch/count)
if [ "${after:-0}" -gt "${before:-0}" ] 2>/dev/null; then pass; else fail "count $before -> $after"; fi
expect_eq "the tmpfs kept what it held (the count starts at 1)" "1" "$(kcr exec fresh app -- head -n 1 /scratch/count)"

# And once more, from the restored copy: what it was restored with it checkpoints again.
kcr -q checkpoint fresh app -o again >/dev/null || fail "checkpoint the restored copy"
kcr -q restore demo again --name app2 >/dev/null || fail "restore it back"
check demo app2
finish
