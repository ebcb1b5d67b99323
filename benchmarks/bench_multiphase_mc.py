#!/usr/bin/env python3
"""Time of a three-phase Monte Carlo stack against a gold/epoxy stack of the same size (issue 17 target: <= 1.5x).

One structure (``fibsynth.structure.multiphase``, two-field: pore + two solid phases, 4 nm voxels) is simulated
three ways in the same process, one thread, interleaved and repeated (the machine may be shared: only ratios
within one run mean anything):

* ``binary``   -- its solid network (labels 1 and 2 together) as gold, the pore as epoxy (the gold/epoxy stack);
* ``3-phase``  -- labels 0, 1, 2 as epoxy, Au, Ni (``StackGeometry(materials=...)``);
* ``fuel-cell``-- labels 0, 1, 2 as epoxy, Ni, YSZ (the structure's recorded phases);
* ``binary-Ni``-- the solid network as Ni, the pore as epoxy: a binary stack of lighter materials, which
  separates the cost of the materials (longer trajectories in light ones) from that of the labels.

Same geometry, beam (2 keV, 38 degrees), electrons per pixel and slices; the median seconds per stack, the
ratio to ``binary`` and the ratio of the fastest repeats (least disturbed by other jobs) are printed (``--json``: one object). JIT compilation is excluded (a warm-up run first).

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_multiphase_mc.py
    .venv/bin/python benchmarks/bench_multiphase_mc.py --size 48 --slices 2 --electrons 20 --repeats 3 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=48, help="structure edge in voxels (cube)")
    ap.add_argument("--slices", type=int, default=2, help="slices simulated per stack")
    ap.add_argument("--electrons", type=int, default=20, help="electrons per pixel")
    ap.add_argument("--energy-kev", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    import numba
    import numpy as np

    from fibsynth.config import VoxelSize
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.stack import simulate_stack
    from fibsynth.structure import multiphase

    numba.set_num_threads(1)
    voxel = VoxelSize.coerce(4.0)
    lab, model = multiphase((a.size,) * 3, voxel, (0.4, 0.35, 0.25), ligament_nm=(24.0, 32.0), seed=a.seed,
                            return_model=True)
    fuel = list(model.config.phase_names())
    cases = {
        "binary": ((lab > 0).astype(np.uint8), StackGeometry(solid="gold", pore="epoxy")),
        "3-phase": (lab, StackGeometry(materials=["epoxy", "Au", "Ni"])),
        "fuel-cell": (lab, StackGeometry(materials=fuel)),
        "binary-Ni": ((lab > 0).astype(np.uint8), StackGeometry(solid="Ni", pore="epoxy")),
    }
    k0 = a.size // 2
    sl = (k0, k0 + a.slices)

    def run(name):
        vol, geo = cases[name]
        s = StackSettings(beam=Beam(energy_kev=a.energy_kev), geometry=geo, electrons_per_pixel=a.electrons,
                          seed=a.seed)
        t0 = time.perf_counter()
        res = simulate_stack(vol, voxel, s, slices=sl, progress=False)
        return time.perf_counter() - t0, res["eta"]

    for name in cases:  # warm-up (JIT, tables)
        s = StackSettings(beam=Beam(energy_kev=a.energy_kev), geometry=cases[name][1], electrons_per_pixel=1)
        simulate_stack(cases[name][0][:2, :8, :8], voxel, s, slices=(0, 1), progress=False)
    times: dict[str, list[float]] = {n: [] for n in cases}
    means: dict[str, dict] = {}
    for _ in range(a.repeats):
        for name in cases:
            dt, eta = run(name)
            times[name].append(dt)
            face = cases[name][0][sl[0]:sl[1]]
            means[name] = {str(i): float(eta[face == i].mean()) for i in np.unique(face).tolist()}
    med = {n: statistics.median(t) for n, t in times.items()}
    out = {
        "size": a.size, "slices": list(sl), "electrons_per_pixel": a.electrons, "energy_kev": a.energy_kev,
        "repeats": a.repeats, "threads": 1, "fractions_measured": model.parameters()["fractions_measured"],
        "materials": {n: list(cases[n][1].label_materials()) for n in cases},
        "seconds_median": med, "seconds_all": times,
        "ratio_to_binary": {n: med[n] / med["binary"] for n in cases},
        # the fastest of the repeats: the least disturbed by other jobs on a shared machine
        "ratio_of_minima": {n: min(times[n]) / min(times["binary"]) for n in cases},
        "mean_gray_per_label": means,
    }
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        for n in cases:
            print(f"{n:10s} {'/'.join(out['materials'][n]):40s} {med[n]:7.2f} s  x{out['ratio_to_binary'][n]:.2f}  "
                  f"gray per label {', '.join(f'{k}: {v:.3f}' for k, v in means[n].items())}")
    return out


if __name__ == "__main__":
    main()
