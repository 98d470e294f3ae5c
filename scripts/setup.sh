#!/usr/bin/env bash
# Sets kcr up on a fresh Debian 12 machine: installs what it needs from
# Debian's packages, builds kcr and kcr-agent into build/, links kcr into
# /usr/local/bin (when root) and builds the default guest image.
# Idempotent: run it again and it only does what is missing.
#   scripts/setup.sh [--no-image]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build_image=1
for arg in "$@"; do
  case "$arg" in
    --no-image) build_image=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi

packages=(
  # build
  g++ cmake ninja-build pkg-config clang-format
  libcli11-dev libfmt-dev libprotobuf-dev protobuf-compiler libvirt-dev
  libarchive-dev libyaml-cpp-dev libgtest-dev
  # run: the VM, and what goes into the guest image
  qemu-system-x86 criu busybox-static tar nftables
  # kcr image build --kernel source: Debian's kernel source and what building it takes
  # (not built here: scripts/build-source-kernel.sh does, ~11 minutes on 2 cores)
  linux-source-6.1 make gcc bc bison flex libelf-dev lz4 xz-utils
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" </dev/null
fi
# kcr image build fetches the kernel with apt-get download: it needs package lists.
if ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; then
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
fi

echo "setup: building kcr"
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build"

if [ "$(id -u)" -eq 0 ]; then
  ln -sf "$root/build/cli/kcr" /usr/local/bin/kcr
  mkdir -p /usr/local/share/man/man1
  ln -sf "$root/man/kcr.1" /usr/local/share/man/man1/kcr.1
fi

if [ "$build_image" -eq 1 ]; then
  echo "setup: building the default guest image"
  "$root/build/cli/kcr" image build
fi
echo "setup: done. Try: kcr vm start demo"
