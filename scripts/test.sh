#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite:
#  1. unit and integration tests (real QEMU, real guest kernel, real CRIU)
#  2. the unit tests and the integration tests again with kcr built with
#     AddressSanitizer + UndefinedBehaviorSanitizer (the guest image keeps the
#     regular agent)
# Exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)

"$root/scripts/setup.sh" </dev/null

echo "== tests (regular build)"
ctest --test-dir "$root/build" --output-on-failure --timeout 900

echo "== tests (ASan + UBSan build)"
cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKCR_SANITIZE=ON >/dev/null
cmake --build "$root/build-asan" -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$root/build-asan" --output-on-failure --timeout 900
