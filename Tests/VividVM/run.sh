#!/bin/bash
# Runs BINARY [ARGS...] as the init's child in a throwaway VM: Debian 12's own kernel with the
# vivid virtual camera loaded (/dev/video0), under qemu's software emulation (TCG; this machine's
# /dev/kvm cannot boot a stock kernel). Exits with the binary's status. Needs root (or a user who
# can run apt-get download), qemu-system-x86, busybox-static, kmod and cpio. Each step below says
# why it is done as it is.
#
# The kernel (resolved from linux-image-amd64 each run: old ABIs leave the mirror) is downloaded
# once and kept, reduced to vmlinuz + media modules (~53 MB), in $MTLSEG_VIVID_CACHE
# (default ~/.cache/mtlseg-vivid). The guest sees MTLSEG_VIVID_GUEST=1 in its environment.
# MTLSEG_VIVID_FILES: host files (space-separated absolute paths) the binary reads, e.g. a model
# fixture; each is copied into the guest at the same path. MTLSEG_VIVID_BINARIES: further executables
# (space-separated) the binary starts, e.g. mtlsegd; each goes to /guest/<its name> with its libraries.
# MTLSEG_VIVID_CPUS: the VM's CPUs (default 1).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BINARY [ARGS...]" >&2; exit 2; }
BIN=$(realpath "$1"); shift
ARGS="$*"
W=${MTLSEG_VIVID_CACHE:-$HOME/.cache/mtlseg-vivid}
mkdir -p "$W"; W=$(realpath "$W")
for tool in qemu-system-x86_64 busybox depmod modprobe cpio apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (apt-get install qemu-system-x86 busybox-static kmod cpio)" >&2; exit 3; }
done

# 1. The kernel and its media modules, cached.
PKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$PKG" ] || { echo "run.sh: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 3; }
KVER=${PKG#linux-image-}
K="$W/$KVER"
if [ ! -e "$K/boot/vmlinuz-$KVER" ]; then
  rm -rf "$K" "$W"/download && mkdir -p "$K" "$W/download"
  (cd "$W/download" && apt-get download "$PKG" >/dev/null) || { echo "run.sh: apt-get download $PKG failed" >&2; exit 3; }
  dpkg-deb --fsys-tarfile "$W"/download/"${PKG}"_*.deb | tar -x -C "$K" --wildcards "./boot/vmlinuz-$KVER" \
    './lib/modules/*/modules.*' './lib/modules/*/kernel/drivers/media/*'
  rm -rf "$W/download"
  depmod -b "$K" "$KVER"  # modules.dep is not in the .deb
fi

# 2. An initramfs: busybox, vivid and its dependencies, the binary and every library ldd lists.
# The initramfs goes to a file of this run's own: two runs at once (two checkouts) must not write one file.
R=$(mktemp -d); INITRD=$(mktemp --suffix=.cpio.gz); trap 'rm -rf "$R" "$INITRD"' EXIT
mkdir -p "$R"/{bin,dev,proc,sys,tmp}
cp /bin/busybox "$R/bin/"
for a in $(busybox --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done  # busybox→busybox loops (ELOOP)
modprobe -d "$K" -S "$KVER" --show-depends vivid | awk '$1=="insmod"{print $2}' | while read -r f; do
  d="$R/${f#"$K"/}"; mkdir -p "$(dirname "$d")"; cp "$f" "$d"; done
cp "$K/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$R/lib/modules/$KVER/"
depmod -b "$R" "$KVER"
copy() { mkdir -p "$R$(dirname "$1")"; cp -L "$1" "$R$1"; }
# The binary goes to a fixed place: its host path may lie under /tmp, which the guest mounts over.
GUEST_BIN="/guest/$(basename "$BIN")"
mkdir -p "$R/guest"
strip --strip-debug -o "$R$GUEST_BIN" "$BIN"  # debug info is most of a debug build's size; the guest needs none
for extra in ${MTLSEG_VIVID_BINARIES:-}; do
  extra="$(realpath "$extra")"
  strip --strip-debug -o "$R/guest/$(basename "$extra")" "$extra"
  ldd "$extra" | awk '/=>/ && $3 ~ /^\//{print $3} /^\t\/.*ld-linux/{print $1}' | while read -r l; do [ -e "$R$l" ] || copy "$l"; done
done
# Files go to /files/<path> and the init copies them to <path> once /tmp is mounted: a clone under
# /tmp (as CI's may be) would otherwise be hidden by the guest's tmpfs.
for f in ${MTLSEG_VIVID_FILES:-}; do f="$(realpath "$f")"; mkdir -p "$R/files$(dirname "$f")"; cp -L "$f" "$R/files$f"; done
ldd "$BIN" | awk '/=>/ && $3 ~ /^\//{print $3} /^\t\/.*ld-linux/{print $1}' | while read -r l; do copy "$l"; done
cat > "$R/init" <<INIT
#!/bin/sh
export PATH=/bin HOME=/tmp MTLSEG_VIVID_GUEST=1
mount -t proc p /proc; mount -t sysfs s /sys; mount -t devtmpfs d /dev; mount -t tmpfs t /tmp
[ -d /files ] && cp -a /files/. /
modprobe vivid n_devs=1 || echo "modprobe vivid failed"
cd /tmp
$GUEST_BIN $ARGS; rc=\$?
echo "GUEST_TEST_RC=\$rc"
printf "\\\\\$(printf %03o \$rc)" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
INIT
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD"

# 3. Boot. isa-debug-exit makes qemu exit with (guest status << 1) | 1; a panic or a hang gives
#    0 or 124, never 1, so only a guest status of 0 passes. `-cpu max`: on TCG's default qemu64
#    model a model's first GEMM dies of SIGILL inside OpenBLAS (under qemu-user with that model it
#    reports choosing its Haswell kernels); `max` advertises and emulates AVX2, as real x86-64 has.
set +e
timeout "${MTLSEG_VIVID_TIMEOUT:-240}" qemu-system-x86_64 -accel tcg -cpu max -m 1G -smp "${MTLSEG_VIVID_CPUS:-1}" -nodefaults -display none -no-reboot \
  -kernel "$K/boot/vmlinuz-$KVER" -initrd "$INITRD" -append 'console=ttyS0 quiet panic=-1' \
  -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 </dev/null
q=$?; set -e
[ $q -eq 1 ] && exit 0
echo "run.sh: VM test failed (qemu rc=$q: odd = guest status $(( q >> 1 )), 0 = guest died or panicked, 124 = timeout)" >&2
exit 1
