#!/usr/bin/env bash
# kcr's main job on a fresh machine: boot a VM, run a counter workload in it,
# show it counting from inside its namespaces, and stop the VM.
set -euo pipefail
cd "$(dirname "$0")/.."
kcr=${KCR:-build/cli/kcr}
vm=kcr-demo-$$
trap '"$kcr" -q vm stop "$vm" >/dev/null 2>&1 || true' EXIT

"$kcr" vm start "$vm"
"$kcr" run "$vm" --name counter -- sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/c; echo "count $i"; sleep 1; done'
for _ in 1 2 3; do
  sleep 2
  echo "counter: $("$kcr" exec "$vm" counter -- cat /tmp/c)"
done
"$kcr" ps "$vm"
"$kcr" check "$vm" | grep -E 'criu check|guest'
"$kcr" vm stop "$vm"
trap - EXIT
