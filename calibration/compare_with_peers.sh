#!/usr/bin/env bash
# Measures mtlseg against its peers (ONNX Runtime and OpenVINO int8) on this machine, in one sitting.
# The shared SegFormer-b0 (../shared/anchors):
#   1. calibrates the b0 to int8 with mtlseg on the peers' 16 calibration images (512²),
#   2. argmax agreement of mtlseg int8 with fp32 on the 8 eval images,
#   3. median latency and peak RSS of each engine at 512² and 256², 1 and 2 threads.
# The mission model, the demo MTLSegFormer (calibration/demo, 2 tasks), by peers_mtl.py:
#   4. its PyTorch reference exported to ONNX (checked against torch) and quantized for the peers
#      (once; cached under $PEERS_CACHE/mtl),
#   5. argmax agreement per task of each int8 engine with fp32 on the demo's 50 eval images (256²),
#   6. latency, peak RSS and CPU time per run of each engine at 256² and 512², 1 and 2 threads, mtlseg
#      writing logits (as the peers) and only masks (as the daemon), and mtlseg int8 ÷ OpenVINO int8
#      (CPU time leaves out the time other processes held the CPU: on a shared machine, the steadier ratio).
# Each number is a median of 20 runs (after warm-up) in a fresh process, on an input already
# preprocessed; for each size and thread count the engines run one after the other. With ROUNDS=N
# they do so N times in turn, and each engine's figure is the median of its N medians (the range of
# those beside it): on a shared host whose speed shifts for seconds at a time, one round can catch
# one engine in a slow spell and the other not.
#
#   PEERS_PYTHON=~/.venvs/peers/bin/python calibration/compare_with_peers.sh [OUT_DIR]
#   MODELS=mtl calibration/compare_with_peers.sh     # only the mission model (MODELS=b0: only the b0)
#   ROUNDS=5 MODELS=mtl calibration/compare_with_peers.sh
#
# The peers' Python needs: numpy pillow sympy onnx onnxruntime openvino nncf
# (see ../shared/anchors/README.md); exporting the demo model needs torch and transformers too
# (CALIB_PYTHON, default ~/.venvs/mtlseg-calib/bin/python; calibration/requirements.txt).
# mtlseg must be built: swift build -c release.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
peers_dir="${PEERS_DIR:-$root/../shared/anchors}"
python="${PEERS_PYTHON:-$HOME/.venvs/peers/bin/python}"
out="${1:-$(mktemp -d)}"
mtlseg="$root/.build/release/mtlseg"
cache="${PEERS_CACHE:-$HOME/.cache/mtlseg-peers}"
[ -x "$mtlseg" ] || { echo "build first: swift build -c release" >&2; exit 1; }
[ -x "$python" ] || { echo "no peers Python at $python (set PEERS_PYTHON)" >&2; exit 1; }
models="${MODELS:-b0,mtl}"
mkdir -p "$out"

# The JSON line of each run (peers_mtl.py time, mtlseg bench --json), named: the peers by their variant,
# mtlseg by the name given.
named() {
  "$python" -c 'import json,sys
for line in sys.stdin:
    if not line.startswith("{"): continue
    r = json.loads(line)
    r["engine"] = sys.argv[1] or r["variant"]
    print(json.dumps(r))' "${1:-}"
}

# Named JSON lines of one or more rounds -> one table row per engine, in the order they first ran: the median
# of the rounds' medians (latency, CPU time), the largest peak RSS, and with several rounds the range of the
# rounds' latency medians.
rows() {
  "$python" -c 'import json,statistics,sys
runs = {}
for line in sys.stdin:
    r = json.loads(line)
    runs.setdefault(r["engine"], []).append(r)
for engine, rs in runs.items():
    ms = [r["median_ms"] for r in rs]
    cpu = [r["median_cpu_ms"] for r in rs if "median_cpu_ms" in r]
    spread = "  %d rounds %.2f-%.2f" % (len(ms), min(ms), max(ms)) if len(ms) > 1 else ""
    print("%-6s %-8s %-28s %10.2f %10.1f %s%s" % (rs[0].get("size", rs[0].get("width")), rs[0]["threads"], engine,
          statistics.median(ms), max(r["peak_rss_mb"] for r in rs),
          "%10.2f" % statistics.median(cpu) if cpu else "%10s" % "-", spread))'
}
rounds="${ROUNDS:-1}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "ROUNDS must be a positive whole number, not '$rounds'" >&2; exit 1; }
latency="median of 20 runs"
[ "$rounds" = 1 ] || latency="median over $rounds rounds of each one's median of 20 runs"

