#!/usr/bin/env bash
# Shows why resident memory is not checked under qemu-user: a C program that only creates and joins
# threads keeps a flat RSS natively but grows ~280 kB per thread under qemu-aarch64 (measured with
# Debian 12's qemu-user-static 7.2 on x86_64), while glibc's heap in use stays flat. The daemon
# runs one thread per client session, so the client-churn test's RSS bound measures qemu there.
#
#   sudo Tests/ARM64/qemu_thread_rss.sh      (after .ci/arm64 has built its chroot)
set -euo pipefail
R="${MTLSEG_ARM64_ROOT:-/var/cache/mtlseg/arm64-sid}"
here="$(cd "$(dirname "$0")" && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "qemu_thread_rss: run as root (chroot)" >&2; exit 1; }
[ -x "$R/usr/bin/gcc" ] || { echo "qemu_thread_rss: no chroot at $R: run .ci/arm64 first" >&2; exit 1; }

work="$(mktemp -d "$R/tmp/thread-rss.XXXXXX")"
unmount=""
cleanup() { [ -n "$unmount" ] && umount "$R/proc"; rm -rf "$work"; }
trap cleanup EXIT
mountpoint -q "$R/proc" || { mount -t proc proc "$R/proc"; unmount=1; }
cp "$here/thread_rss.c" "$work/"
inside="/tmp/$(basename "$work")"
chroot "$R" gcc -O1 -pthread -o "$inside/thread_rss" "$inside/thread_rss.c"
echo "aarch64 under qemu-user (QEMU_CPU=${QEMU_CPU:-max}):"
chroot "$R" "$inside/thread_rss"
echo "native $(uname -m):"
cc -O1 -pthread -o "$work/thread_rss.native" "$work/thread_rss.c"
"$work/thread_rss.native"
