#!/usr/bin/env bash
# Instructions per inference of the whole int8 model as AArch64, mtlseg against ONNX Runtime, counted
# under qemu-user with the project's TCG plugin (insn_count.c) on -cpu cortex-a76 (Raspberry Pi 5: dot
# product) and -cpu cortex-a72 (Raspberry Pi 4: none), one thread, 256²:
#   - mtlseg: `mtlseg bench` of the AArch64 release build of the working tree (.ci/arm64-cross), on the
#     anchors' SegFormer-b0 calibrated to int8 as calibration/compare_with_peers.sh does, and on the
#     demo MTLSegFormer (calibration/demo/crops-int8.safetensors);
#   - ONNX Runtime (the aarch64 wheel from PyPI, in sid's arm64 Python): the b0 quantized by the
#     anchors' peers.py (QDQ, u8 activations, s8 per-channel weights), and DEMO_ONNX if given (an int8
#     ONNX export of the demo model); otherwise its cell says so.
# An inference is (the count with 3 iterations − the count with 1) / 2: start-up, loading and the first
# inference drop out (mtlseg bench runs 3 warm-up passes first; ort_infer.py none, so ONNX Runtime's
# second and third inferences are counted). Counts repeat run to run. They are instruction counts under
# emulation, not time on a board: they ignore IPC, latencies and the memory system.
#
#   sudo Tests/ARM64/inference_cost.sh [DEMO_ONNX]
#
# Run by hand, not in CI. The first run makes the cross-build chroot (.ci/arm64-cross), the qemu
# sysroot (qemu_sysroot.sh), downloads ONNX Runtime's aarch64 wheels and calibrates the b0 on x86
# (a release build here): most of an hour on a loaded 2-core machine; later runs reuse all of it and
# take 10-20 minutes (the emulated inferences). Needs qemu-user, clang (/opt/swift/usr/bin) and the
# anchors' images and ORT models (../shared/anchors peers.py prepare: ~/.cache/mtlseg-peers).
# Environment:
#   MTLSEG_ARM64_BIN   the AArch64 mtlseg to count (default: .ci/arm64-cross builds the working tree)
#   B0_INT8            the b0 in int8 (default: COST_CACHE/b0-int8.safetensors, calibrated on first use;
#                      delete it to recalibrate)
#   B0_ONNX            ONNX Runtime's b0 (default PEERS_CACHE/segformer_b0_256_ort_qdq_u8s8.onnx)
#   DEMO_MODEL         default calibration/demo/crops-int8.safetensors
#   DEMO_ONNX          as the argument
#   CPUS               default "cortex-a76 cortex-a72"
#   COST_CACHE         default ~/.cache/mtlseg-arm64-cost (b0, sysroot, Python byte code)
#   ORT_CACHE          default ~/.cache/mtlseg-arm64-ort (wheels and their install)
#   PEERS_DIR, PEERS_CACHE, PEERS_PYTHON   as calibration/compare_with_peers.sh (PEERS_PYTHON's pip
#                      downloads the wheels)
#   ORT_COUNTS         counts mtlseg only: ONNX Runtime's columns from earlier runs instead (its counts repeat
#                      to 0.1 M), as CPU.MODEL=MILLIONS words, MODEL b0 or demo, e.g.
#                      "cortex-a76.b0=391.4 cortex-a72.b0=682.5"; nothing of ONNX Runtime is set up or run
set -euo pipefail
shopt -s inherit_errexit # a failed count inside $(...) stops the script
root="$(cd "$(dirname "$0")/../.." && pwd)"
export PATH="$PATH:/opt/swift/usr/bin"
cache="${COST_CACHE:-$HOME/.cache/mtlseg-arm64-cost}"
ort_cache="${ORT_CACHE:-$HOME/.cache/mtlseg-arm64-ort}"
peers_dir="${PEERS_DIR:-$root/../shared/anchors}"
peers_cache="${PEERS_CACHE:-$HOME/.cache/mtlseg-peers}"
python="${PEERS_PYTHON:-$HOME/.venvs/peers/bin/python}"
b0_onnx="${B0_ONNX:-$peers_cache/segformer_b0_256_ort_qdq_u8s8.onnx}"
demo_model="${DEMO_MODEL:-$root/calibration/demo/crops-int8.safetensors}"
demo_onnx="${1:-${DEMO_ONNX:-}}"
cpus="${CPUS:-cortex-a76 cortex-a72}"
size=256
[ "$(id -u)" -eq 0 ] || { echo "inference_cost: run as root (the build chroot)" >&2; exit 1; }
command -v qemu-aarch64 >/dev/null || { echo "inference_cost: qemu-aarch64 not found: apt-get install qemu-user" >&2; exit 1; }
declare -A given # ONNX Runtime's counts from ORT_COUNTS (instructions)
ort_given=0
if [ -n "${ORT_COUNTS:-}" ]; then
  ort_given=1
  for word in $ORT_COUNTS; do
    [[ "$word" =~ ^([a-z0-9-]+)\.(b0|demo)=([0-9.]+)$ ]] || { echo "inference_cost: ORT_COUNTS: '$word' is not CPU.b0=M or CPU.demo=M" >&2; exit 1; }
    given[${BASH_REMATCH[1]}.o${BASH_REMATCH[2]}]="$(awk -v m="${BASH_REMATCH[3]}" 'BEGIN { printf "%.0f", m * 1e6 }')"
  done
