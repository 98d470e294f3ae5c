#!/usr/bin/env bash
# Makes a libvirt daemon answer on qemu:///system for kcr's libvirt backend
# (kcr vm start --backend libvirt): installs Debian's libvirt daemon and its
# QEMU driver when missing, then starts virtlogd and libvirtd unless they
# already run. Works without systemd (CI has none): the daemons are started
# with -d, not through units. Idempotent: run it again and it only checks.
# Debian 12 ships the monolithic libvirtd (its modular virtqemud is not packaged).
#   scripts/libvirt-up.sh [--no-install]
# Exit status: 0 when the daemon answers, 1 when it cannot be brought up here
# (the last line says why).
set -euo pipefail
install=1
for arg in "$@"; do
  case "$arg" in
    --no-install) install=0 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
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

# The package's postinst starts the daemons through systemd when it runs; ask again.
if answers; then
  say "libvirt answers on $uri"
  exit 0
fi

# virtlogd writes the domains' console logs; libvirtd refuses to start a
# domain whose log it cannot hand to it.
fix_kvm_node
if ! pgrep -x virtlogd >/dev/null; then
  say "starting virtlogd"
  "${sudo[@]}" virtlogd -d || die "virtlogd -d failed"
fi
if ! pgrep -x libvirtd >/dev/null; then
  say "starting libvirtd"
  "${sudo[@]}" libvirtd -d || die "libvirtd -d failed"
fi
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
