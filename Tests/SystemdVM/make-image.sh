#!/bin/bash
# Makes, once, the Debian 12 system the systemd VM test boots (Tests/SystemdVM/run.sh), and prints
# the folder that holds it: root.img (ext4), vmlinuz and initrd.img (Debian's kernel and initramfs,
# with every module, vivid among them, in the image).
#
# The root file system comes from debootstrap, from the Debian mirror the host's apt uses
# (MTLSEG_DEBIAN_MIRROR overrides it). It holds everything the mtlseg package depends on, so the
# guest installs the package with apt and no network, plus python3 for the project's client.
# Kept in $MTLSEG_SYSTEMD_VM_CACHE (default ~/.cache/mtlseg-systemd-vm) under a name that changes
# with this script, so an edited recipe builds a fresh image. Needs root, debootstrap and e2fsprogs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache=${MTLSEG_SYSTEMD_VM_CACHE:-$HOME/.cache/mtlseg-systemd-vm}
for tool in debootstrap mkfs.ext4 sha256sum; do
  command -v "$tool" >/dev/null || { echo "make-image.sh: $tool not found (apt-get install debootstrap e2fsprogs)" >&2; exit 3; }
done

# What the package depends on (systemd/build-deb.sh), what the checks use, and a kernel.
packages=systemd-sysv,udev,kmod,procps,python3,linux-image-amd64
packages+=,libopenblas0-pthread,libv4l-0,libv4lconvert0,libsystemd0,libpng16-16,libjpeg62-turbo,adduser

key=$(cat "$0" "$here/mtlseg-vm-payload.service" | sha256sum | cut -c1-12)
image="$cache/bookworm-$key"
if [ -e "$image/root.img" ]; then echo "$image"; exit 0; fi

mirror=${MTLSEG_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p; s/^deb \(http[^ ]*\/debian\) bookworm .*/\1/p' \
  /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1 || true)}  # either file may be missing
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root="$work/root"
echo "make-image.sh: debootstrap bookworm from $mirror (once; a few minutes)" >&2
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 30 "$work/debootstrap.log" >&2; echo "make-image.sh: debootstrap failed" >&2; exit 3; }

echo mtlseg-vm > "$root/etc/hostname"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' > "$root/etc/fstab"
# The serial line is the test's output, not a login prompt.
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
# The test's payload: a tar archive on the second disk, run once the system is up (run.sh).
install -m 0644 "$here/mtlseg-vm-payload.service" "$root/etc/systemd/system/"
ln -sf ../mtlseg-vm-payload.service "$root/etc/systemd/system/multi-user.target.wants/mtlseg-vm-payload.service"
# Nothing to fetch in the guest (it has no network); an empty package list is what apt then reads.
rm -f "$root"/var/cache/apt/archives/*.deb

cp -L "$root"/boot/vmlinuz-* "$work/vmlinuz"
cp -L "$root"/boot/initrd.img-* "$work/initrd.img"
size_mb=$(( $(du -sm "$root" | cut -f1) + 768 ))
# To stderr: stdout is the image's directory alone (mke2fs 1.47 says "Creating regular file" there even with -q).
mkfs.ext4 -q -F -L mtlseg-root -d "$root" "$work/root.img" "${size_mb}M" >&2
rm -rf "$root" "$work/debootstrap.log"
rm -rf "$cache"/bookworm-*  # images of earlier recipes
mv "$work" "$image"
trap - EXIT
echo "$image"
