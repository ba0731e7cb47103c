#!/usr/bin/env bash
# Compares the raw logits of the x86_64 build with the AArch64 build (the one .ci/arm64 leaves in its
# chroot), run under qemu-aarch64 with the default CPU (`max`: dotprod kernels) and with cortex-a72
# (no dotprod: fallback kernels), for the fp32 engine and an int8 model calibrated on the host.
#
#   Tests/ARM64/compare_logits.sh [IMAGE]      (after .ci/arm64; needs python3 with numpy)
#
# EXTRA_MODELS (space-separated model files or checkpoint folders) are compared too, e.g. the anchors'
# b0 calibrated by calibration/compare_with_peers.sh OUT, on one of its 512² eval images:
#   EXTRA_MODELS=OUT/b0-int8.safetensors Tests/ARM64/compare_logits.sh ~/.cache/mtlseg-peers/images/eval-512/eval-000.png
# Environment: MTLSEG_ARM64_ROOT (the chroot, as in .ci/arm64), MTLSEG_X86_BIN (an x86 mtlseg;
# default: `swift build --product mtlseg` here), FP32_TOL (largest |difference| allowed for fp32,
# default 1e-3; measured ~1e-6), INT8_TOL (int8 against x86 on the portable kernels, default 0: bit
# for bit), INT8_BEST_TOL (int8 against x86 on its best kernels, default 0.05; measured 1.2e-3 on
# the anchors' b0, 0.032 on the tiny fixture: single u8 steps at rounding boundaries, see below).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
R="${MTLSEG_ARM64_ROOT:-/var/cache/mtlseg/arm64-sid}"
image="$(realpath "${1:-$root/calibration/examples/field.png}")"
fixtures="$root/Tests/MTLSegCoreTests/Fixtures"
arm_bin="$R/src/mtlseg/.build/debug/mtlseg"
export PATH="$PATH:/opt/swift/usr/bin"

[ -x "$arm_bin" ] || { echo "compare_logits: no AArch64 mtlseg at $arm_bin: run .ci/arm64 first" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "compare_logits: run as root (chroot)" >&2; exit 1; }
x86_bin="${MTLSEG_X86_BIN:-}"
if [ -z "$x86_bin" ]; then
  (cd "$root" && swift build --product mtlseg >/dev/null)
  x86_bin="$root/.build/debug/mtlseg"
fi

# Everything lives inside the chroot's /tmp, so the AArch64 binary (run chroot'ed: its libraries
# are reached through absolute symlinks, which qemu's -L prefix does not follow) sees the same paths.
mkdir -p "$R/tmp"
work="$(mktemp -d -p "$R/tmp" compare_logits.XXXXXX)"
unmount=()
cleanup() { local m; for m in "${unmount[@]}"; do umount -l "$m" || true; done; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM
if ! mountpoint -q "$R/proc"; then mount -t proc proc "$R/proc"; unmount+=("$R/proc"); fi
cp "$image" "$work/"; image="$work/$(basename "$image")"
mkdir -p "$work/models"; cp "$fixtures"/*-tiny.safetensors "$work/models/"; fixtures="$work/models"

arm() { # arm CPU ARGS...: the AArch64 binary in the chroot; QEMU_CPU reaches qemu through binfmt
  local cpu="$1"; shift
  local args=() a
  for a in "$@"; do args+=("${a//$R\//\/}"); done # host paths under $R -> chroot paths
  if [ "$cpu" = max ]; then
    chroot "$R" /usr/bin/env -i LANG=C.UTF-8 /src/mtlseg/.build/debug/mtlseg "${args[@]}"
  else
    QEMU_CPU="$cpu" chroot "$R" /usr/bin/env -i LANG=C.UTF-8 QEMU_CPU="$cpu" /src/mtlseg/.build/debug/mtlseg "${args[@]}"
  fi
}

# The int8 model: calibrated once, on x86, from the image itself; both builds then run the same file.
mkdir -p "$work/calib"; cp "$image" "$work/calib/"
models=("$fixtures"/segformer-tiny.safetensors "$fixtures"/mtl2-tiny.safetensors "$fixtures"/mtl3-tiny.safetensors)
"$x86_bin" calibrate --model "$fixtures/mtl3-tiny.safetensors" --images "$work/calib" --eval-images "$work/calib" \
  --out "$work/mtl3-tiny.int8.safetensors" >/dev/null \
  || echo "compare_logits: calibration failed; int8 not compared" >&2
[ -e "$work/mtl3-tiny.int8.safetensors" ] && models+=("$work/mtl3-tiny.int8.safetensors")
for extra in ${EXTRA_MODELS:-}; do
  cp -r "$(realpath "$extra")" "$work/models/" && models+=("$work/models/$(basename "$extra")")
done

# Compares the AArch64 logits of $1/<cpu>*.npy with $1/<ref>*.npy: max |difference| within $4.
compare() { # compare DIR CPU REF TOLERANCE NAME
  python3 - "$@" <<'PY'
import glob, os, sys
import numpy as np
d, cpu, ref_prefix, tol, name = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
ok = True
refs = sorted(glob.glob(os.path.join(d, ref_prefix + "*.npy")))
assert refs, "no x86 logits"
for ref in refs:
    task = os.path.basename(ref)[len(ref_prefix):]
    a, b = np.load(ref), np.load(os.path.join(d, cpu + task))
    diff = float(np.max(np.abs(a.astype(np.float64) - b))) if a.shape == b.shape else float("inf")
    agree = float(np.mean(a.argmax(0) == b.argmax(0))) if a.shape == b.shape else 0.0
    good = diff <= tol
    ok &= good
    print(f"{name:22s} {task.strip('.') or '-':12s} {cpu:10s} vs {ref_prefix:12s} shape {a.shape} max|diff| {diff:.3g} "
          f"argmax agreement {agree:.4%}  {'ok' if good else f'FAIL (tolerance {tol:g})'}")
sys.exit(0 if ok else 1)
PY
}

# x86 runs twice: on its best kernels, and with MTLSEG_KERNELS=scalar, which keeps every kernel on
# the portable C that AArch64 builds run too. The int8 products are exact either way; with AVX-512
# VNNI the fp32 patch embeddings run as 16-bit integer convolutions, and the AVX-512 versions of the
# fp32 steps between the products are not all step-for-step copies of the portable ones (softmax's exp2,
# LayerNorm's float sums, the depthwise taps' order); a difference that small moves a u8 activation by one step
# where it sits on a rounding boundary.
status=0
for model in "${models[@]}"; do
  name="$(basename "$model" .safetensors)"
  mkdir -p "$work/$name"
  "$x86_bin" infer --model "$model" --image "$image" --out "$work/$name/out" --logits "$work/$name/x86-best.npy" >/dev/null
  MTLSEG_KERNELS=scalar "$x86_bin" infer --model "$model" --image "$image" --out "$work/$name/out" \
    --logits "$work/$name/x86-portable.npy" >/dev/null
  for cpu in max cortex-a72; do
    arm "$cpu" infer --model "$model" --image "$image" --out "$work/$name/$cpu" --logits "$work/$name/$cpu.npy" >/dev/null
    if [[ "$name" == *int8* ]]; then
      compare "$work/$name" "$cpu" x86-portable "${INT8_TOL:-0}" "$name" || status=1
      compare "$work/$name" "$cpu" x86-best "${INT8_BEST_TOL:-0.05}" "$name" || status=1
    else
      compare "$work/$name" "$cpu" x86-best "${FP32_TOL:-1e-3}" "$name" || status=1
    fi
  done
done
exit "$status"
