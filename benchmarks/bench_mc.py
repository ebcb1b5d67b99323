#!/usr/bin/env python3
"""Throughput of fibsynth's electron Monte Carlo (bulk targets), side by side with PENEPMA when available.

Marginal throughput: runs of N and 2N electrons, rate = N / (t(2N) - t(N)), so start-up and JIT compilation
cancel. Measured single-threaded (``numba.set_num_threads(1)``) and with all cores. PENEPMA is run through
``benchmarks/penepma_runner.py`` (its own venv, ``.venv-bench``) with the same N / 2N scheme; if the runner or
its venv is missing, the PENEPMA columns are left empty and the reason is printed.

    .venv/bin/python benchmarks/bench_mc.py                       # Au and C at 1, 2, 4 keV
    .venv/bin/python benchmarks/bench_mc.py --electrons 100000 --no-penepma --json

The machine may be shared: timings are noisy; repeat runs (``--repeats``) and the median is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "benchmarks" / "penepma_runner.py"
BENCH_PY = REPO / ".venv-bench" / "bin" / "python"


def marginal_rate(material: str, e: float, n: int, threads: int, repeats: int) -> tuple[float, float, float]:
    import numba

    from fibsynth.physics.montecarlo.engine import bulk_eta

    numba.set_num_threads(threads)
    bulk_eta(material, e, 1000, seed=99)  # JIT / cache load
    rates = []
    eta = std = float("nan")
    for k in range(repeats):
        r1 = bulk_eta(material, e, n, seed=2 * k)
        r2 = bulk_eta(material, e, 2 * n, seed=2 * k + 1)
        rates.append(n / max(r2.seconds - r1.seconds, 1e-9))
        eta, std = r2.eta, r2.eta_std
    return statistics.median(rates), eta, std


def penepma(material: str, e: float, showers: int) -> dict | None:
    if not RUNNER.is_file() or not BENCH_PY.is_file():
        print(f"# PENEPMA skipped: {RUNNER if not RUNNER.is_file() else BENCH_PY} not found", file=sys.stderr)
        return None
    cmd = [str(BENCH_PY), str(RUNNER), "--material", material, "--energy-kev", str(e), "--showers", str(showers),
           "--json"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=True)
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, json.JSONDecodeError, IndexError) as exc:
        print(f"# PENEPMA failed for {material} {e} keV: {exc}", file=sys.stderr)
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--electrons", type=int, default=50000, help="N (runs of N and 2N)")
    ap.add_argument("--showers", type=int, default=10000, help="PENEPMA N (runs of N and 2N)")
    ap.add_argument("--energies", default="1,2,4")
    ap.add_argument("--materials", default="Au,C")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-penepma", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    import numba

    ncores = numba.config.NUMBA_NUM_THREADS
    rows = []
    for m in a.materials.split(","):
        for e in (float(x) for x in a.energies.split(",")):
            spec = "C:2.26" if m == "C" else m
            r1, eta, std = marginal_rate(spec, e, a.electrons, 1, a.repeats)
            rn, _, _ = marginal_rate(spec, e, a.electrons, ncores, a.repeats)
            row = {"material": m, "energy_kev": e, "eta": eta, "eta_std": std, "electrons_per_s_1thread": r1,
                   f"electrons_per_s_{ncores}threads": rn}
            pen = None if a.no_penepma else penepma(m, e, a.showers)
            if pen:
                ps = pen.get("showers_per_second_marginal")
                row.update({"penepma_eta": pen.get("eta"), "penepma_eta_std": pen.get("eta_std"),
                            "penepma_showers_per_s": ps, "speedup_per_core": (r1 / ps) if ps else None})
            rows.append(row)
            if not a.json:
                line = (f"{m:2s} {e:4.1f} keV  eta={eta:.4f}+-{std:.4f}  1 thread: {r1:9.0f} e/s   "
                        f"{ncores} threads: {rn:9.0f} e/s")
                if pen and pen.get("showers_per_second_marginal"):
                    line += (f"   PENEPMA eta={pen['eta']:.4f}  {pen['showers_per_second_marginal']:8.0f} showers/s"
                             f"  speed-up/core {row['speedup_per_core']:.1f}x")
                print(line, flush=True)
    if a.json:
        print(json.dumps({"host_cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%d %H:%M"), "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
