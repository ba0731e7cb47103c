#!/usr/bin/env bash
# Fuzzes the parsers that read outside bytes with libFuzzer (Swift's -sanitize=fuzzer):
# the socket protocol, the daemon's configuration and model files. Each target runs
# SECONDS seconds from its corpus in Tests/Fuzz/corpus/<target>; new inputs go to a scratch
# corpus; a crash leaves its input in Tests/Fuzz/crashes/ (commit it: it becomes a
# regression input, replayed by FuzzRegressionTests). Prints executions per target.
#
#   Tests/Fuzz/run.sh [SECONDS=60] [TARGET…]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
seconds="${1:-60}"; shift || true
targets=("${@:-wire config model}")
read -r -a targets <<< "${targets[*]}"
cd "$root"
swift build --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING --product mtlseg-fuzz >/dev/null
binary="$(swift build --scratch-path .build-fuzz --show-bin-path)/mtlseg-fuzz"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p Tests/Fuzz/crashes
status=0
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  if MTLSEG_FUZZ_TARGET="$target" "$binary" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="Tests/Fuzz/crashes/$target-" "$scratch/$target" "Tests/Fuzz/corpus/$target" >"$log" 2>&1; then
    runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | grep -Eo '[0-9]+' || echo "?")
    echo "$target: $runs executions in ${seconds} s, no crash"
  else
    echo "$target: FAILED (input saved under Tests/Fuzz/crashes/)"; tail -30 "$log"; status=1
  fi
done
exit $status
