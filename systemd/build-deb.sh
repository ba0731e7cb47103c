#!/usr/bin/env bash
# Builds dist/mtlseg_<version>_<arch>.deb for the architecture it runs on (amd64, arm64): mtlseg
# (Swift runtime linked in, so only Debian's libraries are needed) with mtlsegd a link to it (the
# one binary runs as mtlsegd by that name), the unit, the per-camera template unit and its example
# configuration, the Python client (`import mtlseg_client` with Debian's python3), manual pages, shell completions,
# sysusers and tmpfiles entries, the default configuration (a conffile) and the demo
# model. Installing it creates the user, enables the service (also in an image built where no systemd
# runs) and starts it where systemd runs (an upgrade restarts what runs and enables nothing the
# administrator disabled); purging removes the configuration and the models.
#
#   systemd/build-deb.sh [VERSION]    (default: the version mtlseg --version prints)
#   sudo MTLSEG_DEB_ARCH=arm64 systemd/build-deb.sh [VERSION]   (on amd64: the arm64 package, its binary
#                                                              cross-compiled by .ci/arm64-cross)
#
# The arm64 binary is compiled by Debian sid's Swift (the only arm64 Swift there is) but linked against
# Debian 12's arm64 libraries (glibc 2.36), so the package installs on Debian 12 and later and on
# Raspberry Pi OS (bookworm-based or later); its Depends line is dpkg-shlibdeps' against those
# libraries. .ci/arm64-cross says how (MTLSEG_CROSS_LIBC picks another release).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# The version: the argument, else the one the binary reports (Sources/MTLSegEssentials/Version.swift).
version="${1:-$(sed -n 's/.*static let string = "\(.*\)".*/\1/p' "$root/Sources/MTLSegEssentials/Version.swift")}"
[ -n "$version" ] || { echo "build-deb: no version given and none found in Version.swift" >&2; exit 1; }
host_arch="$(dpkg --print-architecture)"
arch="${MTLSEG_DEB_ARCH:-$host_arch}"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
# The package's dates (the changelog's, the manual pages', the files' in the archive, which dpkg-deb takes from
# SOURCE_DATE_EPOCH): the one given, else the last commit's, so that building one commit twice dates it alike.
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH
# The package's binary binds every symbol at load (BIND_NOW, then its relocations are read-only: Debian's
# hardening), and carries no compiler notes (.comment).
link_now=(-Xlinker -z -Xlinker now)

mkdir -p "$stage/bin"
libraries=
if [ "$arch" = "$host_arch" ]; then
  (cd "$root" && swift build -c release --static-swift-stdlib "${link_now[@]}" --scratch-path .build-static --product mtlseg)
  bin="$(cd "$root" && swift build -c release --scratch-path .build-static --show-bin-path)/mtlseg"
  strip --strip-unneeded --remove-section=.comment -o "$stage/bin/mtlseg" "$bin"
elif [ "$arch" = arm64 ] && [ "$host_arch" = amd64 ]; then
  bin="$("$root/.ci/arm64-cross" mtlseg)" # Debian sid's Swift, the Swift runtime linked in as above
  libraries="$(cat "$bin.depends" 2>/dev/null || true)" # dpkg-shlibdeps' line, against bookworm's libraries
  if command -v aarch64-linux-gnu-strip >/dev/null; then
    aarch64-linux-gnu-strip --strip-unneeded --remove-section=.comment -o "$stage/bin/mtlseg" "$bin"
  else
    objcopy="$(command -v llvm-objcopy || echo /opt/swift/usr/bin/llvm-objcopy)"
    "$objcopy" --strip-unneeded --remove-section=.comment "$bin" "$stage/bin/mtlseg"
  fi
else
  echo "build-deb: cannot build $arch packages on $host_arch (arm64 on amd64, or the host's own)" >&2; exit 1
fi
ln -s mtlseg "$stage/bin/mtlsegd"
# The C library version the binary needs (its newest GLIBC_ symbol version): 2.36 or so when built on
# Debian 12; the arm64 binary's dependencies come from dpkg-shlibdeps instead (libc6 (>= 2.35) linked
# against bookworm), unless .ci/arm64-cross linked it against sid's libraries (MTLSEG_CROSS_LIBC=sid).
glibc="$(LC_ALL=C readelf -V "$stage/bin/mtlseg" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)"

package="$stage/package"
DESTDIR="$package" MTLSEG_BIN_DIR="$stage/bin" MTLSEG_NO_MANUAL=1 SYSTEMD_UNIT_DIR=/lib/systemd/system "$root/systemd/install.sh" >/dev/null
ln -sf mtlseg "$package/usr/bin/mtlsegd"  # install.sh copied the binary a second time
doc="$package/usr/share/doc/mtlseg"
cat > "$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mtlseg
Source: the mtlseg repository

Files: *
Copyright: 2026 the mtlseg authors
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this software
 and associated documentation files (the "Software"), to deal in the Software without
 restriction, including without limitation the rights to use, copy, modify, merge, publish,
 distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
 Software is furnished to do so, subject to the following conditions: the above copyright
 notice and this permission notice shall be included in all copies or substantial portions of
 the Software. THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND.
COPYRIGHT
printf 'mtlseg (%s) unstable; urgency=medium\n\n  * Package built from the repository.\n\n -- mtlseg maintainers <maintainers@mtlseg.invalid>  %s\n' \
  "$version" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")" | gzip -9n > "$doc/changelog.gz"  # a native package: changelog.gz
gzip -9n "$doc/README.md" "$doc/PROTOCOL.md"