fi
((ort_given)) || [ -f "$b0_onnx" ] || { echo "inference_cost: no ONNX Runtime b0 at $b0_onnx (run peers.py prepare, see $peers_dir/README.md)" >&2; exit 1; }
[ -z "$demo_onnx" ] || [ -f "$demo_onnx" ] || { echo "inference_cost: no demo ONNX model at $demo_onnx" >&2; exit 1; }
mkdir -p "$cache"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log() { echo "inference_cost: $*" >&2; }

# The counting plugin (a host shared object).
clang="${CLANG:-}"
[ -n "$clang" ] || { [ -x /opt/swift/usr/bin/clang ] && clang=/opt/swift/usr/bin/clang || clang="$(command -v clang)"; }
"$clang" -O2 -shared -fPIC -Wall -Wextra -Werror "$root/Tests/ARM64/insn_count.c" -o "$work/insn_count.so"

# mtlseg for AArch64.
bin="${MTLSEG_ARM64_BIN:-}"
if [ -z "$bin" ]; then
  log "building the AArch64 mtlseg (.ci/arm64-cross)"
  bin="$("$root/.ci/arm64-cross" mtlseg)"
fi
cp "$bin" "$work/mtlseg"; bin="$work/mtlseg" # a build running meanwhile cannot change what is counted

# The b0 in int8: calibrated on x86 (model files do not depend on the architecture), as
# compare_with_peers.sh does: 16 calibration images at 512², the defaults.
b0_int8="${B0_INT8:-$cache/b0-int8.safetensors}"
if [ ! -f "$b0_int8" ]; then
  model="$peers_dir/models/segformer-b0-seed0"
  [ -d "$model" ] || { echo "inference_cost: no b0 anchor at $model (set PEERS_DIR)" >&2; exit 1; }
  [ -d "$peers_cache/images/calib-512" ] || { echo "inference_cost: no calibration images in $peers_cache (peers.py prepare)" >&2; exit 1; }
  log "calibrating the b0 on x86 into $b0_int8"
  (cd "$root" && swift build -c release --product mtlseg >&2)
  "$root/.build/release/mtlseg" calibrate --model "$model" --images "$peers_cache/images/calib-512" \
    --eval-images "$peers_cache/images/eval-512" --size 512x512 --out "$b0_int8" >&2
fi

# The sysroot qemu runs in, and ONNX Runtime for its Python.
sysroot="$("$root/Tests/ARM64/qemu_sysroot.sh")"
pyver="$(basename "$(readlink "$sysroot/usr/bin/python3")")"; pyver="${pyver#python}" # e.g. 3.14
site="$ort_cache/site-cp${pyver/./}"
if ((!ort_given)) && [ ! -d "$site/onnxruntime" ]; then
  log "downloading ONNX Runtime's aarch64 wheels for Python $pyver"
  platforms=(--platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64)
  pyargs=(--only-binary=:all: --python-version "$pyver" --implementation cp --abi "cp${pyver/./}")
  "$python" -m pip download -q "${platforms[@]}" "${pyargs[@]}" -d "$ort_cache/wheels-cp${pyver/./}" onnxruntime numpy >&2
  "$python" -m pip install -q --no-index --find-links "$ort_cache/wheels-cp${pyver/./}" --target "$site" --ignore-requires-python \
    "${platforms[@]}" "${pyargs[@]}" onnxruntime numpy >&2 2>/dev/null \
    || [ -d "$site/onnxruntime" ] # pip warns about the host's own packages' pins; the install is what counts
fi
ort_version="$( ((ort_given)) && echo "(counts given in ORT_COUNTS)" || sed -n 's/^Version: //p' "$site"/onnxruntime-*.dist-info/METADATA | head -1)"
# ort_infer.py alone in its folder (Python lists the script's folder on import).
mkdir -p "$work/ort"; cp "$root/Tests/ARM64/ort_infer.py" "$work/ort/"

