"""SE stacks with open pores: time against the gold/epoxy stack of the same structure, and the statistical identity
of the SE images with a reference run (issue 17: open-pore stacks at <= 1.5x the time of a gold/epoxy stack).

    NUMBA_NUM_THREADS=2 PYTHONPATH=src .venv/bin/python benchmarks/se_speed.py --timing --repeats 3
    PYTHONPATH=src .venv/bin/python benchmarks/se_speed.py --save /tmp/ref.npz --per-pixel 40 --seed 1
    PYTHONPATH=src .venv/bin/python benchmarks/se_speed.py --compare /tmp/ref.npz --per-pixel 40 --seed 2

``--timing``: one leveled-wave gold structure (24 x 40 x 40, 4 nm voxels, solid fraction 0.3, ligament 30 nm:
the structure of ``se_fastpath.py``), 2 keV, 38 degrees, slices 0..K-1 with the last slice repeated behind the
stack, run with ``simulate_stack`` in this process (block tracking, numba threads); per repeat, interleaved: the
BSE stack with epoxy pores, the ``se`` and ``inlens`` stacks with epoxy pores and with open (vacuum) pores.
CPU seconds of the process (all threads; ``time.process_time``: on a shared machine the wall clock mostly
measures the other jobs). Medians and the per-repeat ratios to the same detector's gold/epoxy stack and to the
BSE gold/epoxy stack (paired
in the same repeat; the machine's load cancels in the ratios).

``--save`` / ``--compare``: the ``se`` and ``inlens`` open-pore stacks (images and their per-pixel standard
errors) of one seed; ``--compare`` reads a stack saved by ``--save`` (e.g. by an older checkout with the same
script) and reports per detector the mean of the per-pixel z = (a - b) / sqrt(s_a^2 + s_b^2), its spread (1 for
statistically identical images), the share with |z| > 2 (4.6 % for a normal z) and the relative difference of
the means.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


def structure(shape=(24, 40, 40), voxel_nm=4.0, seed=1):
    from fibsynth.pipeline.products import make_structure

    return make_structure(shape, (voxel_nm, voxel_nm, voxel_nm), solid_fraction=0.3, ligament_nm=30.0,
                          seed=seed).data.astype(np.uint8)


def settings(pore, kind, per_pixel, seed):
    from fibsynth.physics.montecarlo.detectors import SignalDetector
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings

    return StackSettings(beam=Beam(energy_kev=2.0), electrons_per_pixel=per_pixel, seed=seed,
                         geometry=StackGeometry(solid="gold", pore=pore, backing="repeat"),
                         signal=None if kind == "bse" else SignalDetector(kind=kind))


def run_stack(vol, s, k1):
    from fibsynth.config import VoxelSize
    from fibsynth.physics.montecarlo.stack import simulate_stack

    t0 = time.process_time()  # CPU seconds of all threads: less sensitive to other jobs than the wall clock
    res = simulate_stack(vol, VoxelSize(x=4, y=4, z=4), s, slices=(0, k1), progress=False)
    return res, time.process_time() - t0


CASES = [("bse", "epoxy"), ("se", "epoxy"), ("se", "vacuum"), ("inlens", "epoxy"), ("inlens", "vacuum")]


def timing(per_pixel, repeats, k1, seed=1):
    vol = structure(seed=seed)
    for kind, pore in CASES:  # compile
        run_stack(vol[:4], settings(pore, kind, 1, seed), 1)
    times = {f"{k}_{p}": [] for k, p in CASES}
    for _ in range(repeats):
        for kind, pore in CASES:
            _, dt = run_stack(vol, settings(pore, kind, per_pixel, seed), k1)
            times[f"{kind}_{pore}"].append(dt)
            print(kind, pore, round(dt, 2), file=sys.stderr, flush=True)
    ratios = {}
    for kind in ("se", "inlens"):
        ratios[f"{kind}_vacuum/{kind}_epoxy"] = [a / b for a, b in zip(times[f"{kind}_vacuum"], times[f"{kind}_epoxy"])]
        ratios[f"{kind}_vacuum/bse_epoxy"] = [a / b for a, b in zip(times[f"{kind}_vacuum"], times["bse_epoxy"])]
        ratios[f"{kind}_epoxy/bse_epoxy"] = [a / b for a, b in zip(times[f"{kind}_epoxy"], times["bse_epoxy"])]
    return {"shape": list(vol.shape), "slices": [0, k1], "per_pixel": per_pixel, "repeats": repeats,
            "seconds": times, "seconds_median": {k: statistics.median(v) for k, v in times.items()},
            "ratios": ratios, "ratio_medians": {k: statistics.median(v) for k, v in ratios.items()},
            "numba_threads": os.environ.get("NUMBA_NUM_THREADS", "default")}


def images(per_pixel, k1, seed):
    vol = structure(seed=1)
    out = {}
    for kind in ("se", "inlens"):
        res, dt = run_stack(vol, settings("vacuum", kind, per_pixel, seed), k1)
        out[f"{kind}_eta"] = res["eta"]
        out[f"{kind}_std"] = res["std"]
        out[f"{kind}_seconds"] = dt
    return out


def compare(a, b):
    rows = {}
    for kind in ("se", "inlens"):
        x, y = a[f"{kind}_eta"].astype(float), b[f"{kind}_eta"].astype(float)
        s = np.sqrt(a[f"{kind}_std"].astype(float) ** 2 + b[f"{kind}_std"].astype(float) ** 2)
        ok = s > 0
        z = (x[ok] - y[ok]) / s[ok]
        rows[kind] = {"pixels": int(ok.sum()), "z_mean": float(z.mean()), "z_std": float(z.std()),
                      "share_abs_z_gt_2": float(np.mean(np.abs(z) > 2)),
                      "mean_rel_diff": float(x.mean() / y.mean() - 1.0),
                      "standard_error_of_mean_rel": float(np.sqrt((s**2).sum()) / s.size / y.mean())}
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--slices", type=int, default=6, help="slices 0..N-1 of the stack")
    ap.add_argument("--per-pixel", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1, help="Monte Carlo seed (the structure is always seed 1)")
    ap.add_argument("--save", default=None)
    ap.add_argument("--compare", default=None)
    a = ap.parse_args(argv)
    out = {"time": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if a.timing:
        out["timing"] = timing(a.per_pixel, a.repeats, a.slices)
    if a.save or a.compare:
        img = images(a.per_pixel, a.slices, a.seed)
        if a.save:
            np.savez(a.save, **img)
        if a.compare:
            ref = dict(np.load(a.compare))
            out["compare"] = compare(img, ref)
        out["image_seconds"] = {k: v for k, v in img.items() if k.endswith("seconds")}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