# Manual pages (`man mtlseg`, `man mtlsegd`) and completions, from a binary this machine runs: the
# package's own, or for the arm64 package on amd64 a native build of the same source.
if [ "$arch" = "$host_arch" ]; then
  scratch=(--static-swift-stdlib "${link_now[@]}" --scratch-path .build-static) # as the package's binary: the build is not redone
  runnable="$stage/bin/mtlseg"
else
  scratch=(--scratch-path .build) # beside the native binary
  (cd "$root" && swift build -c release --product mtlseg)
  runnable="$(cd "$root" && swift build -c release --show-bin-path)/mtlseg"
fi
"$root/systemd/make-manual.sh" "$package/usr/share" "$runnable" "${scratch[@]}"

mkdir -p "$package/DEBIAN"
cat > "$package/DEBIAN/control" <<CONTROL
Package: mtlseg
Version: $version
Architecture: $arch
Maintainer: mtlseg maintainers <maintainers@mtlseg.invalid>
Section: video
Priority: optional
Depends: ${libraries:-libopenblas0-pthread | libopenblas0, libv4l-0, libv4lconvert0, libsystemd0, libpng16-16, libjpeg62-turbo, libstdc++6, libgcc-s1, libc6${glibc:+ (>= $glibc)}}, adduser, systemd
Suggests: python3 (>= 3.9)
Installed-Size: $(du -sk "$package" | cut -f1)
Homepage: https://mtlseg.invalid/
Description: live multi-task segmentation masks from a camera
 mtlsegd captures frames from a V4L2 camera, runs an int8-quantized
 MTLSegFormer on the CPU and publishes one mask per task per frame on a
 Unix socket; mtlseg calibrates models, runs, benchmarks and inspects them.
 Python programs read the masks with the module mtlseg_client.
CONTROL
echo "/etc/mtlseg/mtlsegd.toml" > "$package/DEBIAN/conffiles"
# The maintainer scripts. DPKG_ROOT is set where dpkg installs into another root than the running system's (an
# image built with dpkg --root or mmdebstrap): everything then acts inside that root, and nothing is started.
# The service is enabled with deb-systemd-helper, which needs no running systemd (an image built in a chroot
# boots with mtlsegd on) and remembers the state: an administrator's `systemctl disable mtlsegd` survives
# upgrades. deb-systemd-invoke starts and stops it, honouring an image builder's policy-rc.d.
cat > "$package/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
  systemd-sysusers --root="${DPKG_ROOT:-/}" mtlseg.conf
  # The state directory's owner and mode; the model dpkg put in it stays root's, readable by the daemon.
  systemd-tmpfiles --root="${DPKG_ROOT:-/}" --create mtlseg.conf
  # Only a mask this script's postrm made is lifted (a removed package masks its unit).
  deb-systemd-helper unmask mtlsegd.service >/dev/null || true
  if [ -n "$2" ] && ! deb-systemd-helper debian-installed mtlsegd.service; then
    # Upgraded from a package that enabled the service with systemctl, keeping no state: taken as it is,
    # enabled, or disabled by the administrator.
    if [ -L "${DPKG_ROOT:-}/etc/systemd/system/multi-user.target.wants/mtlsegd.service" ]; then
      deb-systemd-helper enable mtlsegd.service >/dev/null || true
    else
      deb-systemd-helper update-state mtlsegd.service >/dev/null || true
    fi
  # True on a first install too: the single-camera service is enabled then.
  elif deb-systemd-helper --quiet was-enabled mtlsegd.service; then
    deb-systemd-helper enable mtlsegd.service >/dev/null || true
  else
    deb-systemd-helper update-state mtlsegd.service >/dev/null || true
  fi
  if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    if [ -z "$2" ]; then
      deb-systemd-invoke start mtlsegd.service >/dev/null || true
    else
      # An upgrade: whatever runs (the single service, or the cameras of mtlsegd@.service) restarts on the
      # new binary; what an administrator stopped or disabled stays so.
      deb-systemd-invoke try-restart mtlsegd.service 'mtlsegd@*.service' >/dev/null || true
    fi
  fi
fi
SCRIPT
cat > "$package/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
  deb-systemd-invoke stop mtlsegd.service 'mtlsegd@*.service' >/dev/null || true
fi
SCRIPT
cat > "$package/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = "remove" ]; then
  # Masked while the configuration stays behind; a reinstall unmasks it, enabled as it was.
  deb-systemd-helper mask mtlsegd.service >/dev/null || true
  # Cameras an administrator enabled (systemctl enable mtlsegd@cam0): their links would point at a unit that
  # no longer exists, and systemd would complain of them at every boot.
  for wanted in "${DPKG_ROOT:-}"/etc/systemd/system/*.wants/mtlsegd@*.service; do
    if [ -L "$wanted" ]; then rm -f "$wanted"; fi
  done
fi
if [ "$1" = "purge" ]; then
  deb-systemd-helper purge mtlsegd.service >/dev/null || true
  deb-systemd-helper unmask mtlsegd.service >/dev/null || true
  rm -rf "${DPKG_ROOT:-}/etc/mtlseg" "${DPKG_ROOT:-}/var/lib/mtlseg"
fi
if [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
SCRIPT
chmod 0755 "$package/DEBIAN/postinst" "$package/DEBIAN/prerm" "$package/DEBIAN/postrm"
# Checksums of the files, for `dpkg --verify mtlseg` (debsums): what changed on a device since it was installed.
(cd "$package" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
  > "$package/DEBIAN/md5sums"
mkdir -p "$root/dist"
out="$root/dist/mtlseg_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$package" "$out" >/dev/null
echo "$out"
