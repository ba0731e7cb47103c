#!/usr/bin/env bash
# Where one inference's instructions go, by function: counts the guest instructions of an AArch64
# `mtlseg bench --threads 1` under qemu-user per translated block (insn_profile.c), with 1 and 3
# iterations, and attributes the difference (halved: one inference) to the binary's symbols.
# Instructions in shared libraries (libc's memcpy, libm) are summed as one line.
#
#   Tests/ARM64/profile.sh MTLSEG_AARCH64 MODEL [CPU] [TOP]     (CPU default cortex-a76, TOP default 40)
#
# MTLSEG_AARCH64: e.g. what `sudo .ci/arm64-cross` prints (not stripped). Runs in the qemu sysroot of
# qemu_sysroot.sh (MTLSEG_QEMU_SYSROOT, default ~/.cache/mtlseg-arm64-cost/sysroot), 256² (SIZE).
# Instruction counts under emulation, not board timings. The binary is a PIE: qemu-user 7.2 loads it
# at 0x5500000000 (checked: the count of the binary's own symbols must cover most of the run).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$1" model="$2" cpu="${3:-cortex-a76}" top="${4:-40}" size="${SIZE:-256}"
sysroot="${MTLSEG_QEMU_SYSROOT:-$HOME/.cache/mtlseg-arm64-cost/sysroot}"
export PATH="$PATH:/opt/swift/usr/bin"
clang="${CLANG:-}"
[ -n "$clang" ] || { [ -x /opt/swift/usr/bin/clang ] && clang=/opt/swift/usr/bin/clang || clang="$(command -v clang)"; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$clang" -O2 -shared -fPIC -Wall -Wextra -Werror "$root/Tests/ARM64/insn_profile.c" -o "$work/insn_profile.so"
for it in 1 3; do
  env -i LANG=C.UTF-8 HOME="$work" OPENBLAS_NUM_THREADS=1 qemu-aarch64 -L "$sysroot" -cpu "$cpu" \
    -plugin "$work/insn_profile.so,outfile=$work/p$it" "$bin" bench --model "$model" --size "${size}x$size" \
    --threads 1 --iterations "$it" >"$work/out$it" 2>&1 || { cat "$work/out$it" >&2; exit 1; }
done
llvm-nm --defined-only --numeric-sort --print-size "$bin" >"$work/syms" 2>/dev/null || llvm-nm -n --defined-only "$bin" >"$work/syms"
python3 - "$work" "$top" <<'PY'
import bisect, collections, subprocess, sys
work, top = sys.argv[1], int(sys.argv[2])
BASE = 0x5500000000
syms = []
for line in open(f"{work}/syms"):
    f = line.split()
    if len(f) >= 3 and f[-2].lower() in "tw":
        syms.append((int(f[0], 16), f[-1]))
syms.sort()
starts = [s for s, _ in syms]
def load(path):
    d = collections.Counter()
    for line in open(path):
        a, n = line.split()
        a = int(a, 16) - BASE
        if 0 <= a < (starts[-1] + (1 << 20) if starts else 0):
            i = bisect.bisect_right(starts, a) - 1
            d[syms[i][1] if i >= 0 else "?"] += int(n)
        else:
            d["(shared libraries)"] += int(n)
    return d
p1, p3 = load(f"{work}/p1"), load(f"{work}/p3")
per = {k: (p3[k] - p1.get(k, 0)) / 2 for k in p3}
total = sum(per.values())
names = sorted(per, key=lambda k: -per[k])[:top]
demangled = subprocess.run(["swift-demangle", "--simplified"], input="\n".join(names), capture_output=True, text=True).stdout.splitlines() \
    if subprocess.run(["which", "swift-demangle"], capture_output=True).returncode == 0 else names
print(f"instructions per inference: {total / 1e6:.2f} M")
print("| M instr | % | symbol |\n|---:|---:|---|")
for k, d in zip(names, demangled):
    print(f"| {per[k] / 1e6:.2f} | {100 * per[k] / total:.1f} | `{d[:110]}` |")
PY
