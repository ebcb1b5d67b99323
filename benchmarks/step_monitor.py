"""Run a command and attribute wall time, CPU time and peak RSS to each line it prints (big12).

``fibsynth reconstruct`` prints one line when a step ends ("<step> <message> (<s> s)"), so the interval between two
lines is one step: this samples the process's resident memory (``/proc/PID/status`` VmRSS, and RssAnon: the
anonymous part, without the pages of memory-mapped files that the kernel can drop; children included)
and CPU time (utime + stime of the process and its waited-for children) every ``--every`` seconds and writes, per
printed line, the wall seconds since the previous line, the CPU seconds used in that interval and the peak RSS seen
in it, as JSON lines to ``--log`` and a table to stdout.

    python benchmarks/step_monitor.py --log /tmp/big12/run1.jsonl -- fibsynth reconstruct BIG.tif OUT/
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time


def _tree(pid: int) -> list[int]:
    out = [pid]
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as fh:
                out += [q for c in fh.read().split() for q in _tree(int(c))]
    except OSError:
        pass
    return out


def _rss_cpu(pid: int) -> tuple[int, int, float]:
    rss, anon, cpu = 0, 0, 0.0
    tck = os.sysconf("SC_CLK_TCK")
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/status") as fh:
                for ln in fh:
                    if ln.startswith("VmRSS:"):
                        rss += int(ln.split()[1]) * 1024
                    elif ln.startswith("RssAnon:"):
                        anon += int(ln.split()[1]) * 1024
            with open(f"/proc/{p}/stat") as fh:
                f = fh.read().rsplit(")", 1)[1].split()
                cpu += (int(f[11]) + int(f[12])) / tck
        except OSError:
            pass
    return rss, anon, cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--every", type=float, default=0.5)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    t0 = time.time()
    proc = subprocess.Popen(cmd, stderr=subprocess.STDOUT, stdout=subprocess.PIPE, text=True, bufsize=1)
    state = {"peak": 0, "peak_all": 0, "anon": 0, "anon_all": 0, "cpu": 0.0}
    lock = threading.Lock()
    done = threading.Event()

    def sample():
        while not done.is_set():
            rss, anon, cpu = _rss_cpu(proc.pid)
            with lock:
                state["anon"] = max(state["anon"], anon)
                state["anon_all"] = max(state["anon_all"], anon)
                state["peak"] = max(state["peak"], rss)
                state["peak_all"] = max(state["peak_all"], rss)
                if cpu > 0:
                    state["cpu"] = max(state["cpu"], cpu)
            time.sleep(a.every)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    last_t, last_cpu = t0, 0.0
    with open(a.log, "w") as log:
        for line in proc.stdout:
            now = time.time()
            with lock:
                peak, anon, cpu = state["peak"], state["anon"], state["cpu"]
                state["peak"] = state["anon"] = 0
            row = {"utc": time.strftime("%H:%M:%S", time.gmtime(now)), "t": round(now - t0, 1),
                   "wall": round(now - last_t, 1), "cpu": round(cpu - last_cpu, 1), "peak_rss_mb": round(peak / 2**20),
                   "peak_anon_mb": round(anon / 2**20),
                   "line": line.rstrip()}
            last_t, last_cpu = now, cpu
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(f"{row['utc']} +{row['wall']:7.1f}s cpu {row['cpu']:7.1f}s rss {row['peak_rss_mb']:6d} MB anon {row['peak_anon_mb']:6d} MB | {row['line']}",
                  flush=True)
        rc = proc.wait()
        done.set()
        th.join()
        end = {"utc": time.strftime("%H:%M:%S", time.gmtime()), "rc": rc, "wall_total": round(time.time() - t0, 1),
               "cpu_total": round(state["cpu"], 1), "peak_rss_mb_total": round(state["peak_all"] / 2**20),
               "peak_anon_mb_total": round(state["anon_all"] / 2**20)}
        log.write(json.dumps(end) + "\n")
        print(json.dumps(end), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
