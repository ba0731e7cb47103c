#!/usr/bin/env bash
# Runs mtlsegd on the synthetic camera with three consumers for a given time and reports, every
# INTERVAL seconds, the daemon's resident memory, open file descriptors, fps and latency
# percentiles (from `mtlseg status --json`); at the end, growth over the run and the worst p99.
#
#   Tests/Soak/soak.sh [SECONDS=1800] [INTERVAL=60] [MODEL=the demo int8 model]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
duration="${1:-1800}"
interval="${2:-60}"
model="${3:-$root/calibration/demo/crops-int8.safetensors}"
bin="$root/.build/release"
[ -x "$bin/mtlsegd" ] || { echo "build first: swift build -c release" >&2; exit 1; }
work="$(mktemp -d)"
socket="$work/mtlsegd.sock"
"$bin/mtlsegd" --model "$model" --source synthetic --socket "$socket" --threads 2 2>"$work/daemon.log" &
daemon=$!
clients=()
cleanup() { kill "${clients[@]}" "$daemon" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM
until [ -S "$socket" ]; do sleep 0.2; done
for encoding in raw rle rle; do
  "$bin/mtlseg" subscribe --socket "$socket" --encoding "$encoding" --count 0 >/dev/null &
  clients+=($!)
done
printf "%8s %9s %5s %7s %9s %9s %9s\n" seconds rss_mb fds fps p50_ms p99_ms clients
start=$(date +%s)
first_rss=""; first_fds=""; worst_p99=0
while true; do
  sleep "$interval"
  now=$(( $(date +%s) - start ))
  rss=$(awk '/VmRSS/{printf "%.1f", $2/1024}' /proc/$daemon/status)
  fds=$(ls /proc/$daemon/fd | wc -l)
  status="$("$bin/mtlseg" status --socket "$socket" --json)"
  read -r fps p50 p99 n < <(python3 -c 'import json,sys; s=json.loads(sys.argv[1]); l=s.get("latency_ms",{}).get("inference",{});
print(s["fps"]["published"], l.get("p50",0), l.get("p99",0), len(s["clients"]))' "$status")
  printf "%8d %9s %5s %7.1f %9.2f %9.2f %9s\n" "$now" "$rss" "$fds" "$fps" "$p50" "$p99" "$n"
  [ -n "$first_rss" ] || { first_rss=$rss; first_fds=$fds; }
  worst_p99=$(python3 -c "print(max($worst_p99, $p99))")
  [ "$now" -ge "$duration" ] && break
done
echo "over ${duration} s: RSS ${first_rss} -> ${rss} MB, fds ${first_fds} -> ${fds}, worst inference p99 ${worst_p99} ms"
