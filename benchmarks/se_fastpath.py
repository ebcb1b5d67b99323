"""Fast SE projection of open pores vs the Monte Carlo SE stack (issue 17, item 4): gold with open pores, 2 keV,
38 degrees, in-lens detector (``mc stack --detector inlens``).

    PYTHONPATH=src .venv/bin/python benchmarks/se_fastpath.py --seeds 1,2,3,4 --per-pixel 60
    PYTHONPATH=src .venv/bin/python benchmarks/se_fastpath.py --seeds 1 --spreads 0.3,0.5   # the spread choice (also spread_se1 in the code)
    PYTHONPATH=src .venv/bin/python benchmarks/se_fastpath.py --seeds 1,2,3,4 --per-pixel 60 --cache DIR --calibrate-on 1

Per seed a leveled-wave structure (24 x 40 x 40, 4 nm voxels, solid fraction 0.3, ligament 30 nm: the structure of
``bench_open_pores.py --fastsim``; slices 0..11, the last slice repeated behind the stack), simulated slice by
slice by the Monte Carlo with the in-lens SE detector and projected by ``fastsim.se_projection.project_se``.
Reported: the Pearson correlation over all pixels of the 12 slices, the noise ceiling (the best correlation a
noiseless image can reach with the Monte Carlo image, from its per-pixel standard error), and for reference the
correlation of the open-pore BSE projection (``project(pore="vacuum")``) and of the binary first-hit image with
the same Monte Carlo SE stack, and the times.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def structure(shape, voxel_nm, seed, solid_fraction=0.3, ligament_nm=30.0):
    from fibsynth.pipeline.products import make_structure

    return make_structure(shape, (voxel_nm, voxel_nm, voxel_nm), solid_fraction=solid_fraction,
                          ligament_nm=ligament_nm, seed=seed).data.astype(np.uint8)


def run(seeds, per_pixel, spreads, shape=(24, 40, 40), energy=2.0, solid="gold", views=("straight",), cache=None):
    from fibsynth.config import VoxelSize
    from fibsynth.fastsim.projection import project
    from fibsynth.fastsim.se_projection import flat_face_yields, project_se
    from fibsynth.physics.montecarlo.detectors import SignalDetector
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.stack import simulate_stack

    t0 = time.perf_counter()
    yields = flat_face_yields(solid, energy, 38.0)
    t_yields = time.perf_counter() - t0
    rows = []
    for seed in seeds:
        vol = structure(shape, 4.0, seed)
        k1 = shape[0] // 2
        s = StackSettings(beam=Beam(energy_kev=energy), electrons_per_pixel=per_pixel, seed=seed,
                          geometry=StackGeometry(solid=solid, pore="vacuum", backing="repeat"),
                          signal=SignalDetector(kind="inlens"))
        t0 = time.perf_counter()
        path = None if cache is None else os.path.join(cache, f"se_mc_{solid}_{energy:g}_{seed}_{per_pixel}.npz")
        if path is not None and os.path.exists(path):
            z = np.load(path)
            mc, std, t_mc = z["eta"], z["std"], float(z["seconds"])
        else:
            res = simulate_stack(vol, VoxelSize(x=4, y=4, z=4), s, slices=(0, k1), progress=False)
            t_mc = time.perf_counter() - t0
            mc, std = res["eta"], res["std"]
            if path is not None:
                np.savez(path, eta=mc, std=std, seconds=t_mc)
        ceiling = float(np.sqrt(max(0.0, 1.0 - float(np.mean(std.astype(float) ** 2)) / mc.var())))
        row = {"seed": seed, "mc_seconds": t_mc, "mc_mean": float(mc.mean()), "noise_ceiling": ceiling}
        for view in views:
            for sp in spreads:
                t0 = time.perf_counter()
                img, rec = project_se(vol, (4.0, 4.0, 4.0), energy, solid=solid, slices=(0, k1), spread=sp,
                                      yields=yields, view=view)
                row[f"pearson_se_{view}_spread{sp:g}"] = float(np.corrcoef(mc.ravel(), img.ravel())[0, 1])
                row[f"mean_se_{view}_spread{sp:g}"] = float(img.mean())
                row[f"seconds_se_{view}_spread{sp:g}"] = time.perf_counter() - t0
        bse, _ = project(vol, (4.0, 4.0, 4.0), energy, solid=solid, pore="vacuum", slices=(0, k1))
        row["pearson_bse_projection"] = float(np.corrcoef(mc.ravel(), bse.ravel())[0, 1])
        row["pearson_first_hit"] = float(np.corrcoef(mc.ravel(), (bse > 0).ravel())[0, 1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {"yields_delta1_delta2_etacone": yields, "yields_seconds": t_yields, "rows": rows}


def calibrate(seeds, per_pixel, calib_seed, shape=(24, 40, 40), energy=2.0, solid="gold", cache=None):
    """The mean scale of the SE terms (``project_se(scale=)``) measured on ``calib_seed``'s Monte Carlo stack
    (mean(MC) = scale mean(SE terms) + mean(in-lens BSE share)) and, for every seed, the mean of the scaled
    projection against the Monte Carlo's and its standard error (held out: the seeds other than ``calib_seed``).
    The Monte Carlo stacks come from ``run``'s cache (run it first with the same ``--cache``)."""
    from fibsynth.fastsim.se_projection import flat_face_yields, project_se

    yields = flat_face_yields(solid, energy, 38.0)
    parts = {}
    for seed in seeds:
        path = os.path.join(cache, f"se_mc_{solid}_{energy:g}_{seed}_{per_pixel}.npz")
        z = np.load(path)
        vol = structure(shape, 4.0, seed)
        k1 = shape[0] // 2
        full, _ = project_se(vol, (4.0, 4.0, 4.0), energy, solid=solid, slices=(0, k1), yields=yields)
        se, _ = project_se(vol, (4.0, 4.0, 4.0), energy, solid=solid, slices=(0, k1), yields=yields, bse_weight=0.0)
        parts[seed] = (z["eta"].astype(float), z["std"].astype(float), se.astype(float), (full - se).astype(float))
    mc, _, se, bse = parts[calib_seed]
    scale = float((mc.mean() - bse.mean()) / se.mean())
    rows = []
    for seed, (mc, std, se, bse) in parts.items():
        img = scale * se + bse
        rows.append({"seed": seed, "held_out": seed != calib_seed, "mc_mean": float(mc.mean()),
                     "projection_mean_unscaled": float((se + bse).mean()), "projection_mean_scaled": float(img.mean()),
                     "scaled_over_mc": float(img.mean() / mc.mean()),
                     "mc_mean_standard_error": float(np.sqrt((std**2).sum()) / std.size),
                     "pearson": float(np.corrcoef(mc.ravel(), img.ravel())[0, 1])})
    return {"calibration_seed": calib_seed, "scale": scale, "rows": rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1,2,3,4")
    ap.add_argument("--per-pixel", type=int, default=60)
    ap.add_argument("--spreads", default="0.5")
    ap.add_argument("--views", default="straight")
    ap.add_argument("--cache", default=None, help="folder to keep / reuse the Monte Carlo stacks")
    ap.add_argument("--calibrate-on", type=int, default=None,
                    help="measure the SE mean scale on this seed's cached Monte Carlo stack; report all seeds")
    a = ap.parse_args(argv)
    out = {"time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if a.calibrate_on is not None:
        out.update(calibrate([int(v) for v in a.seeds.split(",")], a.per_pixel, a.calibrate_on, cache=a.cache))
        print(json.dumps(out, indent=1))
        return 0
    out.update(run([int(v) for v in a.seeds.split(",")], a.per_pixel, [float(v) for v in a.spreads.split(",")],
                   views=tuple(a.views.split(",")), cache=a.cache))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
