#!/bin/bash
# A storm of SIGHUP reloads alternating the demo fp32 and int8 models under a running mtlsegd (synthetic
# camera, 320x240 at 15 fps), printing resident memory after each reload has settled and at the end.
#
#   Tests/Soak/reload_storm.sh [MTLSEGD] [RELOADS] [FIRST: fp32|int8] [SETTLE_SECONDS]
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
daemon=${1:-$repo/.build/release/mtlsegd}
reloads=${2:-30}
first=${3:-fp32}
settle=${4:-1}
other=$([ "$first" = fp32 ] && echo int8 || echo fp32)
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
use() { echo "model = \"$repo/calibration/demo/crops-$1.safetensors\"" > "$dir/mtlsegd.toml"; }
rss() { awk '/VmRSS/{print $2}' /proc/$pid/status; }
use "$first"
"$daemon" --config "$dir/mtlsegd.toml" --source synthetic --size 320x240 --fps 15 --socket "$dir/s.sock" --threads 2 2>"$dir/log" &
pid=$!
for _ in $(seq 300); do [ -S "$dir/s.sock" ] && break; sleep 0.1; done
[ -S "$dir/s.sock" ] || { cat "$dir/log"; exit 1; }
sleep "$settle"
echo "after the first load ($first): $(rss) kB"
for i in $(seq 1 "$reloads"); do
    model=$([ $((i % 2)) = 1 ] && echo "$other" || echo "$first")
    use "$model"
    before=$(grep -c "reloaded\|reload failed" "$dir/log" || true)
    kill -HUP $pid
    until [ "$(grep -c "reloaded\|reload failed" "$dir/log" || true)" -gt "$before" ]; do sleep 0.05; done
    sleep "$settle"
    echo "reload $i ($model): $(rss) kB"
done
echo "end: $(rss) kB, threads $(ls /proc/$pid/task | wc -l), fds $(ls /proc/$pid/fd | wc -l)"
