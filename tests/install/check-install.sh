#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Installs the build into a scratch root, builds examples/embed.c against
# the installed copy with nothing but pkg-config and -lcubeb, as a user
# would, and runs it on the virtual device: its samples must be bit-exact
# in the WAV. Then checks what else is installed for aipc: its man page
# (rendering without a warning) and its bash completion (which completes
# commands, options and device ids), and that aipc --version is the
# project's.   usage: check-install.sh BUILD-DIR SOURCE-DIR
set -euo pipefail
build=$1
src=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

# shellcheck source=../checks.sh
. "$(dirname "$0")/../checks.sh"

meson install -C "$build" --destdir "$root" --quiet
prefix=$root$(meson introspect --buildoptions "$build" |
  python3 -c 'import json, sys
print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
pcdir=$(dirname "$(find "$root" -name audioipc-client.pc | head -1)")
export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$root
flags=$(pkg-config --cflags --libs audioipc-server audioipc-client)
echo "pkg-config: $flags"
cc -o "$root/embed" "$src/examples/embed.c" $flags -lcubeb -lm -pthread
libdir=$(dirname "$pcdir")
# From here on each check counts; none stops the others.
set +e
status=0
LD_LIBRARY_PATH=$libdir "$root/embed" \
  "virtual:clock=fast,out=$root/tone.wav" "$root/tone.wav" || status=$?
result "$status" "examples/embed.c, built against the installed copy, is bit-exact"

# --- aipc: version, man page, completion --------------------------------------

aipc=$prefix/bin/aipc
version=$(meson introspect --projectinfo "$build" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
got=$(LD_LIBRARY_PATH=$libdir "$aipc" --version) || true
echo "    | $got"
[ "$got" = "aipc $version" ]
result $? "the installed aipc --version says the project's version ($version)"

man1=$prefix/share/man/man1/aipc.1
completion=$prefix/share/bash-completion/completions/aipc
[ -f "$man1" ] && cmp -s "$man1" "$src/docs/aipc.1"
result $? "the man page is installed as share/man/man1/aipc.1"
[ -f "$completion" ] && cmp -s "$completion" "$src/tools/completion/aipc.bash"
result $? "the completion is installed as share/bash-completion/completions/aipc"

warnings=$(groff -man -ww -z "$man1" 2>&1)
[ -z "$warnings" ] || indent <<<"$warnings"
[ -z "$warnings" ]
result $? "groff -man -ww -z renders the man page without a warning"
MANWIDTH=80 man -l "$man1" >"$root/man.txt" 2>"$root/man.err"
status=$?
[ "$status" -eq 0 ] && [ ! -s "$root/man.err" ] && grep -q '^NAME' "$root/man.txt"
result $? "man -l renders it, quietly"
# Every command and option of the tool is in the page: each command's
# --help lists its options, and each must appear (in a rendering with no
# hyphenation, so that none is split).
groff -man -Tascii -P-cbou -rHY=0 -rLL=200n "$man1" >"$root/man.txt" 2>/dev/null
missing=
for cmd in demo serve top play record devices info bench; do
  grep -q "^   aipc $cmd\$" "$root/man.txt" || missing+=" $cmd"
  for opt in $(LD_LIBRARY_PATH=$libdir "$aipc" "$cmd" --help |
    grep -o '^  \(-h, \)\?--[a-z-]*' | grep -o -- '--[a-z-]*'); do
    grep -qE -- "$opt([^a-z-]|$)" "$root/man.txt" || missing+=" $cmd:$opt"
  done
done
[ -z "$missing" ] || echo "    | not in the man page:$missing"
[ -z "$missing" ]
result $? "the man page has every command and every option their --help lists"

# Completion, as bash does it: COMP_WORDS and COMP_CWORD, then the
# function that complete -F names.
complete_line() {
  LD_LIBRARY_PATH=$libdir bash -c '
    source "$1"
    shift
    spec=$(complete -p aipc) || exit 1
    fn=${spec##*-F }
    fn=${fn%% *}
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    "$fn"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$completion" "$@"
}
got=$(complete_line "$aipc" pl)
echo "    | aipc pl<TAB>: $got"
[ "$got" = play ]
result $? "completion: 'aipc pl' completes to play"
got=$(complete_line "$aipc" play --)
echo "    | aipc play --<TAB>:" $got
lacking=
for opt in --connect --backend --device --tone --seconds --help; do
  grep -qx -- "$opt" <<<"$got" || lacking+=" $opt"
done
[ -z "$lacking" ]
result $? "completion: 'aipc play --' lists play's options"
got=$(complete_line "$aipc" play --backend virtual:clock=fast --device "")
echo "    | aipc play --backend virtual:clock=fast --device <TAB>:" $got
[ "$got" = virtual-out ]
result $? "completion: --device lists the output ids 'aipc devices' gives"
got=$(complete_line "$aipc" record --backend virtual:clock=fast --device "")
[ "$got" = virtual-in ]
result $? "completion: record's --device lists the input ids"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
