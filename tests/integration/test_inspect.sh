#!/usr/bin/env bash
# kcr checkpoints inspect and diff read CRIU's images themselves: their process
# tree, open files, memory, sockets and mounts agree with crit's own output on
# the same images; an archive inspects as its stored checkpoint does, without
# writing anything; diff names the processes, fds and sockets that appeared
# between two checkpoints of one workload.
source "$(dirname "$0")/lib.sh"

kcr -q vm start demo >/dev/null || fail "vm start"
# The workload opens /etc/passwd and starts two children only once told to,
# so two checkpoints of it differ in exactly that.
kcr run demo --name w -- sh -c 'mkfifo /tmp/go; exec 5</etc/hostname; read x </tmp/go;
  exec 7</etc/passwd; sleep 1000 & nc -l -p 9000 & wait' >/dev/null || fail "run"
wait_for "workload waits on its fifo" 60 kcr exec demo w -- test -p /tmp/go
sleep 1
kcr -q checkpoint demo w -o before --leave-running || fail "checkpoint before"
kcr exec demo w -- sh -c 'echo go >/tmp/go' || fail "trigger"
wait_for "nc listens" 30 kcr exec demo w -- pidof nc
kcr -q checkpoint demo w -o after --leave-running || fail "checkpoint after"
images=$KCR_DATA_DIR/checkpoints/after/images

json=$(kcr checkpoints inspect after --json)
expect_eq "inspect --json exits 0" "0" "$?"
echo "$json" >"$KCR_TEST_TMP/after.json"

# crit's explorers (crit x DIR ps|fds) and decoded images (crit show) beside
# kcr's reading of the same files.
crit x "$images" ps >"$KCR_TEST_TMP/crit-ps" || fail "crit x ps"
crit x "$images" fds >"$KCR_TEST_TMP/crit-fds" || fail "crit x fds"
verdict=$(python3 - "$KCR_TEST_TMP" "$images" <<'PY'
import json, subprocess, sys
tmp, images = sys.argv[1], sys.argv[2]
kcr = json.load(open(tmp + "/after.json"))
procs = {p["pid"]: p for p in kcr["processes"]}
problems = []

def crit_show(name):
    return json.loads(subprocess.check_output(["crit", "show", images + "/" + name]))

# crit x ps: PID PGID SID COMM, children indented under their parent.
rows = [l.split() for l in open(tmp + "/crit-ps").read().splitlines()[1:]]
crit_ps = {int(r[0]): (int(r[1]), int(r[2]), r[3]) for r in rows}
mine = {pid: (p["pgid"], p["sid"], p["comm"]) for pid, p in procs.items()}
if crit_ps != mine:
    problems.append("ps: crit %s, kcr %s" % (crit_ps, mine))
tree = crit_show("pstree.img")["entries"]
for e in tree:
    p = procs.get(e["pid"])
    if not p or p["ppid"] != e["ppid"] or p["threads"] != e["threads"]:
        problems.append("pstree entry %s vs %s" % (e, p))

# crit x fds: per pid "fd: what", then cwd and root.
fds, pid = {}, None
for line in open(tmp + "/crit-fds").read().splitlines():
    if not line.startswith("\t"):
        pid = int(line)
        fds[pid] = {}
        continue
    k, v = line.strip().split(": ", 1)
    fds[pid][k] = v
for pid, p in procs.items():
    want = dict(fds.get(pid, {}))
    got = {}
    for f in p["fds"]:
        # crit names regular files, pipes and unix sockets; others as TYPE.ID
        got[str(f["fd"])] = f["what"] if f["type"] in ("REG", "PIPE", "UNIXSK") else "%s.%d" % (f["type"], f["id"])
    got["cwd"], got["root"] = p["cwd"], p["root"]
    if want != got:
        problems.append("fds of %d: crit %s, kcr %s" % (pid, want, got))

for pid, p in procs.items():
    vmas = crit_show("mm-%d.img" % pid)["entries"][0]["vmas"]
    mapped = sum(int(v["end"], 16) - int(v["start"], 16) for v in vmas)
    pm = crit_show("pagemap-%d.img" % pid)["entries"][1:]
    dumped = sum(e["nr_pages"] for e in pm if "PE_PRESENT" in e.get("flags", "") and "PE_PARENT" not in e.get("flags", ""))
    m = p["memory"]
    if (m["vmas"], m["mapped_bytes"], m["dumped_pages"]) != (len(vmas), mapped, dumped):
        problems.append("memory of %d: crit %s, kcr %s" % (pid, (len(vmas), mapped, dumped), m))

files = crit_show("files.img")["entries"]
crit_inet = sorted((f["isk"]["ino"], f["isk"]["src_port"], f["isk"]["state"].lower()) for f in files if f["type"] == "INETSK")
mine_inet = sorted((s["ino"], int(s["local"].rsplit(":", 1)[1]), s["state"]) for s in kcr["sockets"] if s["family"].startswith("inet"))
if crit_inet != mine_inet or not mine_inet:
    problems.append("inet sockets: crit %s, kcr %s" % (crit_inet, mine_inet))

mnts = [n for n in subprocess.check_output(["ls", images]).decode().split() if n.startswith("mountpoints-")]
crit_m = sorted((e["mnt_id"], e["parent_mnt_id"], e["mountpoint"], e["source"]) for n in mnts for e in crit_show(n)["entries"])
mine_m = sorted((m["mnt_id"], m["parent_mnt_id"], m["mountpoint"], m["source"]) for m in kcr["mounts"])
if crit_m != mine_m or not mine_m:
    problems.append("mounts: crit %s, kcr %s" % (crit_m, mine_m))

stats = kcr["stats"]
if not stats or stats["pages_written"] != sum(p["memory"]["dumped_pages"] for p in procs.values() if p["memory"]):
    problems.append("stats: pages_written %s" % (stats,))
print("agree" if not problems else "\n".join(problems))
PY
)
expect_eq "inspect agrees with crit (ps, pstree, fds, memory, sockets, mounts)" "agree" "$verdict"
expect_contains "the workload's tree is all there" '"comm":"nc"' "$json"

