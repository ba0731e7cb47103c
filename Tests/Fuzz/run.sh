#!/usr/bin/env bash
# Fuzzes the parsers that read outside bytes with libFuzzer (Swift's -sanitize=fuzzer):
# the socket protocol, the daemon's configuration and model files. Each target runs
# SECONDS seconds from its corpus in Tests/Fuzz/corpus/<target>; new inputs go to a scratch
# corpus; a crash leaves its input in Tests/Fuzz/crashes/ (commit it: it becomes a
# regression input, replayed by FuzzRegressionTests). Prints executions per target, the coverage
# reached and the execution that last found a new edge (early in a long run: a plateau). With
# MTLSEG_FUZZ_KEEP=1 the inputs that add coverage are merged (minimised) into the corpus.
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
    # Coverage at the end, and the execution that last found a new edge: a plateau shows as the last
    # new edge coming early in the run.
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
    last_edge=$(awk '$2 == "INITED" || $2 == "NEW" || $2 == "REDUCE" {
                       for (i = 3; i < NF; i++) if ($i == "cov:") c = $(i + 1)
                       if (c != prev) { n = $1; prev = c } }
                     END { sub("#", "", n); print n }' "$log")
    echo "$target: $runs executions in ${seconds} s, no crash; ${cov:-cov: ?}; last new edge at execution ${last_edge:-?}"
    if [ "${MTLSEG_FUZZ_KEEP:-0}" = 1 ]; then  # keep what found new coverage, minimised, in the repository's corpus
      MTLSEG_FUZZ_TARGET="$target" "$binary" -merge=1 -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        "Tests/Fuzz/corpus/$target" "$scratch/$target" >"$log.merge" 2>&1 || { echo "$target: merge failed"; tail -5 "$log.merge"; }
      echo "$target: corpus now $(ls "Tests/Fuzz/corpus/$target" | wc -l) inputs"
    fi
  else
    echo "$target: FAILED (input saved under Tests/Fuzz/crashes/)"; tail -30 "$log"; status=1
  fi
done
exit $status
