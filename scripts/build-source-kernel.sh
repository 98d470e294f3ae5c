#!/usr/bin/env bash
# Builds kcr's own guest kernel from Debian's linux-source-6.1 (everything built in, CRIU +
# microvm options from images/kernel/criu.config) and a guest image "source" booting it,
# then proves it: kcr check and a 3-cycle kcr cycle on that image.
# Takes ~11 minutes of compiling on 2 cores, once: the kernel is cached by (source version,
# fragment hash) under the cache dir's kernels/. Afterwards `kcr image build` (auto) makes
# the default image use it too; --kernel debian keeps Debian's cloud kernel.
#   scripts/build-source-kernel.sh [--name IMAGE] [--no-check]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
name=source
check=1
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift ;;
    --no-check) check=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "build-source-kernel.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

"$root/scripts/setup.sh" --no-image </dev/null
kcr=$root/build/cli/kcr
"$kcr" image build --kernel source --name "$name"
"$kcr" image check-kernel --image "$name"
if [ "$check" -eq 1 ]; then
  vm=srck-$$
  trap '"$kcr" -q vm stop "$vm" >/dev/null 2>&1 || true' EXIT
  "$kcr" vm start "$vm" --image "$name"
  # Only the guest's verdict counts here: the host part also wants a default image.
  out=$("$kcr" check "$vm") || true
  echo "$out"
  if ! grep -q "Looks good." <<<"$out"; then
    echo "build-source-kernel.sh: criu check failed in the source kernel's guest" >&2
    exit 1
  fi
  "$kcr" -q vm stop "$vm"
  "$kcr" cycle --image "$name" --count 3
fi
