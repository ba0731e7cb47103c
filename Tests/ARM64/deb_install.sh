#!/usr/bin/env bash
# Installs the arm64 package with apt in a Debian 12 (bookworm) arm64 chroot, run under qemu-user, and
# runs it from the installed files: `mtlseg --help`, `mtlsegd --help` (the link), `mtlseg infer` on
# calibration/examples/field.png with the packaged demo model under qemu's default CPU (`max`: the
# dot-product kernels) and QEMU_CPU=cortex-a72 (none), each also with MTLSEG_KERNELS=scalar, and
# `mtlseg bench --iterations 3`. The masks are compared with x86's, made by an x86 mtlseg of the same
# tree with MTLSEG_KERNELS=scalar (the portable C that AArch64's kernels follow) on the same model: with
# MTLSEG_KERNELS=scalar on AArch64 too they must be equal pixel for pixel; with AArch64's own kernels a
# model with wide decoder inputs (the demo) runs those products at 16 bits where x86's portable C runs
# them in fp32 (Tests/ARM64/README.md), so there the logits must agree within 0.05 (compare_logits.sh's
# bound) and the masks in 99.9 % of their pixels. How many logits differ, and by how much, is printed.
#
#   sudo Tests/ARM64/deb_install.sh [ARM64_DEB [AMD64_DEB]]
#       (default dist/mtlseg_0.1.0_arm64.deb and dist/mtlseg_0.1.0_amd64.deb, whose binary is the x86
#        one unless MTLSEG_X86_BIN names another, e.g. .build/release/mtlseg)
#
# The chroot (debootstrap --variant=minbase, ~2 minutes with a fast mirror; 230 MB) is made once and
# kept clean: each run installs into an overlay over it, thrown away afterwards, so apt resolves the
# package's Depends from the base system alone each time. Needs qemu-user-static and binfmt_misc
# (Debian's qemu-user-static registers them), debootstrap, and a Python with numpy and Pillow for the
# comparison (PYTHON, default ~/.venvs/peers/bin/python, else python3).
# Environment: MTLSEG_ARM64_RELEASE (the Debian release to install on, default bookworm; trixie, sid...),
#   MTLSEG_ARM64_CHECK_ROOT (its chroot, default /var/cache/mtlseg/arm64-RELEASE-minbase),
#   MTLSEG_ARM64_DEBIAN (the mirror, default http://deb.debian.org/debian).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
arm64_deb="$(realpath "${1:-$root/dist/mtlseg_0.1.0_arm64.deb}")"
amd64_deb="$(realpath "${2:-$root/dist/mtlseg_0.1.0_amd64.deb}")"
RELEASE="${MTLSEG_ARM64_RELEASE:-bookworm}"
BASE="${MTLSEG_ARM64_CHECK_ROOT:-/var/cache/mtlseg/arm64-$RELEASE-minbase}" # not .ci/arm64's arm64-sid
DEBIAN="${MTLSEG_ARM64_DEBIAN:-http://deb.debian.org/debian}"
PYTHON="${PYTHON:-$([ -x "$HOME/.venvs/peers/bin/python" ] && echo "$HOME/.venvs/peers/bin/python" || echo python3)}"
log() { echo "deb_install: $*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "run as root (debootstrap, mount, chroot)"; exit 1; }
for f in "$arm64_deb" "$amd64_deb"; do [ -f "$f" ] || { log "no package at $f"; exit 1; }; done
[ "$(dpkg-deb -f "$arm64_deb" Architecture)" = arm64 ] || { log "$arm64_deb is not an arm64 package"; exit 1; }
"$PYTHON" -c 'import numpy, PIL' 2>/dev/null || { log "$PYTHON lacks numpy or Pillow (set PYTHON)"; exit 1; }

if [ ! -x "$BASE/usr/bin/apt-get" ] || [ -e "$BASE/debootstrap" ]; then
  log "debootstrap --arch=arm64 $RELEASE into $BASE"
  mkdir -p "$BASE"
  debootstrap --arch=arm64 --variant=minbase "$RELEASE" "$BASE" "$DEBIAN" >&2
fi

work="$(mktemp -d)"
target="$work/root"
mkdir -p "$work/upper" "$work/work" "$target"
cleanup() {
  umount -R "$target" 2>/dev/null || umount -R -l "$target" 2>/dev/null || log "could not unmount $target"
  rm -rf "$work"
}
trap cleanup EXIT
mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$work/upper,workdir=$work/work" "$target"
mount -t proc proc "$target/proc"
mount --rbind /dev "$target/dev"
mount --make-rslave "$target/dev"
in_target() { # a clean environment, keeping QEMU_CPU (qemu reads it, via binfmt)
  chroot "$target" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive \
    ${QEMU_CPU:+QEMU_CPU=$QEMU_CPU} PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

cp -L /etc/resolv.conf "$target/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' > "$target/usr/sbin/policy-rc.d"; chmod +x "$target/usr/sbin/policy-rc.d"
# sid's Release file says until when it is valid, which a mirror's copy can outlive (as .ci/arm64 does).
echo 'Acquire::Check-Valid-Until "false";' > "$target/etc/apt/apt.conf.d/99no-valid-until"
cp "$arm64_deb" "$target/tmp/mtlseg.deb"
cp "$root/calibration/examples/field.png" "$target/tmp/field.png"
log "$(in_target cat /etc/debian_version): glibc $(in_target dpkg-query -W -f='${Version}' libc6)"
in_target apt-get update -qq
log "apt-get install /tmp/mtlseg.deb (Depends: $(dpkg-deb -f "$arm64_deb" Depends))"
in_target apt-get install -y -q --no-install-recommends /tmp/mtlseg.deb >&2
log "installed: mtlseg $(in_target dpkg-query -W -f='${Version}, Installed-Size ${Installed-Size} KiB' mtlseg)"

log "mtlseg --help"; in_target mtlseg --help | head -3
log "mtlsegd --help"; in_target mtlsegd --help | head -3
model=/var/lib/mtlseg/model.safetensors
status=0
for cpu in max cortex-a72; do
  if [ "$cpu" = max ]; then unset QEMU_CPU; else export QEMU_CPU="$cpu"; fi
  for kernels in best scalar; do
    log "QEMU_CPU=$cpu: mtlseg infer ($kernels kernels)"
    in_target mkdir -p "/tmp/out-$cpu-$kernels"
    choice=(); [ "$kernels" = scalar ] && choice=(MTLSEG_KERNELS=scalar)
    in_target /usr/bin/env "${choice[@]}" mtlseg infer --model "$model" --image /tmp/field.png \
      --out "/tmp/out-$cpu-$kernels" --logits "/tmp/out-$cpu-$kernels/logits.npy" >&2
  done
done
unset QEMU_CPU
log "mtlseg bench --iterations 3"
in_target mtlseg bench --model "$model" --iterations 3

dpkg-deb -x "$arm64_deb" "$work/arm64"
x86_bin="${MTLSEG_X86_BIN:-}"
if [ -z "$x86_bin" ]; then dpkg-deb -x "$amd64_deb" "$work/amd64"; x86_bin="$work/amd64/usr/bin/mtlseg"; fi
log "x86 (MTLSEG_KERNELS=scalar): $x86_bin on the arm64 package's model"
mkdir -p "$work/x86"
MTLSEG_KERNELS=scalar "$x86_bin" infer --model "$work/arm64$model" --image "$root/calibration/examples/field.png" \
  --out "$work/x86" --logits "$work/x86/logits.npy" >&2
for cpu in max cortex-a72; do
  for kernels in scalar best; do
    if "$PYTHON" - "$work/x86" "$target/tmp/out-$cpu-$kernels" "$kernels" <<'PY'
import pathlib, sys
import numpy as np
from PIL import Image
x86, arm = map(pathlib.Path, sys.argv[1:3])
exact = sys.argv[3] == "scalar"  # the portable C on both sides: the same masks; else bounded (see the header)
names = sorted(p.name for p in x86.iterdir())
bad = []
for name in names:
    a, b = x86 / name, arm / name
    if not b.exists():
        bad.append(name); print(f"  {name}: missing"); continue
    if name.endswith(".png"):
        pa, pb = (np.asarray(Image.open(p).convert("RGBA")) for p in (a, b))
        differing = int((pa != pb).any(axis=-1).sum())
        print(f"  {name}: {differing} of {pa.shape[0] * pa.shape[1]} pixels differ")
        if differing > (0 if exact else pa.shape[0] * pa.shape[1] // 1000): bad.append(name)
    else:
        la, lb = np.load(a), np.load(b)
        worst = float(np.abs(la - lb).max())
        print(f"  {name}: {int((la != lb).sum())} of {la.size} logits differ, by at most {worst:.3g}")
        if not exact and not worst <= 0.05: bad.append(name)
sys.exit(1 if bad or not names else 0)
PY
    then log "QEMU_CPU=$cpu, $kernels kernels: masks and logits as x86's portable C's (exact for scalar, bounded for best)"
    else log "QEMU_CPU=$cpu, $kernels kernels: differs from x86's beyond the bound"; status=1
    fi
  done
done
exit "$status"
