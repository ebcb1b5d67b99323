#!/usr/bin/env python3
"""Throughput of fibsynth's electron Monte Carlo (bulk targets), side by side with PENEPMA when available.

Marginal throughput: runs of N and 2N electrons, rate = N / (t(2N) - t(N)), so start-up and JIT compilation
cancel. Measured single-threaded (``numba.set_num_threads(1)``) and with all cores. PENEPMA is run through
``benchmarks/penepma_runner.py`` (its own venv, ``.venv-bench``) with the same N / 2N scheme; if the runner or
its venv is missing, the PENEPMA columns are left empty and the reason is printed.

    .venv/bin/python benchmarks/bench_mc.py                       # Au and C at 1, 2, 4 keV
    .venv/bin/python benchmarks/bench_mc.py --electrons 100000 --no-penepma --json
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mc.py --stack     # voxel stack vs bulk Au, one core
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mc.py --stack --modes block+rr \
        --penepma-args "--repeats 3 --wcc 50 --wcr 50"   # both targets (stack/bulk, bulk/PENEPMA) in one run
    .venv/bin/python benchmarks/bench_mc.py --scaling --procs 1,2 --dask-workers 1,2   # processes / dask

``--stack``: in the same process and one thread, bulk Au at 2 keV against one slice of a gold/epoxy leveled-wave
stack (4 nm voxels, 2 keV, 38-degree incidence, shine-through: pores filled with epoxy, epoxy behind the last
slice) with each tracking option (``voxel``: stop at every voxel plane; ``skip``: fly through runs of one
material; ``block``: stop only on the faces of uniform aligned blocks) and range rejection on/off; reports
electrons/s, the stack/bulk ratio and the per-pixel figure of merit FOM = 1 / (mean per-pixel variance x
marginal seconds) relative to the first mode listed, and (unless ``--no-penepma``) PENEPMA's marginal rate on
bulk Au at the same energy and the bulk/PENEPMA ratio, in the same run. Runs are interleaved and repeated; times are
process CPU time (``--clock wall`` for elapsed time); on a shared machine only the ratios within one run mean
anything.

``--scaling``: the same stack job on 1..P single-threaded processes and on local dask clusters (wall time,
speed-up relative to one): run it on an idle machine.

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
        # one thread: process CPU time (as PENEPMA's runner measures it: the core's work, not the waits for a
        # core on a shared machine); several threads: wall time
        c0 = time.process_time()
        r1 = bulk_eta(material, e, n, seed=2 * k)
        c1 = time.process_time()
        r2 = bulk_eta(material, e, 2 * n, seed=2 * k + 1)
        c2 = time.process_time()
        dt = (c2 - c1) - (c1 - c0) if threads == 1 else r2.seconds - r1.seconds
        rates.append(n / max(dt, 1e-9))
        eta, std = r2.eta, r2.eta_std
    return statistics.median(rates), eta, std


# name -> simulate_slice options; "voxel" (no rejection) is the reference of the FOM
STACK_MODES = {
    "voxel": {"tracking": "voxel", "range_rejection": False},
    "voxel+rr": {"tracking": "voxel"},
    "skip+rr": {"tracking": "skip"},
    "block+rr": {"tracking": "block"},
}


def stack_rates(npix: int, per_pixel: int, repeats: int, depth: int = 64, clock: str = "cpu",
                energy: float = 2.0, modes: list[str] | None = None) -> list[dict]:
    """Bulk Au 2 keV vs one stack slice (see ``--stack``), interleaved, single thread. Marginal rates.

    ``clock="cpu"``: process CPU time (one thread: the time this job ran, not the time it waited for a core on a
    shared machine); ``"wall"``: elapsed time."""
    import numba
    import numpy as np

    from fibsynth.physics.montecarlo.engine import bulk_eta
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.stack import block_levels, distance_map, simulate_slice
    from fibsynth.structure.leveled_wave import leveled_wave

    numba.set_num_threads(1)
    now = time.process_time if clock == "cpu" else time.perf_counter
    vol = leveled_wave((depth, npix, npix), 4.0, 0.3, 30.0, seed=1)
    dist = distance_map(vol, 0, False)
    blocks = block_levels(vol)
    vox = (4.0, 4.0, 4.0)
    k = 5  # a face a few voxels into the structure

    def st(n):
        return StackSettings(beam=Beam(energy_kev=energy), electrons_per_pixel=n, seed=3,
                             geometry=StackGeometry(solid="gold", pore="epoxy", backing="pore"))

    modes = {m: STACK_MODES[m] for m in (modes or STACK_MODES)}

    def one(n, name):
        t0 = now()
        r = simulate_slice(vol, vox, k, st(n), dist=dist, blocks=blocks, **modes[name])
        return now() - t0, r

    def bulk(n, seed):
        t0 = now()
        bulk_eta("Au", energy, n, seed=seed)
        return now() - t0

    for name in modes:  # JIT / cache load
        one(1, name)
    bulk(1000, 99)
    n_e = npix * npix * per_pixel
    rows = []
    for rep in range(repeats):
        t1 = bulk(n_e, 2 * rep)
        t2 = bulk(2 * n_e, 2 * rep + 1)
        row = {"bulk_au": n_e / max(t2 - t1, 1e-9)}
        for name in modes:
            t1, _ = one(per_pixel, name)
            t2, res = one(2 * per_pixel, name)
            p = res["all"] / (2 * per_pixel)
            var = float(np.mean(p * (1.0 - p) / (2 * per_pixel)))
            # seconds: the marginal time of the 2N run (start-up cancels), which the FOM uses
            row[name] = {"rate": n_e / max(t2 - t1, 1e-9), "seconds": 2 * max(t2 - t1, 1e-9),
                                                 "var": var,
                                                 "eta": float(p.mean())}
        rows.append(row)
    return rows


def report_stack(rows: list[dict]) -> dict:
    out = {}
    names = [m for m in STACK_MODES if m in rows[0]]
    base = names[0]
    for name in names:
        ratio = statistics.median(r[name]["rate"] / r["bulk_au"] for r in rows)
        fom = statistics.median((r[base]["var"] * r[base]["seconds"]) / (r[name]["var"] * r[name]["seconds"])
                                for r in rows)
        out[name] = {"stack_over_bulk": ratio, "fom_over_voxel": fom,
                     "rate": statistics.median(r[name]["rate"] for r in rows),
                     "eta": rows[-1][name]["eta"]}
    out["bulk_au"] = statistics.median(r["bulk_au"] for r in rows)
    return out


# ------------------------------------------------------------------------------------------ scaling


def _scaling_job(npix: int, per_pixel: int, depth: int):
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.structure.leveled_wave import leveled_wave

    vol = leveled_wave((depth, npix, npix), 4.0, 0.3, 30.0, seed=1)
    st = StackSettings(beam=Beam(energy_kev=2.0), electrons_per_pixel=per_pixel, seed=3,
                       geometry=StackGeometry(solid="gold", pore="epoxy", backing="pore"))
    return vol, st


def _pool_init(npix, per_pixel, depth, tracking):
    os.environ["NUMBA_NUM_THREADS"] = "1"
    import numba

    numba.set_num_threads(1)
    global _JOB
    from fibsynth.physics.montecarlo.stack import simulate_slice

    vol, st = _scaling_job(npix, per_pixel, depth)
    _JOB = (vol, st, tracking)
    simulate_slice(vol, (4.0, 4.0, 4.0), 0, st.model_copy(update={"electrons_per_pixel": 1}),
                   tracking=tracking)  # JIT / cache load before the clock starts


def _pool_slice(k):
    from fibsynth.physics.montecarlo.stack import simulate_slice

    vol, st, tracking = _JOB
    return int(simulate_slice(vol, (4.0, 4.0, 4.0), k, st, tracking=tracking)["all"].sum())


def scaling(npix: int, per_pixel: int, slices: int, depth: int, procs: list[int], dask_workers: list[int],
            repeats: int, tracking: str) -> dict:
    """The same job (``slices`` slices of a gold/epoxy leveled-wave stack, ``npix`` x ``npix`` pixels,
    ``per_pixel`` electrons, 2 keV) on P single-threaded processes (a multiprocessing pool, warmed up before the
    clock starts: the transport alone) and on a local dask cluster of W single-threaded workers (the cluster and
    the task of ``fibsynth mc stack --workers W``, started and warmed before the clock starts: transport plus
    dask's scheduling and transfers). Wall time; speed-up relative to one process / one worker."""
    import multiprocessing as mp

    from fibsynth.distributed import dask_client
    from fibsynth.physics.montecarlo.stack import _task

    out: dict = {"electrons": slices * npix * npix * per_pixel, "pool": {}, "dask": {}}
    ctx = mp.get_context("spawn")
    for p in procs:
        times = []
        with ctx.Pool(p, initializer=_pool_init, initargs=(npix, per_pixel, depth, tracking)) as pool:
            pool.map(_pool_slice, range(p), chunksize=1)  # every worker warm
            for _ in range(repeats):
                t0 = time.perf_counter()
                pool.map(_pool_slice, range(slices), chunksize=1)
                times.append(time.perf_counter() - t0)
        out["pool"][p] = {"seconds": statistics.median(times), "electrons_per_s": out["electrons"] / statistics.median(times)}
    vol, st = _scaling_job(npix, per_pixel, depth)
    vox = (4.0, 4.0, 4.0)
    for w in dask_workers:
        # a local cluster of w single-threaded worker processes (as ``mc stack --workers w``), started and warmed
        # (every worker loads the kernel) before the clock starts; one task per slice, the stack's own task
        with dask_client(None, w) as client:
            [fvol] = client.scatter([vol], broadcast=True)
            warm = st.model_copy(update={"electrons_per_pixel": 1}).model_dump_json()
            client.gather([client.submit(_task, fvol, vox, k, warm, pure=False) for k in range(4 * w)])
            sj = st.model_dump_json()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                client.gather([client.submit(_task, fvol, vox, k, sj, pure=False) for k in range(slices)])
                times.append(time.perf_counter() - t0)
        out["dask"][w] = {"seconds": statistics.median(times), "electrons_per_s": out["electrons"] / statistics.median(times)}
    for kind in ("pool", "dask"):
        if out[kind]:
            base = out[kind][min(out[kind])]["electrons_per_s"] * 1.0
            for v in out[kind].values():
                v["speedup"] = v["electrons_per_s"] / base
    return out


def penepma(material: str, e: float, showers: int, extra: list[str] | None = None) -> dict | None:
    if not RUNNER.is_file() or not BENCH_PY.is_file():
        print(f"# PENEPMA skipped: {RUNNER if not RUNNER.is_file() else BENCH_PY} not found", file=sys.stderr)
        return None
    cmd = [str(BENCH_PY), str(RUNNER), "--material", material, "--energy-kev", str(e), "--showers", str(showers),
           "--json", *(extra or [])]
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
    ap.add_argument("--penepma-args", default="",
                    help="extra penepma_runner.py options, e.g. '--repeats 3 --wcc 50 --wcr 50' (default: the "
                         "runner's defaults: EABS 50 eV, C1 = C2 = 0.02, WCC = WCR = 10 eV)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--stack", action="store_true",
                    help="voxel stack vs bulk Au 2 keV (one thread), and PENEPMA on bulk Au at the same energy "
                         "unless --no-penepma")
    ap.add_argument("--pixels", type=int, default=32, help="--stack: face of PIXELS x PIXELS")
    ap.add_argument("--per-pixel", type=int, default=20, help="--stack: N electrons per pixel (runs of N and 2N)")
    ap.add_argument("--energy", type=float, default=2.0, help="--stack: beam energy (keV) of the stack and the bulk")
    ap.add_argument("--modes", default="", help=f"--stack: comma list of {', '.join(STACK_MODES)} (default all)")
    ap.add_argument("--scaling", action="store_true",
                    help="the same stack job on 1..P processes (pool) and on local dask clusters (wall time)")
    ap.add_argument("--procs", default="1,2", help="--scaling: process counts (pool), e.g. 1,2,4,8,16")
    ap.add_argument("--dask-workers", default="1,2", help="--scaling: local dask cluster sizes ('' for none)")
    ap.add_argument("--slices", type=int, default=8, help="--scaling: slices in the job (a multiple of P)")
    ap.add_argument("--tracking", default="voxel", help="--scaling: simulate_slice tracking (voxel, block, skip)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="--stack: process CPU time (default; one thread on a shared machine) or wall time")
    a = ap.parse_args(argv)
    if a.scaling:
        procs = [int(x) for x in a.procs.split(",") if x]
        dw = [int(x) for x in a.dask_workers.split(",") if x]
        rep = scaling(a.pixels, a.per_pixel, a.slices, 64, procs, dw, a.repeats, a.tracking)
        if a.json:
            print(json.dumps({"host_cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%d %H:%M"), "scaling": rep}))
        else:
            print(f"job: {a.slices} slices x {a.pixels}^2 pixels x {a.per_pixel} e/px = {rep['electrons']} electrons, "
                  f"2 keV gold/epoxy, tracking {a.tracking}; wall time, median of {a.repeats}; host CPUs {os.cpu_count()}")
            for kind in ("pool", "dask"):
                for n, v in rep[kind].items():
                    print(f"{kind:4s} {n:3d} {'processes' if kind == 'pool' else 'workers  '}  {v['seconds']:7.2f} s  "
                          f"{v['electrons_per_s']:10.0f} e/s  speed-up {v['speedup']:.2f}x", flush=True)
        return 0
    if a.stack:
        modes = a.modes.split(",") if a.modes else None
        rows = stack_rates(a.pixels, a.per_pixel, a.repeats, clock=a.clock, energy=a.energy, modes=modes)
        rep = report_stack(rows)
        # PENEPMA on bulk Au at the same energy, in the same run: both target ratios from one invocation
        pen = None if a.no_penepma else penepma("Au", a.energy, a.showers, a.penepma_args.split())
        if pen and pen.get("showers_per_second_marginal"):
            ps = pen["showers_per_second_marginal"]
            rep["penepma"] = {"eta": pen.get("eta"), "eta_std": pen.get("eta_std"), "showers_per_s": ps,
                              "params": pen.get("params"), "clock": pen.get("clock")}
            rep["bulk_over_penepma"] = rep["bulk_au"] / ps
        rep["loadavg"] = os.getloadavg()
        if a.json:
            print(json.dumps({"host_cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%d %H:%M"), "stack": rep,
                              "runs": rows}))
        else:
            print(f"bulk Au {a.energy:g} keV: {rep['bulk_au']:9.0f} e/s (1 thread, {a.clock} time, median of "
                  f"{a.repeats}); FOM relative to the first mode")
            for name in (n for n in STACK_MODES if n in rep):
                r = rep[name]
                print(f"stack {name:9s} {r['rate']:9.0f} e/s  stack/bulk {r['stack_over_bulk']:.3f}  "
                      f"FOM/first {r['fom_over_voxel']:.2f}  eta {r['eta']:.4f}", flush=True)
            if "penepma" in rep:
                p = rep["penepma"]
                print(f"PENEPMA Au {a.energy:g} keV: {p['showers_per_s']:9.0f} showers/s ({p['clock']} time), eta "
                      f"{p['eta']:.4f}; bulk Au / PENEPMA {rep['bulk_over_penepma']:.1f}x; params {p['params']}")
            print(f"load average {' '.join(f'{v:.1f}' for v in rep['loadavg'])}")
        return 0
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
            pen = None if a.no_penepma else penepma(m, e, a.showers, a.penepma_args.split())
            if pen:
                ps = pen.get("showers_per_second_marginal")
                row.update({"penepma_eta": pen.get("eta"), "penepma_eta_std": pen.get("eta_std"),
                            "penepma_params": pen.get("params"),
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
