#!/usr/bin/env bash
# The man pages and completion scripts come from kcr's command definitions: every page
# renders without a warning, the build's copies are current, and each command's options
# in --help are exactly those of its man page and of both completion scripts.
source "$(dirname "$0")/lib.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)

for tool in groff man lexgrog; do
  if ! command -v $tool >/dev/null; then
    echo "SKIPPED: $tool is not installed (scripts/setup.sh installs groff and man-db)"
    exit 77
  fi
done

docs=$KCR_TEST_TMP/docs
expect_true "kcr __describe" kcr __describe --man "$docs/man" --man-source "$src/man" \
  --bash "$docs/kcr.bash" --zsh "$docs/_kcr"

# What the build generated (cmake --build, target kcr_docs) is what kcr generates now.
build=$(dirname "$KCR")/..
if [ -f "$build/man/.generated" ]; then
  expect_eq "build/man is current" "" "$(diff -r -x .generated "$build/man" "$docs/man" 2>&1)"
  expect_eq "build/completion/kcr.bash is current" "" \
    "$(diff "$build/completion/kcr.bash" "$docs/kcr.bash" 2>&1)"
  expect_eq "build/completion/_kcr is current" "" "$(diff "$build/completion/_kcr" "$docs/_kcr" 2>&1)"
fi

# The commands, walked through --help: "vm start", "checkpoints ls", ...
commands=()
walk() {
  local path=$1 sub
  commands+=("$path")
  # shellcheck disable=SC2086
  for sub in $(kcr $path --help | sed -n '/^Subcommands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'); do
    walk "${path:+$path }$sub"
  done
}
walk ""
expect_true "more than 20 commands found in --help (got ${#commands[@]})" test ${#commands[@]} -gt 20

page_of() { local p=${1// /-}; echo "$docs/man/kcr${p:+-$p}.1"; }

# Options in --help: the first column of the Options section, split at commas.
help_options() {
  # shellcheck disable=SC2086
  kcr $1 --help | sed -n '/^Options:/,/^$/p' | sed -n 's/^  \(-[^ ]*\).*/\1/p' | tr ',' '\n' | sort -u
}

# Options in the page: the terms of the OPTIONS section's .TP paragraphs.
man_options() {
  sed -n '/^\.SH OPTIONS/,/^\.SH /p' "$1" | sed -n '/^\.TP/{n;p}' | sed 's/\\-/-/g' |
    grep -o '\\fB-[a-zA-Z0-9-]*' | sed 's/\\fB//' | sort -u
}

# Options bash offers for 'kcr COMMAND -', through the function 'complete -p kcr' names.
bash_options() {
  bash -c '
    script=$1
    shift
    source "$script"
    fn=$(complete -p kcr | sed -n "s/.*-F \([^ ]*\).*/\1/p")
    COMP_WORDS=("$@")
    COMP_CWORD=$(($# - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    "$fn" kcr - "${COMP_WORDS[COMP_CWORD - 1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$docs/kcr.bash" "$KCR" $1 - | sort -u
}

# The same for zsh, with compadd and _describe standing in for the completion system.
zsh_options() {
  zsh -fc '
    compadd() { [[ $1 == -- ]] && shift; print -rl -- "$@"; }
    _describe() { print -rl -- ${${(P)4}%%:*}; }
    _files() { print -r -- "<files>"; }
    script=$1
    shift
    words=("$@")
    CURRENT=$#
    source "$script"' _ "$docs/_kcr" "$KCR" $1 - | sort -u
}

have_zsh=0
command -v zsh >/dev/null && have_zsh=1
[ $have_zsh -eq 1 ] || echo "note: zsh is not installed, its completion is not checked"

for c in "${commands[@]}"; do
  page=$(page_of "$c")
  name=${c:-kcr}
  if [ ! -f "$page" ]; then
    fail "no man page $(basename "$page") for '$name'"
    continue
  fi
  # shellcheck disable=SC2086
  expected=$(help_options "$c")
  expect_eq "options of '$name' in its man page" "$expected" "$(man_options "$page")"
  expect_eq "options of '$name' in the bash completion" "$expected" "$(bash_options "$c")"
  if [ $have_zsh -eq 1 ]; then
    expect_eq "options of '$name' in the zsh completion" "$expected" "$(zsh_options "$c")"
  fi
done

# Every page: one per command and no other, the sections every page has, no warning
# from groff or man, and a NAME line whatis can read.
expect_eq "man pages" "${#commands[@]}" "$(ls "$docs/man"/*.1 | wc -l)"
for page in "$docs/man"/*.1; do
  p=$(basename "$page")
  for section in NAME SYNOPSIS DESCRIPTION OPTIONS '"EXIT STATUS"' FILES ENVIRONMENT '"SEE ALSO"'; do
    grep -qx ".SH $section" "$page" || fail "$p lacks the section $section"
  done
  [ "$p" = kcr.1 ] || grep -qx '.SH EXAMPLES' "$page" || fail "$p lacks the section EXAMPLES"
  expect_eq "groff warnings for $p" "" "$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1)"
  expect_eq "man warnings for $p" "" \
    "$(LC_ALL=C.UTF-8 MANWIDTH=80 MAN_KEEP_STDERR=1 man --warnings -l "$page" 2>&1 >/dev/null)"
  expect_true "whatis reads $p" lexgrog "$page"
done

# What the hand-written sources hold reaches the pages, and the exit code table too.
kcr1=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$docs/man/kcr.1" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g; s/.\x08//g')
expect_contains "kcr.1 lists the configuration keys" "boot_timeout" "$kcr1"
expect_contains "kcr.1 lists the checkpoint store" "/var/lib/kcr/checkpoints/NAME/" "$kcr1"
expect_contains "kcr.1 points at the command pages" "kcr-checkpoint(1)" "$kcr1"
expect_contains "kcr.1 has exit code 3" "cycle, migrate: A workload's state did not survive" "$kcr1"
cycle=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$docs/man/kcr-cycle.1" 2>/dev/null | sed 's/.\x08//g')
expect_contains "kcr-cycle.1 has exit code 3" "A workload's state did not survive" "$cycle"
expect_contains "kcr-cycle.1 has its examples" "kcr cycle --scenario membuf --count 5 --json" "$cycle"
expect_contains "kcr-cycle.1 has its hand-written prose" "10 MB buffer checksum" "$cycle"
ps=$(LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$docs/man/kcr-ps.1" 2>/dev/null | sed 's/.\x08//g')
expect_not_contains "kcr-ps.1 has no exit code 3" "did not survive" "$ps"

# A source for a page no command has is an error, not a page that silently vanishes.
cp -r "$src/man" "$KCR_TEST_TMP/src"
echo '.SH DESCRIPTION' >"$KCR_TEST_TMP/src/kcr-vm-frobnicate.1.in"
expect_failure "stray man source" "kcr-vm-frobnicate.1.in belongs to no command" \
  kcr __describe --man "$KCR_TEST_TMP/out" --man-source "$KCR_TEST_TMP/src"

finish
