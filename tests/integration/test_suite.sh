#!/usr/bin/env bash
# kcr suite, for real: every scenario in cycle mode and against the restart control (each
# probe must notice a workload started again instead of restored), a subset in the migrate
# modes, the four report formats, the HTML page rendered in headless Chromium, --compare,
# kcr scenarios ls and kcr migrate --scenario. KCR_SUITE_SCENARIOS=a,b limits the cycle run
# (scripts/test.sh does on its second and third passes).
source "$(dirname "$0")/lib.sh"

out=$KCR_TEST_TMP/out
mkdir -p "$out"
all=$(kcr scenarios ls --json | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | paste -sd, -)
n_all=$(tr ',' '\n' <<<"$all" | wc -l)
if [ "$n_all" -ge 5 ]; then pass; else fail "kcr scenarios ls lists only: $all"; fi
expect_contains "scenarios ls shows modes" "cycle,migrate" "$(kcr scenarios ls)"
scen=${KCR_SUITE_SCENARIOS:-$all}
n=$(tr ',' '\n' <<<"$scen" | wc -l)

# Bad input: refused before anything boots.
expect_failure "unknown mode" "no suite mode 'bogus'" kcr suite --modes cycle,bogus
expect_failure "unknown scenario" "no scenario named 'nope'" kcr suite --scenarios nope
expect_failure "report format" "cannot tell the report format" kcr suite --report "$out/r.txt"
echo '{"x":1}' >"$out/not-a-report.json"
expect_failure "compare a non-report" "not a kcr suite report" \
  kcr suite --compare "$out/not-a-report.json" "$out/not-a-report.json"

# Every scenario: cycle (2 rounds) and the restart control.
kcr suite --scenarios "$scen" --modes cycle,restart --count 2 --report "$out/suite.json" \
  --report "$out/suite.md" --report "$out/suite.xml" --report "$out/suite.html" \
  >"$out/matrix.txt" 2>"$out/progress.txt"
rc=$?
cat "$out/matrix.txt"
expect_eq "suite exit status (no fail, no xpass)" 0 "$rc"
[ $rc -eq 0 ] || grep -E 'fail|xpass' "$out/progress.txt" | tail -20 >&2
expect_eq "a progress line per case" $((2 * n)) "$(grep -cE '^\[[0-9]+/[0-9]+\] ' "$out/progress.txt")"
expect_eq "JSON: a case per scenario and mode" $((2 * n)) "$(grep -o '"outcome"' "$out/suite.json" | wc -l)"
expect_eq "JSON: no failure" 0 "$(grep -cE '"outcome": "(fail|xpass)"' "$out/suite.json")"
expect_eq "JUnit: a testcase per scenario and mode" $((2 * n)) "$(grep -c '<testcase ' "$out/suite.xml")"
expect_contains "Markdown has the matrix" "| scenario | cycle | restart |" "$(cat "$out/suite.md")"
for s in $(tr ',' ' ' <<<"$scen"); do
  expect_contains "matrix row for $s" "$s " "$(cat "$out/matrix.txt")"
  # The control must be caught: a probe a restarted workload passes proves nothing. A
  # passing JUnit testcase is a self-closing element; a failed one holds a <failure>.
  if grep -qE "<testcase classname=\"kcr\.$s\" name=\"restart\" time=\"[0-9.]+\"/>" "$out/suite.xml"; then
    pass
  else
    fail "restart control not caught for $s: $(grep -A2 "kcr.$s\" name=\"restart" "$out/suite.xml")"
  fi
done
expect_contains "compare a report with itself" "0 of $((2 * n)) cases changed" \
  "$(kcr suite --compare "$out/suite.json" "$out/suite.json")"

# The HTML page in a real browser: it renders, and its script drew one bar group per scenario.
chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  fail "chromium is not installed (scripts/setup.sh --test-tools installs it)"
else
  flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync)
  timeout 120 "$chromium" "${flags[@]}" --user-data-dir="$KCR_TEST_TMP/chromium1" \
    --dump-dom "file://$out/suite.html" >"$out/dom.html" 2>/dev/null
  expect_eq "chart: one bar group per scenario" "$n" "$(grep -o 'class="scenario-group"' "$out/dom.html" | wc -l)"
  expect_contains "chart: bars drawn" 'class="bar"' "$(cat "$out/dom.html")"
  timeout 120 "$chromium" "${flags[@]}" --user-data-dir="$KCR_TEST_TMP/chromium2" \
    --window-size=1200,900 --screenshot="$out/suite.png" "file://$out/suite.html" >/dev/null 2>&1
  size=$(stat -c %s "$out/suite.png" 2>/dev/null || echo 0)
  if [ "$size" -gt 10000 ]; then pass; else fail "screenshot of the report is $size bytes"; fi
fi

# The migrate modes on a subset: plain, pre-copy and post-copy into fresh VMs. userns-hostid
# (a user namespace, root as host uid 100000) moves except lazily; cgroup-v2 loses its limits
# in a fresh VM: both expected failures, in the modes the registry names and no others.
# KCR_SUITE_MIGRATE_SHORT=1 (scripts/test.sh's later passes, which the regular pass already
# covered in full) keeps counter and pipes only.
migrate_scenarios=counter,pipes,userns-hostid,cgroup-v2 migrate_cases=12 migrate_xfails=4
must_pass=("userns-hostid\" name=\"migrate" "userns-hostid\" name=\"pre-dump" "counter\" name=\"lazy")
if [ "${KCR_SUITE_MIGRATE_SHORT:-0}" = 1 ]; then
  migrate_scenarios=counter,pipes migrate_cases=6 migrate_xfails=0
  must_pass=("pipes\" name=\"pre-dump" "counter\" name=\"lazy")
fi
kcr suite --scenarios "$migrate_scenarios" --modes migrate,pre-dump,lazy \
  --report "$out/migrate.json" --report "$out/migrate.xml" \
  >"$out/migrate.txt" 2>"$out/migrate-progress.txt"
rc=$?
cat "$out/migrate.txt"
expect_eq "migrate suite exit status" 0 "$rc"
expect_eq "migrate suite: $migrate_cases cases" "$migrate_cases" "$(grep -o '"outcome"' "$out/migrate.json" | wc -l)"
expect_eq "migrate suite: $migrate_xfails expected failures" "$migrate_xfails" "$(grep -c '<skipped message="expected failure' "$out/migrate.xml")"
for c in "${must_pass[@]}"; do
  if grep -qE "<testcase classname=\"kcr\.$c\" time=\"[0-9.]+\"/>" "$out/migrate.xml"; then
    pass
  else
    fail "migrate suite: kcr.$c did not pass: $(grep -A2 "kcr.$c" "$out/migrate.xml")"
  fi
done

# kcr migrate --scenario: a temporary VM, moved, probed, both VMs stopped.
j=$(kcr migrate --scenario counter --json)
expect_contains "migrate --scenario survived" '"ok":true' "$j"
expect_contains "migrate --scenario: temporary VMs" '"temporary_vms":true' "$j"
expect_eq "no VM left behind" "" "$(ls "$KCR_STATE_DIR/vms" 2>/dev/null)"
expect_failure "migrate needs a workload" "needs VM and WORKLOAD, or --scenario" kcr migrate

finish
