#!/usr/bin/env bash
# Makes (once) the folder that `qemu-aarch64 -L` runs AArch64 programs in on an x86_64 host, and prints
# its path: sid's arm64 libraries that the project links (from the build chroot of .ci/arm64-cross,
# where multiarch installed them), an arm64 Python 3 (Debian's packages, unpacked), and a fake
# /proc/cpuinfo + /sys/devices/system/cpu for one emulated CPU.
#
#   sudo Tests/ARM64/qemu_sysroot.sh [CPU]     (CPU: cortex-a76 or cortex-a72; writes that CPU's files)
#
# qemu-user looks an absolute path up under the -L folder first and falls back to the host's, so host
# paths (the model, the binary) work as they are. It shows a guest the host's own /proc/cpuinfo, on
# which ONNX Runtime's CPU detection crashes, hence the fake one; it must match -cpu (an A76 file
# under -cpu cortex-a72 makes ONNX Runtime use udot and die of SIGILL). Symbolic links that point at
# absolute paths (Debian's alternatives, e.g. libopenblas.so.0) are replaced by what they point to,
# since qemu does not look their targets up under -L.
# Environment: MTLSEG_CROSS_ROOT (the build chroot, as in .ci/arm64-cross),
#   MTLSEG_QEMU_SYSROOT (default ~/.cache/mtlseg-arm64-cost/sysroot).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
R="${MTLSEG_CROSS_ROOT:-/var/cache/mtlseg/arm64-cross}"
S="${MTLSEG_QEMU_SYSROOT:-$HOME/.cache/mtlseg-arm64-cost/sysroot}"
cpu="${1:-}"

if [ ! -e "$S/.done" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "qemu_sysroot: run as root the first time (chroot)" >&2; exit 1; }
  [ -e "$R/usr/lib/aarch64-linux-gnu/libc.so.6" ] || "$root/.ci/arm64-cross" >/dev/null # makes the chroot
  echo "qemu_sysroot: making $S" >&2
  rm -rf "$S"; mkdir -p "$S/usr/lib" "$S/usr/bin" "$S/var/cache/debs"
  ln -s usr/lib "$S/lib"; ln -s usr/bin "$S/bin"
  cp -a "$R/usr/lib/aarch64-linux-gnu" "$S/usr/lib/"
  ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 "$S/usr/lib/ld-linux-aarch64.so.1"
  # Python: sid's python3 for arm64 and what it depends on that is not there yet, unpacked.
  mount_proc=0
  if ! mountpoint -q "$R/proc"; then mount -t proc proc "$R/proc"; mount_proc=1; fi
  trap '[ $mount_proc = 1 ] && umount "$R/proc"' EXIT
  chroot "$R" apt-get update -qq
  mapfile -t debs < <(chroot "$R" apt-get install -s -q python3:arm64 | awk '/^Inst / {gsub(/[()]/, "", $3); print $2 "=" $3}')
  ((${#debs[@]})) || { echo "qemu_sysroot: apt found no python3:arm64 to unpack" >&2; exit 1; }
  mkdir -p "$R/var/cache/mtlseg-python-debs"
  chroot "$R" bash -c 'cd /var/cache/mtlseg-python-debs && apt-get download -q "$@"' sh "${debs[@]}" >&2
  for deb in "$R"/var/cache/mtlseg-python-debs/*.deb; do dpkg-deb -x "$deb" "$S"; done
  rm -rf "$R/var/cache/mtlseg-python-debs" "$S/var/cache/debs"
  # Absolute symbolic links: resolved in the chroot (or in $S, for the Python packages' own), copied in.
  find "$S" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
    rel="${link#"$S"}"
    target="$(chroot "$R" readlink -f "$rel" 2>/dev/null || true)"
    if [ -n "$target" ] && [ -e "$R$target" ]; then cp -L --remove-destination "$R$target" "$link"
    elif [ -e "$S$(readlink "$link")" ]; then cp -L --remove-destination "$S$(readlink "$link")" "$link"
    fi
  done
  touch "$S/.done"
fi

if [ -n "$cpu" ]; then
  # What Linux shows on one core of each board (qemu's models have the same features).
  case "$cpu" in
    cortex-a76) part=0xd0b variant=0x4 revision=1
      features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" ;;
    cortex-a72) part=0xd08 variant=0x0 revision=3
      features="fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid" ;;
    *) echo "qemu_sysroot: no cpuinfo for $cpu (cortex-a76, cortex-a72)" >&2; exit 1 ;;
  esac
  mkdir -p "$S/proc" "$S/sys/devices/system/cpu/cpu0"
  printf 'processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
    "$features" "$variant" "$part" "$revision" > "$S/proc/cpuinfo"
  for f in possible present online; do echo 0 > "$S/sys/devices/system/cpu/$f"; done
  echo 0 > "$S/sys/devices/system/cpu/kernel_max"
fi
echo "$S"
