#!/usr/bin/env bash
# Checks every qgemm kernel set against the scalar reference, bit for bit:
#   1. natively (every set this CPU runs; built with ASan + UBSan),
#   2. as AArch64 under qemu-aarch64 with the default CPU (`max`: has dotprod → neondot),
#   3. under qemu-aarch64 -cpu cortex-a53 (no dotprod → the scalar set must be chosen),
# and that MTLSEG_KERNELS caps the choice. Installs nothing; needs clang (Swift's is
# fine), ld.lld, qemu-aarch64 and the Debian AArch64 cross sysroot:
#   apt-get install qemu-user libc6-dev-arm64-cross libgcc-12-dev-arm64-cross
# (gcc-aarch64-linux-gnu pulls in the last two).
set -euo pipefail
unset MTLSEG_KERNELS # the checks below set it themselves
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/Sources/CKernels"

die() { echo "run.sh: $*" >&2; exit 1; }

clang="${CLANG:-}"
if [ -z "$clang" ]; then
  if [ -x /opt/swift/usr/bin/clang ]; then clang=/opt/swift/usr/bin/clang
  elif command -v clang >/dev/null; then clang="$(command -v clang)"
  else die "clang not found (set CLANG=, or install Swift's toolchain at /opt/swift)"; fi
fi
command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 not found: apt-get install qemu-user"
[ -d /usr/aarch64-linux-gnu/lib ] || die "no AArch64 sysroot at /usr/aarch64-linux-gnu: apt-get install libc6-dev-arm64-cross"
gcc_cross="$(ls -d /usr/lib/gcc-cross/aarch64-linux-gnu/* 2>/dev/null | sort -V | tail -1)"
[ -n "$gcc_cross" ] && [ -e "$gcc_cross/libgcc.a" ] || die "no AArch64 libgcc in /usr/lib/gcc-cross: apt-get install libgcc-12-dev-arm64-cross"

build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
sources=("$src"/qgemm_*.c "$root/Tests/CKernelsHarness/qgemm_check.c")
# -ffp-contract=off as well as the files' pragmas: the epilogue must never be fused.
flags=(-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -ffp-contract=off -I"$src/include" -I"$src")

case "$(uname -m)" in
  x86_64|aarch64) ;;
  *) die "unsupported host $(uname -m)";;
esac

echo "== native ($(uname -m)), ASan + UBSan"
"$clang" "${flags[@]}" -fuse-ld=lld -fsanitize=address,undefined -fno-sanitize-recover=all \
  "${sources[@]}" -o "$build/qgemm_check" -lm -lpthread
"$build/qgemm_check"
best="$("$build/qgemm_check" --list | head -1)"
for isa in $("$build/qgemm_check" --list); do
  MTLSEG_KERNELS="$isa" "$build/qgemm_check" --expect-select "$isa"
done
MTLSEG_KERNELS=no-such-isa "$build/qgemm_check" --expect-select "$best" # ignored, with a message

if [ "$(uname -m)" = x86_64 ]; then
  echo "== aarch64 under qemu"
  "$clang" --target=aarch64-linux-gnu --gcc-install-dir="$gcc_cross" -fuse-ld=lld "${flags[@]}" \
    "${sources[@]}" -o "$build/qgemm_check_arm" -lm -lpthread
  qemu=(qemu-aarch64 -L /usr/aarch64-linux-gnu)

  echo "-- default CPU (max: dotprod)"
  "${qemu[@]}" "$build/qgemm_check_arm" --expect-select neondot
  "${qemu[@]}" "$build/qgemm_check_arm"
  MTLSEG_KERNELS=scalar "${qemu[@]}" "$build/qgemm_check_arm" --expect-select scalar

  echo "-- cortex-a53 (no dotprod)"
  "${qemu[@]}" -cpu cortex-a53 "$build/qgemm_check_arm" --expect-select scalar
  MTLSEG_KERNELS=neondot "${qemu[@]}" -cpu cortex-a53 "$build/qgemm_check_arm" --expect-select scalar
  "${qemu[@]}" -cpu cortex-a53 "$build/qgemm_check_arm"
fi
echo "== non-GEMM kernels (softmax, dwconv+GELU, resize, layer norms, decoder sum, attention output) against their old versions, ASan + UBSan"
"$clang" -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -I"$src/include" -I"$src" -fuse-ld=lld \
  -fsanitize=address,undefined -fno-sanitize-recover=all "$src"/{attention_q8,q8_ops,fp32_ops,ops_avx512,ops_avx2}.c \
  "$root/Tests/CKernelsHarness/ops_bench.c" "$root/Tests/CKernelsHarness/ops_ref.c" -o "$build/ops_check" -lm
"$build/ops_check" --check
echo "run.sh: all qgemm checks passed"
