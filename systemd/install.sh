#!/usr/bin/env bash
# Installs mtlseg as a service: release binaries, the unit, the per-camera template
# unit mtlsegd@.service with its example configuration (/usr/share/mtlseg/camera.toml),
# the Python client of the socket (mtlseg_client, where Debian's python3 imports it: /usr/lib/python3/
# dist-packages; its example under /usr/share/doc/mtlseg/examples), manual pages and bash/zsh/fish completions
# (make-manual.sh; MTLSEG_NO_MANUAL=1 leaves them out), sysusers and tmpfiles entries, the default configuration (kept if one exists) and the
# demo model (kept if a model is installed). Idempotent; honours DESTDIR (then touches only
# files under it); `--uninstall` removes what it installed, keeping /etc/mtlseg
# and /var/lib/mtlseg (they hold the user's settings and models).
#
#   sudo systemd/install.sh                # build, install, enable and start
#   DESTDIR=/tmp/root systemd/install.sh   # lay the files out under /tmp/root only
#   sudo systemd/install.sh --uninstall
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${DESTDIR:-}"
prefix="${PREFIX:-/usr}"
demo_model="${DEMO_MODEL:-$root/calibration/demo/crops-int8.safetensors}"

bin="$dest$prefix/bin"
unitdir="$dest${SYSTEMD_UNIT_DIR:-$prefix/lib/systemd/system}"
sysusers="$dest$prefix/lib/sysusers.d"
tmpfiles="$dest$prefix/lib/tmpfiles.d"
share="$dest$prefix/share"
docdir="$share/doc/mtlseg"
datadir="$share/mtlseg"
pythondir="$dest$prefix/lib/python3/dist-packages"
etc="$dest/etc/mtlseg"
state="$dest/var/lib/mtlseg"

live() { [ -z "$dest" ] && [ -d /run/systemd/system ]; }

if [ "${1:-}" = "--uninstall" ]; then
  if live; then
    systemctl disable --now mtlsegd.service 2>/dev/null || true
    # Every camera's instance, enabled or only running.
    for wanted in /etc/systemd/system/*.wants/mtlsegd@*.service; do
      if [ -L "$wanted" ]; then systemctl disable "$(basename "$wanted")" 2>/dev/null || true; fi
    done
    systemctl stop 'mtlsegd@*.service' 2>/dev/null || true
  fi
  rm -f "$bin/mtlsegd" "$bin/mtlseg" "$unitdir/mtlsegd.service" "$unitdir/mtlsegd@.service" "$sysusers/mtlseg.conf" "$tmpfiles/mtlseg.conf"
  rm -f "$pythondir/mtlseg_client.py"
  for tool in mtlseg mtlsegd; do
    rm -f "$share/man/man1/$tool.1.gz" "$share/bash-completion/completions/$tool" "$share/zsh/vendor-completions/_$tool" \
      "$share/fish/vendor_completions.d/$tool.fish"
  done
  rm -rf "$docdir" "$datadir"
  if live; then systemctl daemon-reload; fi
  echo "uninstalled (kept $etc and $state)"
  exit 0
fi

# MTLSEG_BIN_DIR: already built binaries to install instead of building release ones (tests, packaging).
if [ -n "${MTLSEG_BIN_DIR:-}" ]; then
  release="$MTLSEG_BIN_DIR"
else
  (cd "$root" && swift build -c release --product mtlseg && swift build -c release --product mtlsegd)
  release="$(cd "$root" && swift build -c release --show-bin-path)"
fi

install -D -m 0755 "$release/mtlsegd" "$bin/mtlsegd"
install -D -m 0755 "$release/mtlseg" "$bin/mtlseg"
install -D -m 0644 "$root/systemd/mtlsegd.service" "$unitdir/mtlsegd.service"
install -D -m 0644 "$root/systemd/mtlsegd@.service" "$unitdir/mtlsegd@.service"
install -D -m 0644 "$root/systemd/camera.toml" "$datadir/camera.toml"
install -D -m 0644 "$root/systemd/mtlseg.sysusers" "$sysusers/mtlseg.conf"
install -D -m 0644 "$root/systemd/mtlseg.tmpfiles" "$tmpfiles/mtlseg.conf"
install -D -m 0644 "$root/README.md" "$docdir/README.md"
install -D -m 0644 "$root/Sources/MTLSegWire/PROTOCOL.md" "$docdir/PROTOCOL.md"
install -D -m 0644 "$root/Sources/MTLSegWire/python/mtlseg_client.py" "$pythondir/mtlseg_client.py"
install -D -m 0644 "$root/Sources/MTLSegWire/python/example_fps.py" "$docdir/examples/example_fps.py"
if [ -z "${MTLSEG_NO_MANUAL:-}" ]; then "$root/systemd/make-manual.sh" "$share" "$release/mtlseg"; fi
# The configuration and the model are the user's once installed: never overwritten.
[ -e "$etc/mtlsegd.toml" ] || install -D -m 0644 "$root/systemd/mtlsegd.toml" "$etc/mtlsegd.toml"
if [ ! -e "$state/model.safetensors" ]; then
  if [ -e "$demo_model" ]; then
    install -D -m 0644 "$demo_model" "$state/model.safetensors"
  else
    echo "note: no demo model at $demo_model; put a model at $state/model.safetensors" >&2
  fi
fi

if live; then
  systemd-sysusers "$sysusers/mtlseg.conf"
  systemd-tmpfiles --create "$tmpfiles/mtlseg.conf"
  systemctl daemon-reload
  systemctl enable --now mtlsegd.service
  systemctl --no-pager status mtlsegd.service | head -5
else
  echo "installed under ${dest:-/} (systemd not running here: users, tmpfiles and the service are left to the target system)"
fi