# mtlseg int8 ÷ OpenVINO int8 from one size's rows: wall clock and CPU time (with masks only where measured).
ratio() {
  awk '$3 == "ov_int8" { ov = $4; ovc = $6 } $3 == "mtlseg_int8" { m = $4; mc = $6 } $3 == "mtlseg_int8_masks" { k = $4; kc = $6 }
       END { printf "%-6s %-8s mtlseg int8 / OpenVINO int8: %.2f wall, %.2f CPU time", $1, $2, m / ov, mc / ovc
             if (k) printf "; masks only: %.2f wall, %.2f CPU time", k / ov, kc / ovc
             printf "\n" }' "$1"
}

if [[ ",$models," == *,b0,* ]]; then

[ -d "$cache/images/eval-512" ] || (cd "$peers_dir" && "$python" peers.py prepare)

model="$peers_dir/models/segformer-b0-seed0"
# An OUT_DIR from an earlier sitting keeps its calibrated b0.
[ -f "$out/b0-int8.safetensors" ] ||
  "$mtlseg" calibrate --model "$model" --images "$cache/images/calib-512" --eval-images "$cache/images/eval-512" --size 512x512 \
    --out "$out/b0-int8.safetensors" 2>/dev/null
echo "== argmax agreement with fp32, 8 eval images at 512²"
"$mtlseg" compare --model "$out/b0-int8.safetensors" --reference "$model" --images "$cache/images/eval-512" | tail -n +2

echo "== latency ($latency, ms), peak RSS (MB), CPU time per run (median, ms, all threads)"
printf "%-6s %-8s %-28s %10s %10s %10s\n" size threads engine median_ms rss_mb cpu_ms
for size in 512 256; do
  for threads in 1 2; do
    rows="$out/b0-$size-$threads.txt"
    for round in $(seq "$rounds"); do
      PEERS_DIR="$peers_dir" "$python" "$root/calibration/peers_mtl.py" time --model b0 --size "$size" \
        --threads "$threads" --variants ort_fp32,ort_int8,ov_int8 2>/dev/null | named
      for variant in int8 fp32; do
        file="$out/b0-int8.safetensors"; name="mtlseg_int8"
        [ "$variant" = fp32 ] && { file="$model"; name="mtlseg_fp32"; }
        "$mtlseg" bench --model "$file" --size "${size}x${size}" --threads "$threads" --iterations 20 --json | tail -1 | named "$name"
      done
    done | tee "$out/b0-$size-$threads.jsonl" | rows | tee "$rows"
    ratio "$rows"
  done
done
fi

[[ ",$models," == *,mtl,* ]] || exit 0
calib_python="${CALIB_PYTHON:-$HOME/.venvs/mtlseg-calib/bin/python}"
peers_mtl="$root/calibration/peers_mtl.py"
demo="$root/calibration/demo"
export PEERS_CACHE="$cache"
if [ ! -f "$cache/mtl/demo_crops_512_ov_int8.xml" ]; then
  [ -x "$calib_python" ] || { echo "no Python with torch at $calib_python (set CALIB_PYTHON)" >&2; exit 1; }
  echo "== demo MTLSegFormer: ONNX export checked against torch (max |diff|, argmax agreement)"
  "$calib_python" "$peers_mtl" export --sizes 256,512 2>/dev/null
  "$python" "$peers_mtl" prepare --sizes 256,512 >/dev/null 2>&1
fi
echo "== demo MTLSegFormer: argmax agreement with fp32 per task, 50 eval images at 256²"
"$python" "$peers_mtl" agree --size 256 2>/dev/null
"$mtlseg" compare --model "$demo/crops-int8.safetensors" --reference "$demo/crops-fp32.safetensors" \
  --images "$demo/data/eval/images" | tail -n +2

echo "== demo MTLSegFormer: latency ($latency, ms), peak RSS (MB), CPU time per run (median, ms, all threads)"
printf "%-6s %-8s %-28s %10s %10s %10s\n" size threads engine median_ms rss_mb cpu_ms
for size in 256 512; do
  for threads in 1 2; do
    rows="$out/mtl-$size-$threads.txt"
    for round in $(seq "$rounds"); do
      "$python" "$peers_mtl" time --size "$size" --threads "$threads" 2>/dev/null | named
      "$mtlseg" bench --model "$demo/crops-int8.safetensors" --size "${size}x${size}" --threads "$threads" --iterations 20 --json |
        tail -1 | named mtlseg_int8
      "$mtlseg" bench --model "$demo/crops-int8.safetensors" --size "${size}x${size}" --threads "$threads" --iterations 20 --json \
        --masks-only | tail -1 | named mtlseg_int8_masks
    done | tee "$out/mtl-$size-$threads.jsonl" | rows | tee "$rows"
    ratio "$rows"
  done
done
