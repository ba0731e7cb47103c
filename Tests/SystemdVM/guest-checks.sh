#!/bin/bash
# Runs inside the systemd VM (run.sh puts it in the payload as `run`): installs the mtlseg package
# with apt as a user would, then checks the service with systemctl, journalctl and the project's
# Python client. One line per check, "CHECK PASS <name>" or "CHECK FAIL <name>: <why>", then
# "CHECKS DONE: <passed> passed, <failed> failed"; the guest's exit status (isa-debug-exit) is
# the number of failures. Every wait polls against a deadline.
set -u
cd /payload
chmod -R a+rX /payload
unit=mtlsegd.service
sock=/run/mtlseg/mtlsegd.sock
config=/etc/mtlseg/mtlsegd.toml
passed=0 failed=0
pass() { echo "CHECK PASS $1${2:+ ($2)}"; passed=$((passed + 1)); }
fail() { echo "CHECK FAIL $1: $2"; failed=$((failed + 1)); }
note() { echo "NOTE $*"; }
# poll SECONDS COMMAND...: succeeds as soon as COMMAND does, fails once SECONDS have passed.
poll() { local deadline=$((SECONDS + $1)); shift; until "$@"; do [ $SECONDS -lt "$deadline" ] || return 1; sleep 0.3; done; }
client() { local user=$1; shift; runuser -u "$user" -- python3 /payload/vm_client.py "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
prop() { systemctl show -p "$1" --value "$unit"; }
active() { [ "$(prop ActiveState)/$(prop SubState)" = active/running ]; }
main_pid() { prop MainPID; }
restarted_from() { local pid; pid=$(main_pid); [ "$pid" != 0 ] && [ "$pid" != "$1" ] && active; }
journal_since() { journalctl -q -u "$unit" --since "@$1" -o cat; }
journal_has() { journal_since "$1" | grep -q -- "$2"; }
now() { date +%s.%N; }
elapsed() { python3 -c "print(round($(now) - $1, 1))"; }

# However the script ends, the host learns the count of failures (qemu exits with (status << 1) | 1, isa-debug-exit).
finish() {
  if [ "$failed" != 0 ]; then journalctl -q -u "$unit" -o short-monotonic --no-pager | tail -n 80 | sed 's/^/JOURNAL /'; fi
  echo "CHECKS DONE: $passed passed, $failed failed"
  printf "\\$(printf %03o $((failed > 100 ? 100 : failed == 0 && passed == 0 ? 1 : failed)))" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
}
trap finish EXIT
echo "GUEST: $(uname -r), systemd $(systemctl --version | head -n1 | cut -d' ' -f2), $(nproc) CPU, up $(cut -d' ' -f1 /proc/uptime) s"

# --- Install: apt, offline (the root file system holds every dependency). The package starts the
#     service, so the start check below reads the journal from here.
t=$(now)
installed_at=$t
if apt-get install -y ./mtlseg_*.deb >/tmp/apt.log 2>&1; then
  pass install "$(elapsed "$t") s"
else
  fail install "$(tail -n 5 /tmp/apt.log | tr '\n' ' ')"
fi
useradd --create-home --groups mtlseg-clients reader
useradd --create-home outsider

# --- The installed unit: exposure and verify.
exposure=$(systemd-analyze security "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -n "$exposure" ] && python3 -c "import sys; sys.exit(0 if $exposure <= 1.0 else 1)"; then
  pass security "exposure $exposure"
else
  fail security "overall exposure '${exposure:-none}' (at most 1.0)"
fi
verify=$(systemd-analyze verify "/lib/systemd/system/$unit" 2>&1)
if [ -z "$verify" ]; then pass verify; else fail verify "$(echo "$verify" | tr '\n' ' ')"; fi

# --- Start: active (running) is reached only through READY=1 (Type=notify), serving the demo model
#     on the synthetic camera (there is no camera yet).
t=$installed_at
if poll 180 active && [ "$(prop Type)" = notify ] && poll 10 journal_has "$t" "serving demo-crops (int8.* from synthetic"; then
  pass started "active (running) $(elapsed "$t") s after install began: $(journal_since "$t" | grep -m1 'serving demo-crops')"
else
  fail started "$(prop ActiveState)/$(prop SubState), Type=$(prop Type), NRestarts=$(prop NRestarts), journal: $(journal_since "$t" | grep -m1 'serving' || echo 'no serving line')"
fi
# Under TCG the demo model's first frame takes longer than WatchdogSec (its warm-up alone ~30 s), so
# systemd would restart it for ever: the checks that need frames serve the repository's tiny model.
install -m 0644 /payload/mtl2-tiny.safetensors /var/lib/mtlseg/tiny.safetensors
sed -i -e 's#^model = .*#model = "/var/lib/mtlseg/tiny.safetensors"#' -e 's#^width = .*#width = 320#' -e 's#^height = .*#height = 240#' "$config"
systemctl restart "$unit"
note "serving the tiny model from here on: $(poll 120 active && echo active after restart)"
# --- Upgrade (the package installed again, as apt installs a new version): the running service restarts on
#     the new files and stays enabled; the configuration just edited (a conffile) is kept.
pid=$(main_pid)
if [ "$(systemctl is-enabled "$unit")" = enabled ] && apt-get install --reinstall -y ./mtlseg_*.deb >/tmp/apt.log 2>&1 \
  && poll 120 restarted_from "$pid" && [ "$(systemctl is-enabled "$unit")" = enabled ] && grep -q tiny.safetensors "$config"; then
  pass upgrade "restarted (pid $pid, now $(main_pid)), enabled, $config kept"
else
  fail upgrade "$(tail -n 3 /tmp/apt.log | tr '\n' ' '); pid $pid, now $(main_pid), $(systemctl is-enabled "$unit"); $(grep '^model' "$config")"
fi
# The models stay root's: no StateDirectory= owns them to the daemon's user at each start. And the process is
# named mtlsegd though it starts itself again through /proc/self/exe for OpenBLAS's settings.
owners=$(stat -c '%U:%G %a' /var/lib/mtlseg /var/lib/mtlseg/model.safetensors | tr '\n' ' ')
if [ "$owners" = "root:root 755 root:root 644 " ]; then pass models-root-owned "$owners"; else fail models-root-owned "$owners"; fi
comm=$(ps -o comm= -p "$(main_pid)")
if [ "$comm" = mtlsegd ]; then pass process-name "$comm"; else fail process-name "'$comm' (pgrep mtlsegd would miss it)"; fi
status_line() { systemctl status "$unit" --no-pager 2>/dev/null | grep -E 'Status: "[0-9.]+ fps, [0-9]+ clients?, source [a-z]+'; }
if poll 30 status_line >/dev/null; then pass status-line "$(status_line | sed 's/^ *//')"; else fail status-line "no STATUS with fps, clients and source"; fi

# --- Who may read masks.
if out=$(client reader frames 3 2>&1) \
  && [ "$(echo "$out" | json 'd["model"]["sha256"]')" = "$(sha256sum /var/lib/mtlseg/tiny.safetensors | cut -d' ' -f1)" ] \
  && echo "$out" | json 'd["source"]' | grep -q '^synthetic'; then
  pass group-member-reads "$(echo "$out" | json '"%d frames of " % d["frames"] + d["model"]["name"] + " from " + d["source"]')"
else
  fail group-member-reads "$out"
fi
# The package's own example, as a user would start it: python3 finds the packaged client by itself.
example=$(timeout 20 runuser -u reader -- python3 /usr/share/doc/mtlseg/examples/example_fps.py 2>&1 | head -n 1)
if echo "$example" | grep -Eq '^ *[0-9.]+ fps .*plants'; then pass packaged-example "$example"; else fail packaged-example "$example"; fi
client outsider frames 1 >/tmp/outsider.out 2>&1
if [ $? = 13 ]; then pass outsider-refused; else fail outsider-refused "$(cat /tmp/outsider.out)"; fi
if out=$(client root frames 1 2>&1); then pass root-reads; else fail root-reads "$out"; fi
owner=$(stat -c '%G %a' "$sock" 2>&1)
if [ "$owner" = "mtlseg-clients 660" ]; then pass socket-owner "$owner"; else fail socket-owner "$owner"; fi

# --- A camera appears while the service runs.
modprobe vivid n_devs=1
if poll 30 test -c /dev/video0; then
  # The daemon chooses its source at start ("auto"): it keeps the synthetic field until restarted.
  still=$(client reader frames 1 2>&1 | json 'd["source"]')
  note "after modprobe vivid the running daemon still reads '$still'; a restart picks up the camera"
  systemctl restart "$unit"
  if poll 120 active && out=$(client reader frames 3 2>&1) && echo "$out" | json 'd["source"]' | grep -q '^/dev/video0'; then
    pass camera-after-restart "$(echo "$out" | json 'd["source"]')"
  else
    fail camera-after-restart "${out:-not active}"
  fi
else
  fail camera-after-restart "modprobe vivid made no /dev/video0"
fi

# --- Reload: clients stay and learn of the new stream; a broken model leaves the old one serving.
rm -f /tmp/ready
client reader watch 90 /tmp/ready --until-changed >/tmp/watch.json 2>&1 &
watcher=$!
if poll 60 test -e /tmp/ready; then
  systemctl reload "$unit"
  wait $watcher
  out=$(cat /tmp/watch.json)
  if [ "$(echo "$out" | json 'd["stream_changed"] and d["frames_after_change"] >= 2 and d["error"] is None')" = True ] \
    && client reader frames 1 >/dev/null 2>&1; then
    pass reload-keeps-clients "$(echo "$out" | json '"%d frames, STREAM_CHANGED, then %d" % (d["frames_after_ready"], d["frames_after_change"])')"
  else
    fail reload-keeps-clients "$out (new connection: $(client reader frames 1 2>&1 | tail -n 1))"
  fi
else
  kill $watcher 2>/dev/null
  fail reload-keeps-clients "the client got no first frame: $(cat /tmp/watch.json)"
fi

cp "$config" /tmp/good.toml
head -c 4096 /dev/urandom > /var/lib/mtlseg/broken.safetensors
sed -i 's#^model = .*#model = "/var/lib/mtlseg/broken.safetensors"#' "$config"
rm -f /tmp/ready
client reader watch 6 /tmp/ready >/tmp/watch.json 2>&1 &
watcher=$!
if poll 60 test -e /tmp/ready; then
  t=$(now)
  systemctl reload "$unit"
  if poll 60 journal_has "$t" "reload failed, still serving"; then line=$(journal_since "$t" | grep "reload failed" | head -n 1); fi
  wait $watcher
  out=$(cat /tmp/watch.json)
  if [ -n "${line:-}" ] && echo "$line" | grep -q broken.safetensors && active \
    && [ "$(echo "$out" | json 'not d["stream_changed"] and d["error"] is None and d["frames_after_ready"] > 0 and d["sha256_after"] == d["sha256_before"]')" = True ]; then
    pass reload-broken-model "journal: $line"
  else
    fail reload-broken-model "journal: '${line:-none}'; client: $out"
  fi
else
  kill $watcher 2>/dev/null
  fail reload-broken-model "the client got no first frame"
fi
cp /tmp/good.toml "$config"
rm -f /var/lib/mtlseg/broken.safetensors

cgroup=/sys/fs/cgroup/system.slice/$unit
note "memory: peak $(( $(cat $cgroup/memory.peak 2>/dev/null || echo 0) / 1048576 )) MiB, high $(prop MemoryHigh), max $(prop MemoryMax); tasks $(prop TasksCurrent) of $(prop TasksMax)"

# --- Watchdog: a stopped daemon is killed once WatchdogSec passes without WATCHDOG=1, then restarted.
watchdog_s=$(prop WatchdogUSec | sed -n 's/^\([0-9]*\)s$/\1/p')
pid=$(main_pid)
t=$(now)
kill -STOP "$pid"
if poll 90 restarted_from "$pid"; then
  killed_at=$(journalctl -q -u "$unit" --since "@$t" -o short-unix | grep -m1 "Watchdog timeout" | cut -d' ' -f1)
  after=$(python3 -c "print(round(${killed_at:-1e12} - $t, 1))")
  if [ -n "$killed_at" ] && python3 -c "import sys; sys.exit(0 if $after <= ${watchdog_s:-0} + 1.5 else 1)"; then
    pass watchdog-sigstop "killed ${after} s after SIGSTOP (WatchdogSec ${watchdog_s}), running again after $(elapsed "$t") s"
  else
    fail watchdog-sigstop "no 'Watchdog timeout' within ${watchdog_s} s (at ${after} s)"
  fi
else
  fail watchdog-sigstop "not restarted within 90 s: $(systemctl status "$unit" --no-pager | head -n 5 | tr '\n' ' ')"
fi

pid=$(main_pid)
restarts=$(prop NRestarts)
t=$(now)
kill -SEGV "$pid"
if poll 60 restarted_from "$pid" && [ "$(prop NRestarts)" -gt "$restarts" ] && journal_has "$t" "status=11/SEGV"; then
  pass sigsegv-restart "running again after $(elapsed "$t") s"
else
  fail sigsegv-restart "$(journal_since "$t" | tail -n 5 | tr '\n' ' ')"
fi

# --- A camera that is not plugged in is waited for: the watchdog is fed while the source reconnects, so the
#     daemon is not killed every WatchdogSec (and then given up at the start limit).
cp "$config" /tmp/good.toml
sed -i 's#^device = .*#device = "/dev/v4l/by-id/usb-Not_Plugged_In-video-index0"#' "$config"
systemctl reset-failed "$unit"
t=$(now)
systemctl restart "$unit"
if poll 120 active; then
  pid=$(main_pid)
  restarts=$(prop NRestarts)
  sleep $(( ${watchdog_s:-10} + 6 ))
  if active && [ "$(main_pid)" = "$pid" ] && [ "$(prop NRestarts)" = "$restarts" ] && journal_has "$t" "waiting for the camera" \
    && ! journal_has "$t" "Watchdog timeout"; then
    pass camera-missing-waits "same process after $(elapsed "$t") s (WatchdogSec ${watchdog_s}): $(journal_since "$t" | grep -m1 'waiting for the camera')"
  else
    fail camera-missing-waits "pid $pid now $(main_pid), NRestarts $restarts now $(prop NRestarts): $(journal_since "$t" | tail -n 4 | tr '\n' ' ')"
  fi
else
  fail camera-missing-waits "not active: $(journal_since "$t" | tail -n 4 | tr '\n' ' ')"
fi
cp /tmp/good.toml "$config"

# --- A configuration that can never start: restarts stop at the start limit, the reason in the journal.
# The restarts above (tiny model, camera, watchdog, SIGSEGV) count towards the same limit of 5 starts
# in 60 s: on a fast host they fall inside one interval and systemd would refuse the restart below
# before the broken configuration ever ran. reset-failed clears the counter, so every start counted
# from here is one with the broken configuration.
systemctl reset-failed "$unit"
echo 'no_such_key = 1' >> "$config"
t=$(now)
systemctl restart "$unit" 2>/dev/null
# (systemd 252 keeps Result=exit-code when an automatic restart hits the limit; the journal says so.)
# The daemon's error reaches the journal at priority err (its "<3>" read by journald: stderr is the journal's
# stream), not as the words a terminal gets ("error: ").
errors_since() { journalctl -q -u "$unit" --since "@$1" -p err -o cat; }
if poll 150 journal_has "$t" "Start request repeated too quickly" && [ "$(prop ActiveState)" = failed ] \
  && errors_since "$t" | grep -q "^$config: .*no_such_key: unknown key"; then
  pass start-limit "$(errors_since "$t" | grep -c 'no_such_key: unknown key') tries (priority err), then the start limit after $(elapsed "$t") s"
else
  fail start-limit "Result=$(prop Result): $(journal_since "$t" | tail -n 4 | tr '\n' ' ')"
fi
cp /tmp/good.toml "$config"
systemctl reset-failed "$unit"
systemctl start "$unit"

# --- Stop: a clean exit within TimeoutStopSec, and the socket gone.
if poll 120 active && poll 30 test -S "$sock"; then
  timeout_s=$(prop TimeoutStopUSec | sed 's/s$//')
  t=$(now)
  systemctl stop "$unit"
  took=$(elapsed "$t")
  if python3 -c "import sys; sys.exit(0 if $took < $timeout_s else 1)" && [ "$(prop Result)" = success ] \
    && [ "$(prop ExecMainStatus)" = 0 ] && journal_has "$t" "stopped" && [ ! -e "$sock" ]; then
    pass stop-clean "$took s (TimeoutStopSec $timeout_s), exit 0, socket gone"
  else
    fail stop-clean "$took s, Result=$(prop Result), status $(prop ExecMainStatus), socket $(ls -l "$sock" 2>&1)"
  fi
else
  fail stop-clean "did not start again after the start-limit check"
fi

# --- Several cameras: instances of mtlsegd@.service, each with its own file, socket and runtime directory.
template=/lib/systemd/system/mtlsegd@.service
exposure=$(systemd-analyze security mtlsegd@a.service 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
verify=$(systemd-analyze verify "$template" 2>&1)
if [ -n "$exposure" ] && python3 -c "import sys; sys.exit(0 if $exposure <= 1.0 else 1)" && [ -z "$verify" ]; then
  pass template-unit "exposure $exposure, verify silent"
else
  fail template-unit "exposure '${exposure:-none}', verify: $(echo "$verify" | tr '\n' ' ')"
fi
for name in a b; do
  sed -e 's#^model = .*#model = "/var/lib/mtlseg/tiny.safetensors"#' -e 's#^device = .*#device = "synthetic"#' \
    -e 's#^width = .*#width = 320#' -e 's#^height = .*#height = 240#' /usr/share/mtlseg/camera.toml > "/etc/mtlseg/$name.toml"
done
# Checked before the instance ever ran: its runtime directory /run/mtlseg/a does not exist yet (systemd makes it).
if out=$(mtlsegd --instance a --check-config 2>&1) && echo "$out" | grep -q "made by systemd when the unit starts"; then
  pass instance-check-config "$out"
else
  fail instance-check-config "$out"
fi
camera_client() { runuser -u reader -- env MTLSEG_SOCKET="/run/mtlseg/$1/mtlsegd.sock" python3 /payload/vm_client.py frames 2; }
instance_active() { [ "$(systemctl show -p ActiveState --value "mtlsegd@$1.service")" = active ]; }
systemctl start mtlsegd.service mtlsegd@a.service mtlsegd@b.service
if poll 120 instance_active a && poll 120 instance_active b && poll 120 active && outa=$(camera_client a 2>&1) && outb=$(camera_client b 2>&1); then
  pass instances-serve "a: $(echo "$outa" | json 'd["source"]'), b: $(echo "$outb" | json 'd["source"]'), beside mtlsegd.service"
else
  fail instances-serve "a $(systemctl is-active mtlsegd@a), b $(systemctl is-active mtlsegd@b): ${outa:-} ${outb:-} $(journalctl -q -u 'mtlsegd@*' -o cat | tail -n 5 | tr '\n' ' ')"
fi
listed=$(mtlseg status 2>&1 | grep '^== ' | tr '\n' ' ')
if echo "$listed" | grep -q 'mtlsegd.service' && echo "$listed" | grep -q 'mtlsegd@a' && echo "$listed" | grep -q 'mtlsegd@b'; then
  pass status-lists-all "$listed"
else
  fail status-lists-all "$listed"
fi
# Stopping one camera removes its directory only; stopping mtlsegd.service leaves /run/mtlseg and the cameras in it.
systemctl stop mtlsegd@a.service
gone_a=$([ ! -e /run/mtlseg/a ] && echo yes)
systemctl stop mtlsegd.service
if [ "$gone_a" = yes ] && [ -S /run/mtlseg/b/mtlsegd.sock ] && instance_active b && out=$(camera_client b 2>&1); then
  pass instances-stop-apart "a's directory gone, b serves after a and mtlsegd.service stopped: $(echo "$out" | json '"%d frames" % d["frames"]')"
else
  fail instances-stop-apart "a gone: ${gone_a:-no}; b: $(ls -la /run/mtlseg/b 2>&1 | tr '\n' ' ') ${out:-}"
fi
systemctl stop mtlsegd@b.service
# Enabled, so that `apt remove` below must disable it.
systemctl enable mtlsegd@b.service 2>/dev/null
wants_b=/etc/systemd/system/multi-user.target.wants/mtlsegd@b.service

# --- Remove keeps the configuration (a conffile); purge removes it and the models.
if apt-get remove -y mtlseg >/tmp/apt.log 2>&1 && [ ! -e /usr/bin/mtlsegd ] && [ ! -e "/lib/systemd/system/$unit" ] \
  && [ -e "$config" ] && [ "$(dpkg-query -W -f='${db:Status-Abbrev}' mtlseg)" = "rc " ] && ! systemctl is-active --quiet "$unit" \
  && [ ! -L "$wants_b" ]; then
  pass apt-remove "binaries and units gone, mtlsegd@b disabled, $config kept"
else
  fail apt-remove "$(tail -n 3 /tmp/apt.log | tr '\n' ' '); $(ls -d /usr/bin/mtlsegd "$config" "$wants_b" 2>&1 | tr '\n' ' ')"
fi
if apt-get purge -y mtlseg >/tmp/apt.log 2>&1 && [ ! -e /etc/mtlseg ] && [ ! -e /var/lib/mtlseg ] \
  && ! dpkg-query -W -f='${db:Status-Abbrev}' mtlseg 2>/dev/null | grep -q '^[ir]' && getent passwd mtlseg >/dev/null; then
  pass apt-purge "configuration and models gone; the system user stays (Debian policy)"
else
  fail apt-purge "$(tail -n 3 /tmp/apt.log | tr '\n' ' '); $(ls -d /etc/mtlseg /var/lib/mtlseg 2>&1 | tr '\n' ' ')"
fi
