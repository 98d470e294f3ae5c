#!/usr/bin/env bash
# A real container root filesystem: Debian minbase with python3 (debootstrap from Debian's
# packages, cached by scripts/rootfs-debian), serving a file the workload wrote with
# `python3 -m http.server`. It keeps answering with the same content after 3 cycles, a
# migrate into a fresh VM and a pre-copy migrate.
source "$(dirname "$0")/lib.sh"

rootfs=$("$(dirname "$0")/../../scripts/rootfs-debian") || fail "make the Debian root filesystem"
[ -s "$rootfs" ] || { finish; exit 1; }

# The base (~230 MB) sits in guest memory: a VM of 1 GiB.
kcr -q vm start demo --memory 1G >/dev/null || fail "vm start"
# The page holds a token drawn at start: a server started again would serve another.
serve='echo "served by $(hostname) from $(cat /etc/debian_version), token $(od -An -N8 -tx1 /dev/urandom | tr -d " ")" >/srv/index.html; exec python3 -m http.server 8000 --bind 127.0.0.1 --directory /srv'
kcr run demo --name web --rootfs "$rootfs" -- sh -c "$serve" >/dev/null || fail "run the server"

# get VM NAME: the page, fetched inside the workload with python3's own client.
get() {
  kcr exec "$1" "$2" -- python3 -c \
    "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/index.html', timeout=10).read().decode(), end='')"
}
wait_for "the server answers" 120 get demo web
page=$(get demo web)
expect_contains "the page the workload wrote" "served by web from 12." "$page"
expect_eq "python3 is the rootfs's, not the guest's" "/usr/bin/python3" \
  "$(kcr exec demo web -- sh -c 'command -v python3')"
expect_contains "Debian's os-release" "Debian GNU/Linux 12" "$(kcr exec demo web -- cat /etc/os-release)"

out=$(kcr cycle --vm demo --workload web --count 3 2>&1) || fail "3 cycles: $out"
expect_eq "after 3 cycles" "$page" "$(get demo web)"

kcr -q migrate demo web --to fresh >/dev/null || fail "migrate into a fresh VM"
expect_eq "after a migrate into a fresh VM" "$page" "$(get fresh web)"
expect_not_contains "the source no longer runs it" "running" "$(kcr ps demo | grep web)"

kcr -q migrate fresh web --to precopy --pre-dump 2 >/dev/null || fail "migrate --pre-dump 2"
expect_eq "after a pre-copy migrate" "$page" "$(get precopy web)"
expect_eq "the server is the command itself, as started" "python3" \
  "$(kcr exec precopy web -- cat /proc/2/comm)"
finish
