#!/usr/bin/env bash
# Shell completion as a user meets it: bash-completion loads the generated script, and
# TAB offers commands, subcommands, option values and the names kcr knows: running VMs,
# the workloads of the VM typed before, checkpoints, guest images, scenarios.
source "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)
image=${KCR_TEST_IMAGE:-default}

docs=$KCR_TEST_TMP/docs
mkdir -p "$docs/completions"
kcr __describe --bash "$docs/completions/kcr" --zsh "$docs/_kcr" || fail "kcr __describe failed"

# offers WORDS...: what TAB offers for the command line WORDS (the last one is the word
# under the cursor), one a line, sorted, through the function 'complete -p kcr' names.
# With bash-completion installed its loader finds the script as it finds an installed one.
offers() {
  bash -c '
    docs=$1
    shift
    if [ -f /usr/share/bash-completion/bash_completion ]; then
      export BASH_COMPLETION_USER_DIR=$docs
      source /usr/share/bash-completion/bash_completion
      _completion_loader kcr
    else
      source "$docs/completions/kcr"
    fi
    fn=$(complete -p kcr 2>/dev/null | sed -n "s/.*-F \([^ ]*\).*/\1/p")
    [ -n "$fn" ] || { echo "no completion for kcr" >&2; exit 1; }
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    "$fn" kcr "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$docs" "$KCR" "$@" | sed '/^$/d' | sort | tr '\n' ' '
}

# zsh_offers WORDS...: the same through the zsh script, compadd and _describe stubbed;
# like zsh'"'"'s own, the stubs keep only the candidates that match the word typed so far.
zsh_offers() {
  zsh -fc '
    compadd() { [[ $1 == -- ]] && shift; local w; for w; do [[ $w == ${words[CURRENT]}* ]] && print -r -- $w; done; }
    _describe() { local w; for w in ${${(P)4}%%:*}; do [[ $w == ${words[CURRENT]}* ]] && print -r -- $w; done; }
    _files() { print -r -- "<files>"; }
    script=$1
    shift
    words=("$@")
    CURRENT=$#
    source "$script"' _ "$docs/_kcr" "$KCR" "$@" | sed '/^$/d' | sort | tr '\n' ' '
}

if [ -f /usr/share/bash-completion/bash_completion ]; then pass; else
  echo "note: bash-completion is not installed; the script is sourced directly"
fi

# Commands, subcommands, options and fixed choices.
expect_eq "kcr chec<TAB>" "check checkpoint checkpoints " "$(offers chec)"
expect_eq "kcr vm st<TAB>" "start stop " "$(offers vm st)"
expect_eq "kcr checkpoints <TAB>" "diff export import inspect ls rm show verify " "$(offers checkpoints '')"
expect_contains "kcr checkpoint --t<TAB>" "--tcp-established --tcp-skip-in-flight" \
  "$(offers checkpoint --t)"
expect_eq "kcr vm start x --accel <TAB>" "auto kvm tcg " "$(offers vm start x --accel '')"
expect_eq "kcr vm start x --accel=<TAB>" "auto kvm tcg " "$(offers vm start x --accel =)"
expect_eq "kcr vm start x --accel=t<TAB>" "tcg " "$(offers vm start x --accel = t)"
# Every scenario of the registry, as kcr scenarios ls lists them, sorted.
scenarios=$(kcr scenarios ls --json | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | sort | tr '\n' ' ')
expect_contains "scenarios listed" "counter " "$scenarios"
expect_eq "kcr cycle --scenario <TAB>" "$scenarios" "$(offers cycle --scenario '')"
expect_eq "kcr migrate --scenario <TAB>" "$scenarios" "$(offers migrate --scenario '')"
expect_contains "kcr vm start x --image <TAB>" "$image" "$(offers vm start x --image '')"
expect_eq "kcr vm start <TAB> (a new name)" "" "$(offers vm start '')"
expect_eq "kcr run <TAB> without VMs" "" "$(offers run '')"

# Names of running VMs, the workloads of the VM typed before, checkpoints.
expect_true "vm start" kcr -q vm start cvm --memory 512M
kcr -q run cvm --name counter -- sh -c 'while :; do sleep 1; done' >/dev/null ||
  fail "run counter"
expect_eq "kcr ps <TAB>" "cvm " "$(offers ps '')"
expect_eq "kcr vm stop <TAB>" "cvm " "$(offers vm stop '')"
expect_eq "kcr --quiet ps c<TAB>" "cvm " "$(offers --quiet ps c)"
expect_eq "kcr exec cvm <TAB>" "counter " "$(offers exec cvm '')"
expect_eq "kcr logs cvm --follow c<TAB>" "counter " "$(offers logs cvm --follow c)"
expect_eq "kcr cycle --vm cvm --workload <TAB>" "counter " "$(offers cycle --vm cvm --workload '')"
expect_eq "kcr exec nosuchvm <TAB>" "" "$(offers exec nosuchvm '')"
kcr -q checkpoint cvm counter -o cp1 --leave-running >/dev/null || fail "checkpoint cp1"
expect_eq "kcr restore cvm <TAB>" "cp1 " "$(offers restore cvm '')"
expect_eq "kcr checkpoints rm cp1 <TAB> (repeats)" "cp1 " "$(offers checkpoints rm cp1 '')"
expect_eq "kcr restore cvm cp1 <TAB> (no more arguments)" "" "$(offers restore cvm cp1 '')"
expect_eq "kcr run cvm --name x -- <TAB> (the workload's command)" "" \
  "$(offers run cvm --name x -- '')"

if command -v zsh >/dev/null; then
  expect_eq "zsh: kcr chec<TAB>" "check checkpoint checkpoints " "$(zsh_offers chec)"
  expect_eq "zsh: kcr ps <TAB>" "cvm " "$(zsh_offers ps '')"
  expect_eq "zsh: kcr exec cvm <TAB>" "counter " "$(zsh_offers exec cvm '')"
  expect_eq "zsh: kcr restore cvm <TAB>" "cp1 " "$(zsh_offers restore cvm '')"
  expect_eq "zsh: kcr vm start x --accel <TAB>" "auto kvm tcg " "$(zsh_offers vm start x --accel '')"
  expect_eq "zsh: kcr --config <TAB>" "<files> " "$(zsh_offers --config '')"
else
  echo "note: zsh is not installed, its completion is not checked"
fi

finish
