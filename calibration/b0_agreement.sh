#!/usr/bin/env bash
# Calibrates the shared SegFormer-b0 (../shared/anchors) at 512² on the peers' 16 calibration images and
# prints the int8 model's argmax agreement with fp32 on the 8 eval images — the figure of
# calibration/README.md's "What the techniques measured" table. Extra arguments go to `mtlseg calibrate`, e.g.
#
#   calibration/b0_agreement.sh                                   # the defaults
#   calibration/b0_agreement.sh --rounding nearest --bias-correction weights
#   calibration/b0_agreement.sh --method percentile --smoothing attention
#   calibration/b0_agreement.sh --wide-decoder-inputs 0 --smoothing none   # the u8 decoder of before
#
# Needs the images of `peers.py prepare` (~/.cache/mtlseg-peers) and a release build (swift build -c release).
# The model and its report go to $OUT (default: a new temporary folder).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers_dir="${PEERS_DIR:-$root/../shared/anchors}"
cache="${PEERS_CACHE:-$HOME/.cache/mtlseg-peers}"
out="${OUT:-$(mktemp -d)}"
mtlseg="$root/.build/release/mtlseg"
[ -x "$mtlseg" ] || { echo "build first: swift build -c release" >&2; exit 1; }
[ -d "$cache/images/eval-512" ] || { echo "no peers images in $cache: run peers.py prepare (see $peers_dir/README.md)" >&2; exit 1; }
model="$peers_dir/models/segformer-b0-seed0"
[ -d "$model" ] || { echo "no b0 anchor at $model (set PEERS_DIR to the anchors' folder)" >&2; exit 1; }
mkdir -p "$out"
"$mtlseg" calibrate --model "$model" --images "$cache/images/calib-512" --eval-images "$cache/images/eval-512" --size 512x512 \
  --out "$out/b0-int8.safetensors" "$@" 2>"$out/calibrate.log" | grep -v '^report:'
"$mtlseg" compare --model "$out/b0-int8.safetensors" --reference "$model" --images "$cache/images/eval-512" | tail -n +2
echo "report: $out/b0-int8.report.md"
