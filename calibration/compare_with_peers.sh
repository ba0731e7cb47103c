#!/usr/bin/env bash
# Measures mtlseg against its peers (ONNX Runtime and OpenVINO int8 on the
# shared SegFormer-b0, ../shared/anchors) on this machine, in one sitting:
#   1. calibrates the b0 to int8 with mtlseg on the peers' 16 calibration images (512²),
#   2. argmax agreement of mtlseg int8 with fp32 on the 8 eval images,
#   3. median latency and peak RSS of each engine at 512² and 256², 1 and 2 threads.
# Each number is a median of 20 runs (after warm-up) in a fresh process.
#
#   PEERS_PYTHON=~/.venvs/peers/bin/python calibration/compare_with_peers.sh [OUT_DIR]
#
# The peers' Python needs: numpy pillow sympy onnx onnxruntime openvino nncf
# (see ../shared/anchors/README.md). mtlseg must be built: swift build -c release.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers_dir="${PEERS_DIR:-$root/../shared/anchors}"
python="${PEERS_PYTHON:-$HOME/.venvs/peers/bin/python}"
out="${1:-$(mktemp -d)}"
mtlseg="$root/.build/release/mtlseg"
cache="${PEERS_CACHE:-$HOME/.cache/mtlseg-peers}"
[ -x "$mtlseg" ] || { echo "build first: swift build -c release" >&2; exit 1; }
[ -x "$python" ] || { echo "no peers Python at $python (set PEERS_PYTHON)" >&2; exit 1; }
mkdir -p "$out"

[ -d "$cache/images/eval-512" ] || (cd "$peers_dir" && "$python" peers.py prepare)

model="$peers_dir/models/segformer-b0-seed0"
"$mtlseg" calibrate --model "$model" --images "$cache/images/calib-512" --eval-images "$cache/images/eval-512" --size 512x512 \
  --out "$out/b0-int8.safetensors" 2>/dev/null
echo "== argmax agreement with fp32, 8 eval images at 512²"
"$mtlseg" compare --model "$out/b0-int8.safetensors" --reference "$model" --images "$cache/images/eval-512" | tail -n +2

echo "== latency (median of 20 runs, ms) and peak RSS (MB)"
printf "%-6s %-8s %-28s %10s %10s\n" size threads engine median_ms rss_mb
for size in 512 256; do
  for threads in 1 2; do
    (cd "$peers_dir" && "$python" peers.py time --size "$size" --threads "$threads" --variants ort_fp32,ort_int8,ov_int8) |
      "$python" -c 'import json,sys
for line in sys.stdin:
    r = json.loads(line)
    print("%-6s %-8s %-28s %10.2f %10.1f" % (r["size"], r["threads"], r["variant"], r["median_ms"], r["peak_rss_mb"]))'
    for variant in int8 fp32; do
      file="$out/b0-int8.safetensors"; name="mtlseg_int8"
      [ "$variant" = fp32 ] && { file="$model"; name="mtlseg_fp32"; }
      "$mtlseg" bench --model "$file" --size "${size}x${size}" --threads "$threads" --iterations 20 --json | tail -1 |
        "$python" -c 'import json,sys
r = json.loads(sys.stdin.read())
print("%-6s %-8s %-28s %10.2f %10.1f" % (r["width"], r["threads"], sys.argv[1], r["median_ms"], r["peak_rss_mb"]))' "$name"
    done
  done
done
