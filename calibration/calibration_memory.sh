#!/usr/bin/env bash
# Shows that `mtlseg calibrate` streams: its peak RSS with 300 images is compared
# with its peak RSS with 30 images of the same size (frames of the synthetic
# camera, 640x480, calibrating the b0 of ../shared/anchors at 512x512 by default).
#
#   calibration/calibration_memory.sh [MODEL] [SIZE]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mtlseg="$root/.build/release/mtlseg"
model="${1:-$root/../shared/anchors/models/segformer-b0-seed0}"
size="${2:-512x512}"
[ -x "$mtlseg" ] || { echo "build first: swift build -c release" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$mtlseg" capture --device synthetic --count 300 --out "$work/300" >/dev/null
mkdir -p "$work/30" && cp "$work/300"/frame-0000{01..30}.png "$work/30/"
peak() {  # peak RSS in MB of calibrating on folder $1
  /usr/bin/time -f "%M" "$mtlseg" calibrate --model "$model" --images "$1" --size "$size" --out "$work/out.safetensors" \
    --method mse >/dev/null 2>"$work/time.txt" || { cat "$work/time.txt" >&2; exit 1; }
  echo "$(tail -1 "$work/time.txt") / 1024" | bc -l
}
small=$(peak "$work/30")
large=$(peak "$work/300")
printf "peak RSS: 30 images %.1f MB, 300 images %.1f MB, ratio %.3f (bound 1.2)\n" "$small" "$large" "$(echo "$large / $small" | bc -l)"