guest_env=(LANG=C.UTF-8 HOME="$cache/home" OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
           PYTHONPATH="$site" PYTHONHASHSEED=0 PYTHONNOUSERSITE=1 PYTHONPYCACHEPREFIX="$cache/pycache"
           ORT_DISABLE_TELEMETRY=1)
mkdir -p "$cache/home"
count() { # count CPU PROGRAM ARGS...: guest instructions of one run
  local cpu="$1"; shift
  env -i "${guest_env[@]}" qemu-aarch64 -L "$sysroot" -cpu "$cpu" -plugin "$work/insn_count.so,outfile=$work/n" "$@" >"$work/out" 2>&1 \
    || { log "failed under -cpu $cpu: $*"; cat "$work/out" >&2; return 1; }
  cat "$work/n"
}
per_inference() { # per_inference CPU mtlseg|ort MODEL
  local cpu="$1" engine="$2" model="$3" n1 n3
  if [ "$engine" = mtlseg ]; then
    n1="$(count "$cpu" "$bin" bench --model "$model" --size "${size}x$size" --threads 1 --iterations 1)"
    n3="$(count "$cpu" "$bin" bench --model "$model" --size "${size}x$size" --threads 1 --iterations 3)"
  else
    n1="$(count "$cpu" "$sysroot/usr/bin/python3" "$work/ort/ort_infer.py" "$model" 1 "$size")"
    n3="$(count "$cpu" "$sysroot/usr/bin/python3" "$work/ort/ort_infer.py" "$model" 3 "$size")"
  fi
  echo $(( (n3 - n1) / 2 ))
}

declare -A n
for cpu in $cpus; do
  if ((ort_given)); then
    log "$cpu: mtlseg b0"; n[$cpu.mb0]="$(per_inference "$cpu" mtlseg "$b0_int8")"
    log "$cpu: mtlseg demo"; n[$cpu.mdemo]="$(per_inference "$cpu" mtlseg "$demo_model")"
    n[$cpu.ob0]="${given[$cpu.ob0]:-}"; n[$cpu.odemo]="${given[$cpu.odemo]:-}"
    continue
  fi
  "$root/Tests/ARM64/qemu_sysroot.sh" "$cpu" >/dev/null # its /proc/cpuinfo
  # Python's byte code is written once, before anything is counted.
  env -i "${guest_env[@]}" qemu-aarch64 -L "$sysroot" -cpu "$cpu" "$sysroot/usr/bin/python3" "$work/ort/ort_infer.py" "$b0_onnx" 0 "$size"
  log "$cpu: mtlseg b0"; n[$cpu.mb0]="$(per_inference "$cpu" mtlseg "$b0_int8")"
  log "$cpu: ONNX Runtime b0"; n[$cpu.ob0]="$(per_inference "$cpu" ort "$b0_onnx")"
  log "$cpu: mtlseg demo"; n[$cpu.mdemo]="$(per_inference "$cpu" mtlseg "$demo_model")"
  if [ -n "$demo_onnx" ]; then log "$cpu: ONNX Runtime demo"; n[$cpu.odemo]="$(per_inference "$cpu" ort "$demo_onnx")"; fi
done

rev="$(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- Sources || echo +changes)"
echo "Guest instructions per inference (millions), ${size}², 1 thread, qemu-user $(qemu-aarch64 --version | head -1 | awk '{print $3}'),"
echo "mtlseg $rev (AArch64 release build), ONNX Runtime $ort_version (aarch64 wheel, Python $pyver)."
echo "Instruction counts under emulation, not board timings. ratio = mtlseg / ONNX Runtime."
echo
header="| model |"; rule="|---|"
for cpu in $cpus; do header+=" mtlseg, $cpu | ONNX Runtime, $cpu | ratio |"; rule+="---:|---:|---:|"; done
echo "$header"; echo "$rule"
cell() { [ -n "${1:-}" ] && awk -v x="$1" 'BEGIN { printf "%.1f", x / 1e6 }' || printf '%s' "${2:-}"; }
ratio() { [ -n "${1:-}" ] && [ -n "${2:-}" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || printf '—'; }
for m in b0 demo; do
  case $m in
    b0) row="| SegFormer-b0 int8 ($(basename "$b0_int8"); ORT: $(basename "$b0_onnx"))" ;;
    demo) row="| demo MTLSegFormer ($(basename "$demo_model"); ORT: $([ -n "$demo_onnx" ] && basename "$demo_onnx" || { ((ort_given)) && echo "as given" || echo "no export given"; }))" ;;
  esac
  for cpu in $cpus; do
    row+=" | $(cell "${n[$cpu.m$m]:-}") | $(cell "${n[$cpu.o$m]:-}" "not run") | $(ratio "${n[$cpu.m$m]:-}" "${n[$cpu.o$m]:-}")"
  done
  echo "$row |"
done
