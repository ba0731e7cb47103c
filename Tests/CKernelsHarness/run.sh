#!/usr/bin/env bash
# Checks the C kernels, in two stages that run and fail independently:
#   native: every qgemm kernel set this CPU runs against the scalar reference, bit for bit,
#           that MTLSEG_KERNELS caps the choice, and the other operations' versions against
#           their old code (ops_ref.c); built with ASan + UBSan. (Their checks against the
#           operations' definitions are Tests/CKernelsTests/*DefinitionTests.swift.)
#   qemu:   (x86_64 hosts) the qgemm sets as AArch64 under qemu-aarch64, with the default CPU
#           (`max`: has dotprod → neondot), -cpu cortex-a53 and cortex-a72 (no dotprod → neon); and the
#           other operations' NEON versions against their portable ones, bit for bit, on
#           cortex-a76 (Raspberry Pi 5), cortex-a72 (Pi 4) and cortex-a53 (the last two without
#           dotprod).
# Usage: run.sh [native] [qemu]   (no argument: both; a stage whose tools are missing fails
# with what to install, after the other stage has run).
# Installs nothing; needs clang (Swift's is fine) and ld.lld; the qemu stage also qemu-aarch64
# and the Debian AArch64 cross sysroot:
#   apt-get install qemu-user libc6-dev-arm64-cross libgcc-12-dev-arm64-cross
# (gcc-aarch64-linux-gnu pulls in the last two).
set -uo pipefail
unset MTLSEG_KERNELS # the checks below set it themselves
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/Sources/CKernels"
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(native qemu)

die() { echo "run.sh: $*" >&2; exit 1; }

clang="${CLANG:-}"
if [ -z "$clang" ]; then
  if [ -x /opt/swift/usr/bin/clang ]; then clang=/opt/swift/usr/bin/clang
  elif command -v clang >/dev/null; then clang="$(command -v clang)"
  else die "clang not found (set CLANG=, or install Swift's toolchain at /opt/swift)"; fi
fi
case "$(uname -m)" in
  x86_64|aarch64) ;;
  *) die "unsupported host $(uname -m)";;
esac

build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
# cpu_features.c is where the qgemm dispatch learns the CPU's features and MTLSEG_KERNELS.
qgemm_sources=("$src"/qgemm_*.c "$src/cpu_features.c" "$root/Tests/CKernelsHarness/qgemm_check.c")
# -ffp-contract=off as well as the files' pragmas: the epilogue must never be fused.
flags=(-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -ffp-contract=off -I"$src/include" -I"$src")

native() {
  set -e
  echo "== native ($(uname -m)), ASan + UBSan"
  "$clang" "${flags[@]}" -fuse-ld=lld -fsanitize=address,undefined -fno-sanitize-recover=all \
    "${qgemm_sources[@]}" -o "$build/qgemm_check" -lm -lpthread
  "$build/qgemm_check"
  local best isa
  best="$("$build/qgemm_check" --list | head -1)"
  for isa in $("$build/qgemm_check" --list); do
    MTLSEG_KERNELS="$isa" "$build/qgemm_check" --expect-select "$isa"
  done
  MTLSEG_KERNELS=no-such-isa "$build/qgemm_check" --expect-select "$best" # ignored, with a message

  echo "== non-GEMM kernels (softmax, dwconv+GELU, resize, layer norms, decoder sum, attention output) against their old versions, ASan + UBSan"
  local ops_sources=()
  for f in "$src"/*.c; do case "$f" in */qgemm_*) ;; *) ops_sources+=("$f");; esac; done
  "$clang" -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -I"$src/include" -I"$src" -fuse-ld=lld \
    -fsanitize=address,undefined -fno-sanitize-recover=all "${ops_sources[@]}" \
    "$root/Tests/CKernelsHarness/ops_bench.c" "$root/Tests/CKernelsHarness/ops_ref.c" -o "$build/ops_check" -lm -lpthread
  "$build/ops_check" --check
  for isa in scalar avx2; do # the narrower versions too, where the CPU runs wider ones
    MTLSEG_KERNELS=$isa "$build/ops_check" --check >/dev/null 2>&1 || { echo "ops_check failed with MTLSEG_KERNELS=$isa"; return 1; }
  done
  benchmarks_build "$clang" -fuse-ld=lld
}

