#!/usr/bin/env python3
"""mtlsegd's start-up cost: wall time from exec to READY=1 (as systemd sees it, through NOTIFY_SOCKET),
CPU time used by then, and peak RSS over 3 s of serving the synthetic camera (/usr/bin/time -v). Several
builds are run in turn, so that other load on the machine falls on each alike.

    Tests/Soak/ready_rss.py MODEL RUNS MTLSEGD...
    e.g. Tests/Soak/ready_rss.py calibration/demo/crops-int8.safetensors 15 old/usr/bin/mtlsegd new/usr/bin/mtlsegd"""
import os, re, shutil, socket, statistics, subprocess, sys, tempfile, time
model, runs, daemons = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
ready, rss, cpu = {}, {}, {}
for i in range(runs):
    for daemon in daemons:
        work = tempfile.mkdtemp()
        notify = os.path.join(work, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(notify); s.settimeout(60)
        config = os.path.join(work, "empty.toml"); open(config, "w").write("# defaults\n")
        t0 = time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-v", daemon, "--model", model, "--source", "synthetic",
                              "--socket", os.path.join(work, "d.sock"), "--threads", "2", "--config", config],
                             env=dict(os.environ, NOTIFY_SOCKET=notify), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        while "READY=1" not in s.recv(4096).decode().split("\n"): pass
        ready.setdefault(daemon, []).append((time.monotonic() - t0) * 1000)
        # CPU time the daemon had used by READY (all its threads; the BLAS re-exec keeps the pid): less
        # sensitive than wall time to other work on the machine.
        pid = int(subprocess.check_output(["pgrep", "-P", str(p.pid)]).split()[0])
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        cpu.setdefault(daemon, []).append((int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK"))
        time.sleep(3)  # frames flowing: the pipeline's steady state
        os.kill(int(subprocess.check_output(["pgrep", "-P", str(p.pid)]).split()[0]), 15)
        err = p.communicate()[1]
        rss.setdefault(daemon, []).append(int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err).group(1)))
        s.close()
        shutil.rmtree(work)
for d in daemons:
    print(f"{d}: READY median {statistics.median(ready[d]):.0f} ms (min {min(ready[d]):.0f}), CPU to READY median {statistics.median(cpu[d]):.0f} ms, peak RSS median {statistics.median(rss[d])/1024:.1f} MiB (max {max(rss[d])/1024:.1f})")
