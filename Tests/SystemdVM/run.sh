#!/bin/bash
# Installs the mtlseg package DEB in a throwaway Debian 12 VM with systemd as PID 1 and checks the
# service there (guest-checks.sh), under qemu's software emulation (TCG; this machine's /dev/kvm
# cannot boot a stock kernel). Prints the guest's console; exits 0 only when every check passed.
#
#   Tests/SystemdVM/run.sh dist/mtlseg_0.1.0_amd64.deb
#
# The system (Debian's kernel with vivid among its modules, the package's dependencies, python3)
# is made once by make-image.sh and kept; each run boots it with its disk in snapshot mode, so the
# image never changes. The payload (the package, the checks, a script using the packaged Python client) is a tar archive
# on a second disk that the image's mtlseg-vm-payload.service unpacks and runs. The guest has no
# network. Needs root, qemu-system-x86, debootstrap, e2fsprogs; MTLSEG_SYSTEMD_VM_TIMEOUT (default
# 900 s) bounds the VM.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 PACKAGE.deb" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
repository="$(cd "$here/../.." && pwd)"
deb=$(realpath "$1")
command -v qemu-system-x86_64 >/dev/null || { echo "run.sh: qemu-system-x86_64 not found (apt-get install qemu-system-x86)" >&2; exit 3; }

image=$("$here/make-image.sh")

payload=$(mktemp -d)
trap 'rm -rf "$payload" "$payload.tar"' EXIT
cp "$deb" "$payload/"
cp "$here/guest-checks.sh" "$payload/run"
cp "$here/vm_client.py" "$payload/" # it imports the client the package installed
cp "$repository/Tests/MTLSegCoreTests/Fixtures/mtl2-tiny.safetensors" "$payload/"  # frames at TCG speed (guest-checks.sh)
tar -C "$payload" -cf "$payload.tar" .

# isa-debug-exit makes qemu exit with (guest status << 1) | 1; a panic or a hang gives 0 or 124,
# never an odd status, so only a guest status of 0 passes. `-cpu max`: OpenBLAS needs more than
# TCG's default qemu64 model (Tests/VividVM/run.sh says more).
set +e
timeout --foreground "${MTLSEG_SYSTEMD_VM_TIMEOUT:-900}" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 2G -nodefaults -nic none \
  -display none -no-reboot -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
  -append 'root=/dev/vda rw console=ttyS0 quiet panic=-1 systemd.show_status=false' \
  -drive "file=$image/root.img,if=virtio,format=raw,snapshot=on" \
  -drive "file=$payload.tar,if=virtio,format=raw,readonly=on" </dev/null
q=$?
set -e
[ $q -eq 1 ] && exit 0
echo "run.sh: systemd VM test failed (qemu rc=$q: odd = $(( q >> 1 )) failed checks, 0 = guest died or panicked, 124 = timeout)" >&2
exit 1
