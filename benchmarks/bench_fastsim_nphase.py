#!/usr/bin/env python3
"""Fidelity of the n-phase projection against the Monte Carlo (issue 17: the fast path with one material per label).

For every seed and material set: a three-phase two-field structure (``structure.multiphase``: label 0 the filling,
labels 1 and 2 two solids; 4 nm voxels, ``slices`` imaged slices plus ``behind`` slices of structure behind them),
imaged by

* the Monte Carlo (``pipeline.montecarlo_stack``, one material per label, 38 degrees, ``electrons`` per pixel),
* the n-phase projection (``fastsim.multiphase.project_labels``: each solid with its own eta_net(E, Z, d)),
* a control: the binary projection of the solids as one material (``labels > 0`` as ``materials[1]``), which is
  what the fast path could do before;

and scored by the Pearson pixel correlation with the Monte Carlo over the imaged slices (invariant to the affine
gray scale), the noise ceiling of that correlation (the largest r an exact model could reach against Monte Carlo
images with this shot noise: sqrt(1 - mean binomial variance / variance of the MC image)), and the per-phase mean
gray values (projection mapped onto the MC by a least-squares line over all pixels).

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/bench_fastsim_nphase.py --seeds 0,1,2 --json
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sets", default="epoxy/Ni/Zr0.852Y0.148O1.926:5.9;epoxy/Au/Ni",
                    help="material sets (label 0/1/2), separated by ';'")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--slices", type=int, default=4)
    ap.add_argument("--behind", type=int, default=24)
    ap.add_argument("--electrons", type=int, default=200)
    ap.add_argument("--energy-kev", type=float, default=2.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    import numpy as np

    from fibsynth.fastsim.fidelity import mean_sd, pearson
    from fibsynth.fastsim.multiphase import project_labels
    from fibsynth.fastsim.projection import project
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.pipeline import montecarlo_stack
    from fibsynth.structure import multiphase

    vox = (4.0, 4.0, 4.0)
    rows = []
    for mset in a.sets.split(";"):
        mats = mset.split("/")
        for seed in (int(s) for s in a.seeds.split(",")):
            lab = multiphase((a.slices + a.behind, a.size, a.size), 4.0, (0.4, 0.35, 0.25), ligament_nm=(24, 32),
                             seed=seed)
            st = StackSettings(beam=Beam(energy_kev=a.energy_kev), geometry=StackGeometry(materials=mats),
                               electrons_per_pixel=a.electrons, seed=seed)
            t0 = time.perf_counter()
            mc = montecarlo_stack(lab, 4.0, st, slices=(0, a.slices))
            t_mc = time.perf_counter() - t0
            eta = np.asarray(mc.data, np.float64)
            var_noise = float(np.mean(np.asarray(mc.record["std"], np.float64) ** 2))
            ceiling = float(np.sqrt(max(0.0, 1.0 - var_noise / eta.var())))
            t0 = time.perf_counter()
            proj, _ = project_labels(lab, vox, a.energy_kev, mats, slices=(0, a.slices))
            t_proj = time.perf_counter() - t0
            ctrl, _ = project((lab > 0).astype(np.uint8), vox, a.energy_kev, solid=mats[1], pore=mats[0],
                              slices=(0, a.slices))
            face = lab[: a.slices]
            slope, icpt = np.polyfit(proj.ravel().astype(np.float64), eta.ravel(), 1)
            fit = slope * proj + icpt
            row = {"materials": mats, "seed": seed,
                   "r_nphase": pearson(proj, eta), "r_binary_control": pearson(ctrl, eta), "r_ceiling": ceiling,
                   "mc_mean_per_label": [float(eta[face == i].mean()) for i in range(3)],
                   "proj_fit_mean_per_label": [float(fit[face == i].mean()) for i in range(3)],
                   "seconds": {"mc": round(t_mc, 1), "projection": round(t_proj, 2)}}
            rows.append(row)
            if not a.json:
                print(f"{'/'.join(mats)} seed {seed}: r n-phase {row['r_nphase']:.3f}, binary control "
                      f"{row['r_binary_control']:.3f}, ceiling {ceiling:.3f}; MC per label "
                      f"{', '.join(f'{v:.3f}' for v in row['mc_mean_per_label'])}, projection (fit) "
                      f"{', '.join(f'{v:.3f}' for v in row['proj_fit_mean_per_label'])}; MC {t_mc:.0f} s, "
                      f"projection {t_proj:.2f} s", flush=True)
    summary = {}
    for mset in a.sets.split(";"):
        rs = [r for r in rows if "/".join(r["materials"]) == mset]
        summary[mset] = {k: mean_sd(r[k] for r in rs) for k in ("r_nphase", "r_binary_control", "r_ceiling")}
    out = {"size": a.size, "slices": a.slices, "behind": a.behind, "electrons_per_pixel": a.electrons,
           "energy_kev": a.energy_kev, "voxel_nm": 4.0, "rows": rows, "summary": summary}
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        for k, v in summary.items():
            print(k, {m: f"{s['mean']:.3f} +- {s['sd']:.3f}" for m, s in v.items()})
    return out


if __name__ == "__main__":
    main()
