#!/usr/bin/env bash
# Compares the raw logits of the x86_64 build with the AArch64 build (the one .ci/arm64 leaves in its
# chroot), run under qemu-aarch64 with the default CPU (`max`: dotprod kernels) and with cortex-a72
# (no dotprod: fallback kernels), for the fp32 engine and an int8 model calibrated on the host.
#
#   Tests/ARM64/compare_logits.sh [IMAGE]      (after .ci/arm64; needs python3 with numpy)
#
# Environment: MTLSEG_ARM64_ROOT (the chroot, as in .ci/arm64), MTLSEG_X86_BIN (an x86 mtlseg;
# default: `swift build --product mtlseg` here), FP32_TOL (largest |difference| allowed for fp32,
# default 1e-3), INT8_TOL (for the int8 model, default 1e-3: its GEMMs are exact integers, but the fp32
# ops between them (softmax, GELU, norms) differ by ISA in the last bits and can move a requantisation step).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
R="${MTLSEG_ARM64_ROOT:-/var/cache/mtlseg/arm64-sid}"
image="$(realpath "${1:-$root/calibration/examples/field.png}")"
fixtures="$root/Tests/MTLSegCoreTests/Fixtures"
arm_bin="$R/src/mtlseg/.build/debug/mtlseg"
export PATH="$PATH:/opt/swift/usr/bin"

[ -x "$arm_bin" ] || { echo "compare_logits: no AArch64 mtlseg at $arm_bin: run .ci/arm64 first" >&2; exit 1; }
qemu="$(command -v qemu-aarch64-static || command -v qemu-aarch64 || true)"
[ "$(uname -m)" = aarch64 ] && qemu=""
[ "$(uname -m)" = aarch64 ] || [ -n "$qemu" ] || { echo "compare_logits: qemu-aarch64(-static) not found" >&2; exit 1; }
x86_bin="${MTLSEG_X86_BIN:-}"
if [ -z "$x86_bin" ]; then
  (cd "$root" && swift build --product mtlseg >/dev/null)
  x86_bin="$root/.build/debug/mtlseg"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

arm() { # arm CPU ARGS...: the AArch64 binary, its libraries (Swift runtime, openblas...) from the chroot
  local cpu="$1"; shift
  if [ -n "$qemu" ]; then "$qemu" -L "$R" -cpu "$cpu" "$arm_bin" "$@"; else "$arm_bin" "$@"; fi
}

# The int8 model: calibrated once, on x86, from the image itself; both builds then run the same file.
mkdir -p "$work/calib"; cp "$image" "$work/calib/"
models=("$fixtures"/segformer-tiny.safetensors "$fixtures"/mtl2-tiny.safetensors "$fixtures"/mtl3-tiny.safetensors)
"$x86_bin" calibrate --model "$fixtures/mtl3-tiny.safetensors" --images "$work/calib" --eval-images "$work/calib" \
  --out "$work/mtl3-tiny.int8.safetensors" >/dev/null \
  || echo "compare_logits: calibration failed; int8 not compared" >&2
[ -e "$work/mtl3-tiny.int8.safetensors" ] && models+=("$work/mtl3-tiny.int8.safetensors")

status=0
for model in "${models[@]}"; do
  name="$(basename "$model" .safetensors)"
  tol="${FP32_TOL:-1e-3}"; [[ "$name" == *int8* ]] && tol="${INT8_TOL:-1e-3}"
  mkdir -p "$work/$name"
  "$x86_bin" infer --model "$model" --image "$image" --out "$work/$name/x86" --logits "$work/$name/x86.npy" >/dev/null
  for cpu in max cortex-a72; do
    arm "$cpu" infer --model "$model" --image "$image" --out "$work/$name/$cpu" --logits "$work/$name/$cpu.npy" >/dev/null
    python3 - "$work/$name" "$cpu" "$tol" "$name" <<'PY' || status=1
import glob, os, sys
import numpy as np
d, cpu, tol, name = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
ok = True
refs = sorted(glob.glob(os.path.join(d, "x86*.npy")))
assert refs, "no x86 logits"
for ref in refs:
    other = os.path.join(d, os.path.basename(ref).replace("x86", cpu, 1))
    a, b = np.load(ref), np.load(other)
    diff = float(np.max(np.abs(a.astype(np.float64) - b))) if a.shape == b.shape else float("inf")
    agree = float(np.mean(a.argmax(0) == b.argmax(0))) if a.shape == b.shape else 0.0
    good = diff <= tol
    ok &= good
    print(f"{name:28s} {os.path.basename(ref)[4:] or '-':12s} {cpu:11s} shape {a.shape} max|diff| {diff:.3g} "
          f"argmax agreement {agree:.4%}  {'ok' if good else f'FAIL (tolerance {tol:g})'}")
sys.exit(0 if ok else 1)
PY
  done
done
exit "$status"
