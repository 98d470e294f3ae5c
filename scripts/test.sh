#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh --test-tools) and runs the whole test suite:
#  1. unit and integration tests (real QEMU, real guest kernel, real CRIU)
#  2. with a kernel built from source (cached, or KCR_TEST_SOURCE_KERNEL=1): its image
#     checked and cycled
#  3. every libFuzzer target for 30 s (KCR_FUZZ_SECONDS), two at a time, then scripts/bench cr
#     in its short form (10 and 100 MB, one run): the table printed, timing never failing
#  4. the unit tests and the integration tests again with kcr built with
#     AddressSanitizer + UndefinedBehaviorSanitizer (the guest image keeps the
#     regular agent), on the other kernel flavor's image when 2 ran: one pass
#     covers both; its unit tests two at a time, its soak 20 cycles
# The compiling that 2-4 need (the source kernel, the sanitized build, the fuzzers) runs
# beside 1, niced: the integration tests mostly keep one core busy (one TCG vCPU).
# Each stage's line says how long the run has taken so far. Exits non-zero when anything
# fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=$(nproc)
start=$(date +%s)
stage() {
  local t=$(($(date +%s) - start))
  echo "== $* ($((t / 60)) min $((t % 60)) s so far)"
}

"$root/scripts/setup.sh" --test-tools </dev/null
stage "building the tests"
cmake --build "$root/build"

# Both guest kernels: Debian's cloud kernel and kcr's own, built from linux-source. Building
# it takes ~11 minutes on 2 cores, so only when asked (KCR_TEST_SOURCE_KERNEL=1) or when it
# is already cached; then the sanitized pass below runs on the flavor the default image
# does not use ('kcr image build' picks the source kernel once it is built).
kcr=$root/build/cli/kcr
kernel_cached=0
"$kcr" image check-kernel --source >/dev/null 2>&1 && kernel_cached=1
source_kernel=$kernel_cached
[ "${KCR_TEST_SOURCE_KERNEL:-0}" != 1 ] || source_kernel=1
source "$root/scripts/cache-dir.sh"
kernel_cache=$root/build/test-kernel-cache
background_log=$root/build/test-background.log
background() {
  set -euo pipefail
  renice -n 19 -p "$BASHPID" >/dev/null
  if [ "$source_kernel" -eq 1 ] && [ "$kernel_cached" -eq 0 ]; then
    # In a cache of its own, moved into place after the regular pass: until then every image
    # a test builds keeps Debian's kernel, as in a run without the source kernel.
    echo "== background: the source kernel"
    rm -rf "$kernel_cache"
    mkdir -p "$kernel_cache"
    cp -a "$cache/downloads" "$kernel_cache/"
    KCR_CACHE_DIR=$kernel_cache "$kcr" image build --kernel source --name source </dev/null
  fi
  echo "== background: the ASan + UBSan build"
  cmake -S "$root" -B "$root/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKCR_SANITIZE=ON >/dev/null
  cmake --build "$root/build-asan" -j "$jobs"
  echo "== background: the fuzz targets"
  "$root/scripts/fuzz" --build-only
}
set -m  # the background work gets a process group of its own, ended with the run
background >"$background_log" 2>&1 </dev/null &
background_pid=$!
set +m
trap 'kill -- -"$background_pid" 2>/dev/null || true' EXIT

stage "tests (regular build; the kernel, ASan and fuzz builds beside it: $background_log)"
ctest --test-dir "$root/build" --output-on-failure --timeout 900

stage "waiting for the background builds"
if ! wait "$background_pid"; then
  tail -n 40 "$background_log" >&2
  echo "test.sh: a background build failed (the whole log: $background_log)" >&2
  exit 1
fi
if [ -d "$kernel_cache/kernels" ]; then
  mkdir -p "$cache/kernels"
  for k in "$kernel_cache"/kernels/*; do
    [ -e "$k" ] || continue
    rm -rf "$cache/kernels/$(basename "$k")"
    mv "$k" "$cache/kernels/"
  done
  rm -rf "$kernel_cache"
fi

other=
if [ "$source_kernel" -eq 1 ]; then
  stage "source kernel: build (cached after the first time), kcr check, 3 cycles"
  "$root/scripts/build-source-kernel.sh" --name source </dev/null
  images=$("$kcr" image ls --json | sed 's/},{/}\n{/g')
  if grep '"name":"default"' <<<"$images" | grep -q '"kernel_flavor":"source"'; then
    other=debian
    "$kcr" image build --kernel debian --name debian
  else
    other=source
  fi
else
  stage "source kernel: not built, skipped (KCR_TEST_SOURCE_KERNEL=1 builds it, ~11 minutes)"
fi

stage "fuzzers: ${KCR_FUZZ_SECONDS:-30} s each, two at a time (scripts/fuzz runs them longer)"
"$root/scripts/fuzz" --seconds "${KCR_FUZZ_SECONDS:-30}" --jobs 2

stage "benchmark, short form: checkpoint and restore through the data disk and the port (printed, not gated)"
BENCH_NO_GATE=1 BENCH_CR_SIZES="10M 100M" "$root/scripts/bench" cr --runs 1 </dev/null

on=
if [ -n "$other" ]; then on=", integration tests on the image of the $other kernel"; fi
stage "tests (ASan + UBSan build$on)"
cmake --build "$root/build-asan" -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Guest images keep the regular agent and kcr-scenario even when a test builds one with the
# sanitized kcr: CRIU cannot dump a process with ASan's terabytes of shadow mappings.
export KCR_AGENT=$root/build/images/agent/kcr-agent
# The whole scenario suite ran in the regular pass; here a few cases exercise the sanitized
# suite engine (its threads, its reports) and the other kernel.
export KCR_SUITE_SCENARIOS=counter,pipes,tcp-established KCR_SUITE_MIGRATE_SHORT=1
# The soak's leak checks look from cycle 10 on: 20 cycles still give them 11 samples.
export KCR_SOAK_COUNT=20
if [ -n "$other" ]; then export KCR_TEST_IMAGE=$other; fi
# The unit tests (each ~0.1 s, 10x that sanitized) two at a time; the integration tests one
# at a time, as in the regular pass. A unit failure does not stop the integration tests.
failed=0
ctest --test-dir "$root/build-asan" --output-on-failure --timeout 900 -L unit -j "$jobs" || failed=1
ctest --test-dir "$root/build-asan" --output-on-failure --timeout 900 -LE unit || failed=1
if [ "$failed" -ne 0 ]; then
  echo "test.sh: tests failed in the ASan + UBSan pass (above)" >&2
  exit 1
fi
stage "all passed"
