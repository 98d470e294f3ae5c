#!/usr/bin/env bash
# Makes a libvirt daemon answer on qemu:///system for kcr's libvirt backend
# (kcr vm start --backend libvirt): installs Debian's libvirt daemon and its
# QEMU driver when missing, then starts virtlogd and libvirtd unless they
# already run. Works without systemd (CI has none): the daemons are started
# with -d, not through units. Idempotent: run it again and it only checks.
# Debian 12 ships the monolithic libvirtd (its modular virtqemud is not packaged).
# --peer brings up a second daemon instead, standing in for another host: it
# answers on qemu+tcp://127.0.0.1:16510/system, in a mount namespace of its own
# where /run/libvirt, /var/lib/libvirt, /etc/libvirt, /var/cache/kcr and /tmp
# are its own (under /var/lib/kcr-libvirt-peer), so it sees none of this host's
# kcr files and kcr must reach its VMs the way it reaches another host's.
#   scripts/libvirt-up.sh [--no-install] [--peer]
# Exit status: 0 when the daemon answers, 1 when it cannot be brought up here
# (the last line says why).
set -euo pipefail
install=1
peer=0
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    --peer) peer=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "libvirt-up.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

uri=qemu:///system
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo -n); fi

say() { echo "libvirt-up: $*"; }
die() { echo "libvirt-up: $*" >&2; exit 1; }

# libvirt checks /dev/kvm as the user its QEMU runs as (libvirt-qemu, group
# kvm). Without udev (a container) the node stays root's alone, KVM reads as
# gone at every look, and libvirt probes QEMU anew a dozen times per domain
# start (~50 s). Give it the owner and mode Debian's udev rules give it.
fix_kvm_node() {
  [ -c /dev/kvm ] && getent group kvm >/dev/null || return 0
  if [ "$(stat -c %G /dev/kvm)" != kvm ]; then
    say "giving /dev/kvm group kvm, mode 0660, as udev would"
    { "${sudo[@]}" chgrp kvm /dev/kvm && "${sudo[@]}" chmod 0660 /dev/kvm; } ||
      say "could not: domain starts will be slow (libvirt re-probes QEMU)"
  fi
}

# The QEMU driver listing its domains: fast (virsh version takes seconds).
answers() { timeout 10 virsh -q -c "$uri" list --all </dev/null >/dev/null 2>&1; }

if [ "$peer" -eq 1 ]; then
  uri=qemu+tcp://127.0.0.1:16510/system
  base=/var/lib/kcr-libvirt-peer
fi

if command -v virsh >/dev/null && answers; then
  fix_kvm_node
  say "libvirt already answers on $uri"
  exit 0
fi

packages=(libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$install" -eq 1 ] || die "not installed: ${missing[*]} (run without --no-install)"
  say "installing ${missing[*]}"
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends "${missing[@]}" </dev/null; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null ||
      die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${missing[@]}" </dev/null ||
      die "apt-get install ${missing[*]} failed"
  fi
fi

# The second daemon: its own files, a TCP listener on loopback without
# authentication (nothing but this host reaches it), no cgroups of its own
# (the two daemons would name their domains' cgroups alike).
start_peer() {
  "${sudo[@]}" mkdir -p "$base"/{run,lib,cache,log,kcr-cache,tmp}
  if [ ! -d "$base/etc" ]; then
    "${sudo[@]}" cp -a /etc/libvirt "$base/etc.new"
    "${sudo[@]}" rm -f "$base"/etc.new/qemu/networks/autostart/*
    echo 'cgroup_controllers = [ ]' | "${sudo[@]}" tee -a "$base/etc.new/qemu.conf" >/dev/null
    "${sudo[@]}" mv "$base/etc.new" "$base/etc"
  fi
  printf '%s\n' 'listen_tls = 0' 'listen_tcp = 1' 'listen_addr = "127.0.0.1"' \
    'tcp_port = "16510"' 'auth_tcp = "none"' | "${sudo[@]}" tee "$base/libvirtd.conf" >/dev/null
  # A libvirtd that does not answer is replaced; a running virtlogd is kept (the peer's
  # QEMUs write their logs to it), the new namespace binds the same directories.
  local logd=1
  if [ -f "$base/libvirtd.pid" ] && "${sudo[@]}" kill -0 "$(cat "$base/libvirtd.pid")" 2>/dev/null; then
    say "stopping the peer's libvirtd, which does not answer"
    "${sudo[@]}" kill "$(cat "$base/libvirtd.pid")" || true
    sleep 1
  fi
  if [ -f "$base/virtlogd.pid" ] && "${sudo[@]}" kill -0 "$(cat "$base/virtlogd.pid")" 2>/dev/null; then
    logd=0
  fi
  say "starting the peer libvirtd on $uri"
  # shellcheck disable=SC2016 # expanded by the inner shell, from its argv
  "${sudo[@]}" unshare -m --propagation private sh -ec '
    b=$1
    mount --bind "$b/run" /run/libvirt
    mount --bind "$b/lib" /var/lib/libvirt
    mount --bind "$b/cache" /var/cache/libvirt
    mount --bind "$b/log" /var/log/libvirt
    mount --bind "$b/etc" /etc/libvirt
    mkdir -p /var/cache/kcr && mount --bind "$b/kcr-cache" /var/cache/kcr
    mount --bind "$b/tmp" /tmp
    if [ "$2" = 1 ]; then virtlogd -d -p "$b/virtlogd.pid"; fi
    libvirtd -d --listen -p "$b/libvirtd.pid" -f "$b/libvirtd.conf"' sh "$base" "$logd" ||
    die "the peer libvirtd did not start"
}

wait_answer() {
  for _ in $(seq 1 180); do
    if answers; then
      say "libvirt answers on $uri: $(virsh -c "$uri" version </dev/null 2>/dev/null |
        sed -n 's/^Running hypervisor: //p')"
      exit 0
    fi
    sleep 0.5
  done
  err=$(timeout 10 virsh -c "$uri" version </dev/null 2>&1 || true)
  die "libvirtd was started but $uri does not answer after 90 s: ${err//$'\n'/ }"
}

if [ "$peer" -eq 1 ]; then
  fix_kvm_node
  start_peer
  wait_answer
fi

# The package's postinst starts the daemons through systemd when it runs; ask again.
if answers; then
  say "libvirt answers on $uri"
  exit 0
fi

# virtlogd writes the domains' console logs; libvirtd refuses to start a
# domain whose log it cannot hand to it.
fix_kvm_node
# By their pid files: a peer's daemons (--peer) run under the same names.
runs() { [ -f "/run/$1.pid" ] && "${sudo[@]}" kill -0 "$(cat "/run/$1.pid")" 2>/dev/null; }
if ! runs virtlogd; then
  say "starting virtlogd"
  "${sudo[@]}" virtlogd -d || die "virtlogd -d failed"
fi
if ! runs libvirtd; then
  say "starting libvirtd"
  "${sudo[@]}" libvirtd -d || die "libvirtd -d failed"
fi
wait_answer