# The GEMM benchmarks compile (they are run by hand: timings are no test), so that they do not rot.
benchmarks_build() {
  local b
  for b in qgemm_bench heads_bench; do
    "$@" "${flags[@]}" "$src"/*.c "$root/Tests/CKernelsHarness/$b.c" -o "$build/$b" -lm -lpthread
  done
  echo "== benchmarks build: qgemm_bench heads_bench"
}

qemu() {
  set -e
  if [ "$(uname -m)" != x86_64 ]; then echo "== qemu: skipped (host is $(uname -m))"; return 0; fi
  command -v qemu-aarch64 >/dev/null || { echo "run.sh: qemu-aarch64 not found: apt-get install qemu-user" >&2; return 1; }
  [ -d /usr/aarch64-linux-gnu/lib ] ||
    { echo "run.sh: no AArch64 sysroot at /usr/aarch64-linux-gnu: apt-get install libc6-dev-arm64-cross" >&2; return 1; }
  local gcc_cross
  gcc_cross="$(ls -d /usr/lib/gcc-cross/aarch64-linux-gnu/* 2>/dev/null | sort -V | tail -1)"
  [ -n "$gcc_cross" ] && [ -e "$gcc_cross/libgcc.a" ] ||
    { echo "run.sh: no AArch64 libgcc in /usr/lib/gcc-cross: apt-get install libgcc-12-dev-arm64-cross" >&2; return 1; }

  echo "== aarch64 under qemu"
  "$clang" --target=aarch64-linux-gnu --gcc-install-dir="$gcc_cross" -fuse-ld=lld "${flags[@]}" \
    "${qgemm_sources[@]}" -o "$build/qgemm_check_arm" -lm -lpthread
  local q=(qemu-aarch64 -L /usr/aarch64-linux-gnu)

  echo "-- default CPU (max: dotprod)"
  "${q[@]}" "$build/qgemm_check_arm" --expect-select neondot
  "${q[@]}" "$build/qgemm_check_arm"
  MTLSEG_KERNELS=neon "${q[@]}" "$build/qgemm_check_arm" --expect-select neon
  MTLSEG_KERNELS=scalar "${q[@]}" "$build/qgemm_check_arm" --expect-select scalar

  echo "-- cortex-a53 (no dotprod)"
  "${q[@]}" -cpu cortex-a53 "$build/qgemm_check_arm" --expect-select neon
  MTLSEG_KERNELS=neondot "${q[@]}" -cpu cortex-a53 "$build/qgemm_check_arm" --expect-select neon
  MTLSEG_KERNELS=scalar "${q[@]}" -cpu cortex-a53 "$build/qgemm_check_arm" --expect-select scalar
  "${q[@]}" -cpu cortex-a53 "$build/qgemm_check_arm"
  echo "-- cortex-a72 (no dotprod)"
  "${q[@]}" -cpu cortex-a72 "$build/qgemm_check_arm" --expect-select neon
  "${q[@]}" -cpu cortex-a72 "$build/qgemm_check_arm"

  echo "-- the other operations: NEON versions against the portable ones, bit for bit (-O3, as SwiftPM builds them)"
  local ops_sources=()
  for f in "$src"/*.c; do case "$f" in */qgemm_*) ;; *) ops_sources+=("$f");; esac; done
  "$clang" --target=aarch64-linux-gnu --gcc-install-dir="$gcc_cross" -fuse-ld=lld -std=c11 -D_GNU_SOURCE -O3 -g -Wall \
    -Wextra -Werror -I"$src/include" -I"$src" "${ops_sources[@]}" "$root/Tests/CKernelsHarness/ops_bench.c" \
    "$root/Tests/CKernelsHarness/ops_ref.c" -o "$build/ops_check_arm" -lm -lpthread
  local cpu
  for cpu in cortex-a76 cortex-a72 cortex-a53; do "${q[@]}" -cpu $cpu "$build/ops_check_arm" --check --only=neon; done
  # the dispatched (NEON) versions against the old code, on the model's shapes (a minute emulated)
  "${q[@]}" -cpu cortex-a53 "$build/ops_check_arm" --check >/dev/null
  benchmarks_build "$clang" --target=aarch64-linux-gnu --gcc-install-dir="$gcc_cross" -fuse-ld=lld
}

failed=()
for stage in "${stages[@]}"; do
  case "$stage" in
    native|qemu)
      # Not `(…) || failed+=…`: bash ignores set -e inside anything on the left of || (a failed
      # check would go unnoticed unless it came last), so the status is taken on its own line.
      (set -e; "$stage")
      [ $? -eq 0 ] || failed+=("$stage");;
    *) die "unknown stage $stage (native, qemu)";;
  esac
done
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]}"
echo "run.sh: all checks passed (${stages[*]})"