tree=$(kcr checkpoints inspect after --ps-tree --files)
expect_contains "tree view draws the children" "]  nc" "$tree"
expect_contains "tree view lists open files" "[REG 7]  /etc/passwd" "$tree"
expect_contains "tree view shows the listener" "[INETSK 3]  tcp [::]:9000 listen" "$tree"
out=$(kcr checkpoints inspect after --mounts --sockets --stats --memory)
expect_contains "mounts section" "/sys/fs/cgroup  cgroup2" "$out"
expect_contains "sockets section" "[inet6 tcp]  [::]:9000  listen" "$out"
expect_contains "stats section" "Pages written:" "$out"
expect_contains "memory lines" "pages dumped" "$out"

d=$(kcr checkpoints diff before after)
expect_contains "diff: sleep appeared" "] sleep (ppid 2)" "$d"
expect_contains "diff: nc appeared" "] nc (ppid 2)" "$d"
expect_eq "diff: two processes appeared" "2" "$(grep -c '^  + \[[0-9]*\] [a-z]* (ppid' <<<"$d")"
expect_contains "diff: fd 7 opened" "+ [2] fd 7: REG /etc/passwd" "$d"
expect_contains "diff: the listener appeared" "+ inet6 tcp [::]:9000 listen" "$d"
expect_not_contains "diff: fd 5 did not change" "fd 5:" "$d"
dj=$(kcr checkpoints diff before after --json)
expect_contains "diff --json: unchanged false" '"unchanged":false' "$dj"
expect_contains "diff --json: pid a number" '"pid":2,"change":"added"' "$dj"
same=$(kcr checkpoints diff after after)
expect_contains "diff of a checkpoint with itself" "no change" "$same"

# An archive inspects as the stored checkpoint does, and nothing is written.
archive=$KCR_TEST_TMP/after.tar.zst
kcr -q checkpoints export after -o "$archive" || fail "export"
before_files=$(find "$KCR_DATA_DIR" | wc -l)
from_archive=$(kcr checkpoints inspect "$archive" --json)
expect_eq "inspect FILE exits 0" "0" "$?"
strip() { sed 's/,"source":"[^"]*","round"/,"round"/'; }
expect_eq "archive and store inspect alike" "$(echo "$json" | strip)" "$(echo "$from_archive" | strip)"
expect_eq "inspecting an archive writes nothing" "$before_files" "$(find "$KCR_DATA_DIR" | wc -l)"
d=$(kcr checkpoints diff before "$archive")
expect_contains "diff against an archive" "] nc (ppid 2)" "$d"

head -c 20000 "$archive" >"$KCR_TEST_TMP/cut.tar.zst"
expect_failure "a truncated archive is refused" "archive $KCR_TEST_TMP/cut.tar.zst" \
  kcr checkpoints inspect "$KCR_TEST_TMP/cut.tar.zst"
expect_failure "an unknown name" "no checkpoint or archive named 'nope'" kcr checkpoints inspect nope
expect_failure "a round that does not exist" "has no pre-dump round 1" kcr checkpoints inspect after@1
expect_failure "diff needs two" "" kcr checkpoints diff after
expect_true "verify checks the images too" kcr -q checkpoints verify after
expect_true "verify an archive" kcr -q checkpoints verify "$archive"
finish
