#!/usr/bin/env bash
# Instructions per pass of the int8 engine's hot kernel steps as AArch64, counted under
# qemu-user with a TCG plugin of our own (insn_count.c), on -cpu cortex-a76 (Raspberry Pi 5:
# dot product) and -cpu cortex-a72 (Raspberry Pi 4: none), for two versions of the kernels: BASE
# (a git revision, default main) and the working tree. One table, millions of instructions.
#   Tests/ARM64/cost.sh [BASE]        (BASE default: where this branch left main, git merge-base HEAD main)
#   STEPS="gemm dwconv" Tests/ARM64/cost.sh   (only those steps; default all of cost_steps --list;
#                                              a BASE older than a step's kernel needs that step left out)
# The steps and their shapes (SegFormer-b0 at 256², one thread) are in cost_steps.c; a pass is
# (count with 3 iterations − count with 1) / 2, so set-up and start-up drop out. Counts repeat
# exactly run to run. They are instruction counts under emulation, not time on a board: they
# ignore IPC, latencies and the memory system (an fdiv counts as one, like an add).
# Run by hand (a few minutes on 2 cores), not in CI. Needs what Tests/CKernelsHarness/run.sh's
# qemu stage needs (clang, ld.lld, qemu-user, the Debian AArch64 cross sysroot) and git.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
base="${1:-$(git -C "$root" merge-base HEAD main)}"
clang="${CLANG:-}"
[ -n "$clang" ] || { [ -x /opt/swift/usr/bin/clang ] && clang=/opt/swift/usr/bin/clang || clang="$(command -v clang)"; }
command -v qemu-aarch64 >/dev/null || { echo "cost.sh: qemu-aarch64 not found: apt-get install qemu-user" >&2; exit 1; }
gcc_cross="$(ls -d /usr/lib/gcc-cross/aarch64-linux-gnu/* 2>/dev/null | sort -V | tail -1)"
[ -n "$gcc_cross" ] || { echo "cost.sh: apt-get install libc6-dev-arm64-cross libgcc-12-dev-arm64-cross" >&2; exit 1; }

build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
"$clang" -O2 -shared -fPIC -Wall -Wextra -Werror "$root/Tests/ARM64/insn_count.c" -o "$build/insn_count.so"

# The kernels as SwiftPM builds them (-O3; the ISA is chosen at run time).
build_steps() { # build_steps SOURCES_DIR OUT
  "$clang" --target=aarch64-linux-gnu --gcc-install-dir="$gcc_cross" -fuse-ld=lld -std=c11 -D_GNU_SOURCE -O3 \
    -I"$1/include" -I"$1" "$1"/*.c "$root/Tests/ARM64/cost_steps.c" -o "$2" -lm -lpthread
}
mkdir -p "$build/base"
git -C "$root" archive "$base" Sources/CKernels | tar -x -C "$build/base"
build_steps "$build/base/Sources/CKernels" "$build/steps_base"
build_steps "$root/Sources/CKernels" "$build/steps_now"

count() { # count BINARY CPU STEP ITERATIONS
  qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$2" -plugin "$build/insn_count.so,outfile=$build/n" "$1" "$3" "$4"
  cat "$build/n"
}
per_pass() { echo $(( ($(count "$1" "$2" "$3" 3) - $(count "$1" "$2" "$3" 1)) / 2 )); }

base_rev="$(git -C "$root" rev-parse --short "$base")"
now_rev="$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- Sources/CKernels || echo +changes)"
echo "Guest instructions per pass (millions), SegFormer-b0 shapes at 256², 1 thread, qemu-user $(qemu-aarch64 --version | head -1 | awk '{print $3}')."
echo "base = ${1:-merge-base with main} ($base_rev), now = the working tree ($now_rev). Instruction counts under emulation, not board timings."
echo
echo "| step | a76 base | a76 now | now/base | a72 base | a72 now | now/base |"
echo "|---|---:|---:|---:|---:|---:|---:|"
declare -A total
for step in ${STEPS:-$(qemu-aarch64 -L /usr/aarch64-linux-gnu "$build/steps_now" --list)}; do
  row="| $step"
  for cpu in cortex-a76 cortex-a72; do
    b="$(per_pass "$build/steps_base" "$cpu" "$step")"
    n="$(per_pass "$build/steps_now" "$cpu" "$step")"
    total[$cpu.b]=$(( ${total[$cpu.b]:-0} + b )); total[$cpu.n]=$(( ${total[$cpu.n]:-0} + n ))
    row+="$(awk -v b="$b" -v n="$n" 'BEGIN { printf " | %.1f | %.1f | %.2f", b / 1e6, n / 1e6, b ? n / b : 0 }')"
  done
  echo "$row |"
done
row="| **all steps**"
for cpu in cortex-a76 cortex-a72; do
  row+="$(awk -v b="${total[$cpu.b]}" -v n="${total[$cpu.n]}" 'BEGIN { printf " | %.1f | %.1f | %.2f", b / 1e6, n / 1e6, n / b }')"
done
echo "$row |"
