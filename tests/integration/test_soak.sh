#!/usr/bin/env bash
# Soak: many cycles in a row on the counter and on a 10 MB buffer, with no
# failure, and no leak: the agent's open fds, the guest's process count and
# kcr's resident memory stay flat from cycle 10 on. KCR_SOAK_COUNT sets the
# count (CI: 30, 20 in the sanitized pass; scripts/soak runs 100).
source "$(dirname "$0")/lib.sh"
count=${KCR_SOAK_COUNT:-30}
sanitized=0
# Not `ldd | grep -q`: under pipefail, ldd killed by SIGPIPE when grep stops early
# makes the pipeline fail, and a sanitized kcr would then be judged as a plain one.
libs=$(ldd "$KCR" 2>/dev/null || true)
if [[ "$libs" == *libasan* ]]; then sanitized=1; fi

# field NAME JSON: the values of NAME, one per cycle.
field() { grep -Eo "\"$1\":[0-9]+" <<<"$2" | cut -d: -f2; }

# flat WHAT NAME SLACK JSON: max - min of NAME over cycles 10..count is at most SLACK.
flat() {
  local what=$1 name=$2 slack=$3 json=$4 values spread
  values=$(field "$name" "$json" | tail -n +10)
  if [ -z "$values" ]; then fail "$what: no $name in the cycle's JSON"; return; fi
  spread=$(sort -n <<<"$values" | sed -n '1p;$p' | paste -sd' ' | awk '{print $2 - $1}')
  if [ "$spread" -le "$slack" ]; then pass; else fail "$what: $name moved by $spread (> $slack) from cycle 10 on: $(paste -sd' ' <<<"$values")"; fi
}

for scenario in counter membuf; do
  out=$(kcr cycle --scenario "$scenario" --count "$count" --json)
  expect_eq "$scenario: $count cycles exit 0" "0" "$?"
  expect_eq "$scenario: every cycle survived" "$count" "$(grep -o '"survived":true' <<<"$out" | wc -l)"
  flat "$scenario" agent_fds 0 "$out"
  flat "$scenario" guest_processes 0 "$out"
  if [ "$sanitized" = 1 ]; then
    echo "note: $scenario: kcr's memory not judged: AddressSanitizer's quarantine grows it by design"
  else
    flat "$scenario" host_rss_kib 4096 "$out"
  fi
done
finish
