#!/bin/bash
# The daemon built with ThreadSanitizer (`.ci/sanitize thread` builds it into .build-thread) under everything at once for
# SECONDS: three subscribers (model, source and a WxH size, raw and rle), `mtlseg status` and metrics scrapes
# every few hundred ms, short-lived subscribers, a client that sends a bad HELLO and waits, one that speaks HTTP,
# and a SIGHUP reload every 4 s alternating the demo's fp32 and int8 models. Fails if any process reported.
#
#   Tests/Soak/tsan_soak.sh [SECONDS]    (default 180; after `.ci/sanitize thread`, which builds .build-thread)
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=$repo/.build-thread/x86_64-unknown-linux-gnu/debug
[ -x "$bin/mtlsegd" ] || { echo "no ThreadSanitizer build in $bin: run .ci/sanitize thread first" >&2; exit 2; }
seconds=${1:-180}
dir=$(mktemp -d)
mkdir -p "$dir/reports"
export TSAN_OPTIONS="halt_on_error=0 log_path=$dir/reports/report"
use() {
    cat > "$dir/mtlsegd.toml" <<TOML
model = "$repo/calibration/demo/crops-$1.safetensors"
threads = 2
[source]
device = "synthetic"
width = 320
height = 240
fps = 15
[socket]
path = "$dir/s.sock"
max_clients = 8
client_timeout_ms = 1000
[metrics]
socket = "$dir/m.sock"
TOML
}
use int8
"$bin/mtlsegd" --config "$dir/mtlsegd.toml" 2>"$dir/daemon.log" &
pid=$!
for _ in $(seq 600); do [ -S "$dir/s.sock" ] && break; sleep 0.2; done
[ -S "$dir/s.sock" ] || { cat "$dir/daemon.log" >&2; exit 1; }
end=$((SECONDS + seconds))
"$bin/mtlseg" subscribe --socket "$dir/s.sock" --json >"$dir/sub1.log" 2>&1 &
"$bin/mtlseg" subscribe --socket "$dir/s.sock" --mask-size source --encoding raw >"$dir/sub2.log" 2>&1 &
"$bin/mtlseg" subscribe --socket "$dir/s.sock" --tasks rows --mask-size 100x50 >"$dir/sub3.log" 2>&1 &
(while [ $SECONDS -lt $end ]; do "$bin/mtlseg" status --socket "$dir/s.sock" >/dev/null 2>&1; sleep 0.3; done) &
(while [ $SECONDS -lt $end ]; do curl -s --unix-socket "$dir/m.sock" http://localhost/metrics >/dev/null; sleep 0.2; done) &
(while [ $SECONDS -lt $end ]; do
    timeout 5 "$bin/mtlseg" subscribe --socket "$dir/s.sock" --count 3 >/dev/null 2>&1
    python3 - "$dir/s.sock" <<'PY' 2>/dev/null
import socket, sys, time
bad = socket.socket(socket.AF_UNIX); bad.connect(sys.argv[1])
bad.send(b"\x20\x00\x00\x00\x01{\"protocol\":1"); time.sleep(1.5)  # a HELLO cut short, then gone
http = socket.socket(socket.AF_UNIX); http.connect(sys.argv[1])
http.send(b"GET / HTTP/1.1\r\n\r\n"); http.recv(100)
PY
done) &
reloads=0
while [ $SECONDS -lt $end ]; do
    sleep 4
    reloads=$((reloads + 1))
    use "$([ $((reloads % 2)) = 1 ] && echo fp32 || echo int8)"
    kill -HUP $pid
done
kill -TERM $pid
wait $pid
status=$?
pkill -f "$bin/mtlseg subscribe"
wait 2>/dev/null
echo "daemon exit $status; $reloads SIGHUPs, $(grep -c '^reloaded' "$dir/daemon.log") reloads (a reload under the sanitizer takes seconds; SIGHUPs sent meanwhile make one more); the three subscribers printed $(cat "$dir"/sub[123].log | wc -l | tr -d ' ') lines"
shopt -s nullglob
reports=("$dir"/reports/report.*)
if [ ${#reports[@]} -gt 0 ]; then
    echo "ThreadSanitizer reported in ${#reports[@]} process(es); kept in $dir/reports" >&2
    grep -h -m 3 -E "WARNING: ThreadSanitizer|^    #[0-2] " "${reports[@]}" >&2
    exit 1
fi
rm -rf "$dir"
[ $status -eq 0 ] && echo "ThreadSanitizer: no reports"
