#!/usr/bin/env bash
# One camera against two at once: per camera, frames per second and the end-to-end latency median
# (capture to receipt, from `mtlseg subscribe`), and each daemon's peak RSS. Each camera is the
# synthetic field at 640x480, 15 fps (FPS=), served by its own mtlsegd process as mtlsegd@.service runs
# them: threads = 1, pinned to a core of its own (taskset, as CPUAffinity= does). Rounds alternate
# one camera (on core 0) and two (cores 0 and 1) back to back, so both see the same machine load.
# With FPS above what a core can infer (FPS=100), the fps printed are each camera's throughput.
#
#   [FPS=15] Tests/Soak/cameras.sh [ROUNDS=3] [FRAMES=150] [MODEL=the demo int8 model]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
rounds="${1:-3}"
frames="${2:-150}"
model="${3:-$root/calibration/demo/crops-int8.safetensors}"
bin="${MTLSEG_BIN:-$root/.build/release}"
fps="${FPS:-15}"
[ -x "$bin/mtlsegd" ] && [ -x "$bin/mtlseg" ] || { echo "build first: swift build -c release" >&2; exit 1; }
work="$(mktemp -d)"
printf '# the defaults\n' > "$work/empty.toml"
daemons=()
cleanup() { kill "${daemons[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

# run LABEL CORE...: one daemon per core, a subscriber on each, all at once; one line per camera.
run() {
  local label=$1; shift
  local index=0 pids=() subscribers=()
  daemons=()
  for core in "$@"; do
    taskset -c "$core" "$bin/mtlsegd" --config "$work/empty.toml" --model "$model" --source synthetic --size 640x480 --fps "$fps" \
      --threads 1 --socket "$work/cam$index.sock" 2>"$work/cam$index.log" &
    daemons+=($!)
    index=$((index + 1))
  done
  for ((i = 0; i < index; i++)); do until [ -S "$work/cam$i.sock" ]; do sleep 0.1; done; done
  for ((i = 0; i < index; i++)); do
    "$bin/mtlseg" subscribe --socket "$work/cam$i.sock" --count "$frames" >"$work/sub$i.out" 2>&1 &
    subscribers+=($!)
  done
  wait "${subscribers[@]}"
  for ((i = 0; i < index; i++)); do
    local rss
    rss=$(awk '/VmHWM/{print $2}' "/proc/${daemons[$i]}/status")
    printf "%-12s camera %d (core %s): %s; peak RSS %.1f MB\n" "$label" "$i" "${@:$((i + 1)):1}" "$(tail -n 1 "$work/sub$i.out")" "$(echo "$rss / 1024" | bc -l)"
  done
  kill "${daemons[@]}" 2>/dev/null || true
  wait "${daemons[@]}" 2>/dev/null || true
  rm -f "$work"/cam*.sock
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((round = 1; round <= rounds; round++)); do
  run "one camera" 0
  run "two cameras" 0 1
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
