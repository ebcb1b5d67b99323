"""Open pores (issue 17, item 1): Monte Carlo time of an open-pore stack against the gold/epoxy stack of the same
structure, and the fast path's shine-through projection against the Monte Carlo on open pores.

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_open_pores.py --timing
    .venv/bin/python benchmarks/bench_open_pores.py --fastsim --seeds 1,2,3

``--timing``: one leveled-wave structure (default 64 x 32 x 32, 4 nm voxels, solid fraction 0.3, ligament 30 nm),
2 keV, 38 degrees; slices K of the stack with pores = epoxy (backing epoxy) and pores = vacuum (backing vacuum),
interleaved in one process (tables built beforehand), medians of ``--repeats``; electrons/s and the ratio
t(vacuum) / t(epoxy) at equal electrons (target <= 1.5).

``--fastsim``: per seed a small open-pore structure (24 x 40 x 40, 4 nm; slices 0..11) simulated by the Monte Carlo
(``--per-pixel`` electrons) and projected with ``pore="vacuum"``; Pearson correlation of the two per slice stack
(and, for reference, the epoxy projection and the gold/epoxy Monte Carlo of the same structure); the noise
ceiling is the best correlation a noiseless image could reach with a binomial image of that many electrons.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np


def structure(shape, voxel_nm, seed, solid_fraction=0.3, ligament_nm=30.0):
    from fibsynth.pipeline.products import make_structure

    return make_structure(shape, (voxel_nm, voxel_nm, voxel_nm), solid_fraction=solid_fraction,
                          ligament_nm=ligament_nm, seed=seed).data


def timing(shape, per_pixel, repeats, slices, seed=1):
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.setup import slice_tables, stack_materials
    from fibsynth.physics.montecarlo.stack import simulate_slice

    vol = structure(shape, 4.0, seed)
    cases = {}
    for pore in ("epoxy", "vacuum"):
        s = StackSettings(beam=Beam(energy_kev=2.0), electrons_per_pixel=per_pixel, seed=7,
                          geometry=StackGeometry(solid="gold", pore=pore, backing="pore"))
        mats, _, _ = stack_materials(s)
        cases[pore] = (s, slice_tables(s, mats).as_tuple())
    for pore, (s, tabs) in cases.items():  # compile / warm
        simulate_slice(vol, (4.0, 4.0, 4.0), slices[0], s, tabs)
    times = {p: [] for p in cases}
    yields = {p: [] for p in cases}
    for _ in range(repeats):
        for pore, (s, tabs) in cases.items():
            t0 = time.perf_counter()
            tot = 0
            for k in slices:
                tot += int(simulate_slice(vol, (4.0, 4.0, 4.0), k, s, tabs)["all"].sum())
            times[pore].append(time.perf_counter() - t0)
            yields[pore].append(tot / (len(slices) * vol[0].size * per_pixel))
    n = len(slices) * vol[0].size * per_pixel
    ratios = [tv / te for tv, te in zip(times["vacuum"], times["epoxy"])]
    return {"shape": list(shape), "per_pixel": per_pixel, "slices": list(slices), "electrons_per_run": n,
            "seconds_median": {p: statistics.median(t) for p, t in times.items()},
            "electrons_per_second": {p: n / statistics.median(t) for p, t in times.items()},
            "bse_yield": {p: float(np.mean(v)) for p, v in yields.items()},
            "ratio_vacuum_over_epoxy_median": statistics.median(ratios),
            "ratio_vacuum_over_epoxy_all": ratios,
            "numba_threads": os.environ.get("NUMBA_NUM_THREADS", "default")}


def fastsim(seeds, per_pixel, shape=(24, 40, 40)):
    from fibsynth.fastsim.projection import project
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.stack import simulate_slice

    rows = []
    for seed in seeds:
        vol = structure(shape, 4.0, seed)
        k1 = shape[0] // 2  # slices with the structure's depth behind them
        row = {"seed": seed}
        for pore in ("vacuum", "epoxy"):
            s = StackSettings(beam=Beam(energy_kev=2.0), electrons_per_pixel=per_pixel, seed=seed,
                              geometry=StackGeometry(solid="gold", pore=pore, backing="repeat"))
            t0 = time.perf_counter()
            mc = np.stack([simulate_slice(vol, (4.0, 4.0, 4.0), k, s)["detected"] / per_pixel for k in range(k1)])
            t_mc = time.perf_counter() - t0
            t0 = time.perf_counter()
            proj, _ = project(vol, (4.0, 4.0, 4.0), 2.0, pore=pore, slices=(0, k1))
            t_pr = time.perf_counter() - t0
            # the best correlation any noiseless image can reach with a binomial image of N electrons per pixel
            noise = float(np.mean(mc * (1 - mc) / per_pixel))
            ceiling = float(np.sqrt(max(0.0, 1.0 - noise / mc.var())))
            row[pore] = {"pearson": float(np.corrcoef(mc.ravel(), proj.ravel())[0, 1]), "noise_ceiling": ceiling,
                         "pearson_first_hit_only": float(np.corrcoef(mc.ravel(), (proj > 0).ravel())[0, 1]),
                         "mc_mean": float(mc.mean()), "mc_seconds": t_mc, "projection_seconds": t_pr}
        rows.append(row)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--fastsim", action="store_true")
    ap.add_argument("--shape", default="64,32,32")
    ap.add_argument("--per-pixel", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--slices", default="5,20,40")
    ap.add_argument("--seeds", default="1,2,3")
    a = ap.parse_args(argv)
    out = {"time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if a.timing:
        out["timing"] = timing(tuple(int(v) for v in a.shape.split(",")), a.per_pixel, a.repeats,
                               [int(v) for v in a.slices.split(",")])
    if a.fastsim:
        out["fastsim"] = fastsim([int(v) for v in a.seeds.split(",")], a.per_pixel)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
