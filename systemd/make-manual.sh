#!/usr/bin/env bash
# Writes the manual pages and shell completions of mtlseg and mtlsegd under SHARE (a `share` folder:
# man/man1, bash-completion/completions, zsh/vendor-completions, fish/vendor_completions.d), for
# build-deb.sh and install.sh. Both come from the tools' own help: the pages by swift-argument-parser's
# generate-manual (built here, with the `swift build` arguments given after the binary; without any, in a
# build folder of its own, .build-manual: a `swift test` run holds .build's lock until it ends, and its
# tests run install.sh), the completions
# by the binary's --generate-completion-script; so the binary must be one this machine runs. The pages
# are dated SOURCE_DATE_EPOCH, else the last commit's day.
#
#   systemd/make-manual.sh SHARE MTLSEG_BINARY [SWIFT_BUILD_ARGUMENT...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
[ $# -ge 2 ] || { echo "usage: make-manual.sh SHARE MTLSEG_BINARY [SWIFT_BUILD_ARGUMENT...]" >&2; exit 2; }
share="$1" runnable="$2"
shift 2
[ $# -gt 0 ] || set -- --scratch-path .build-manual
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$root" && swift build -c release "$@" --product generate-manual) >&2
generate_manual="$(cd "$root" && swift build -c release "$@" --show-bin-path)/generate-manual"
# The one binary is the daemon when called mtlsegd.
ln -s "$(realpath "$runnable")" "$work/mtlseg"
ln -s "$(realpath "$runnable")" "$work/mtlsegd"

mkdir -p "$share/man/man1"
for tool in mtlseg mtlsegd; do
  "$generate_manual" "$work/$tool" --date "$(date -u +%F -d "@$epoch")" --output-directory "$work"
done
# mtlsegd has no subcommands, but the parser lists its implicit `help` as one: drop it from the page.
sed -i -e '/^\.Ar subcommand$/d' -e '/^\.It Em help$/,/^\.El$/d' "$work/mtlsegd.1"
# A help text's blank line (between paragraphs) is an empty input line to groff, which warns: a paragraph break instead.
for tool in mtlseg mtlsegd; do sed 's/^$/.Pp/' "$work/$tool.1" | gzip -9n > "$share/man/man1/$tool.1.gz"; done

# bash, zsh and fish load completions from these folders by the command's name.
mkdir -p "$share/bash-completion/completions" "$share/zsh/vendor-completions" "$share/fish/vendor_completions.d"
for tool in mtlseg mtlsegd; do
  # The bash script's #! line is dropped: bash sources it, and a completion file is no program.
  "$work/$tool" --generate-completion-script bash | sed '1{/^#!/d}' > "$share/bash-completion/completions/$tool"
  "$work/$tool" --generate-completion-script zsh > "$share/zsh/vendor-completions/_$tool"
  "$work/$tool" --generate-completion-script fish > "$share/fish/vendor_completions.d/$tool.fish"
done
