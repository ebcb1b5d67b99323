#!/usr/bin/env python3
"""``fibsynth reconstruct`` with three phases on realistic test stacks, against multi-Otsu (issue 17 item 2 / issue 14).

For every seed:

1. a three-phase ground truth from a generator that is not fibsynth's (``benchmarks/realistic_stack.py``'s band-pass
   Gaussian random fields with morphological clean-up): the solid network is one field above its
   (1 - ``--network``) quantile, the part of it where a second field (another length scale) lies above its
   median is phase 2, the rest phase 1; label 0 the filling;
2. its Monte Carlo BSE stack with one material per label (``--materials``, 2 keV, 4 nm pixels, 8 nm slices,
   ``--electrons`` per pixel);
3. the test's artifact model (``realistic_stack.degrade``: focus drift, misalignment, curtains, shading, charging,
   non-linear detector, Poisson-Gaussian noise, 8-bit) -- apart from the microscope model used in training;
4. ``reconstruct`` with ``MultiphaseSettings(materials=...)`` (fast path, histogram adaptation, 3-class 2.5D U-Net)
   and the per-phase Dice / MDS of the U-Net and of multi-Otsu (its first pass) against the truth.

    .venv/bin/python benchmarks/bench_reconstruct_phases.py --seeds 0,1 --json --out /tmp/bench_rp
    .venv/bin/python benchmarks/bench_reconstruct_phases.py --materials epoxy,Ni,Zr0.852Y0.148O1.926:5.9 --seeds 0
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _realistic():
    spec = importlib.util.spec_from_file_location("realistic_stack", HERE / "realistic_stack.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def three_phase_truth(shape, vz, seed: int, *, network: float = 0.6, length_nm: float = 88.0,
                      split_nm: float = 56.0):
    import numpy as np

    R = _realistic()
    net = R.grf_structure(shape, vz, network, length_nm, seed=seed)
    f2 = R.bandpass_field(shape, vz, split_nm, 0.5, np.random.default_rng((seed, 2)))
    lab = net.astype(np.uint8)
    lab[(net > 0) & (f2 > np.median(f2))] = 2
    return lab


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--materials", default="epoxy,Au,Ni")
    ap.add_argument("--shape", default="32,96,96")
    ap.add_argument("--electrons", type=int, default=20)
    ap.add_argument("--energy-kev", type=float, default=2.0)
    ap.add_argument("--seg-steps", type=int, default=300)
    ap.add_argument("--structures", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_reconstruct_phases"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    import numpy as np

    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, read_volume, write_volume
    from fibsynth.reconstruct import reconstruct
    from fibsynth.reconstruct.multiphase import MultiphaseSettings, image_labels

    R = _realistic()
    mats = tuple(a.materials.split(","))
    shape = tuple(int(v) for v in a.shape.split(","))
    vz = (8.0, 4.0, 4.0)
    vox = VoxelSize.from_xy_z(4.0, 8.0)
    rows = []
    for seed in (int(s) for s in a.seeds.split(",")):
        d = a.out / f"{'-'.join(mats).replace(':', '@')}_{'x'.join(map(str, shape))}_e{a.electrons}_s{seed}"
        d.mkdir(parents=True, exist_ok=True)
        stack, truth_f = d / "stack.tif", d / "truth.tif"
        t_mc = 0.0
        if not stack.exists():
            truth = three_phase_truth(shape, vz, seed)
            t0 = time.perf_counter()
            ideal, _ = image_labels(truth, vz, a.energy_kev, mats, engine="mc", electrons_per_pixel=a.electrons,
                                    seed=seed)
            t_mc = time.perf_counter() - t0
            u8, t, p = R.degrade(ideal, truth, seed + 1000)
            write_volume(truth_f, t.astype(np.uint8), VolumeMeta(kind="label", voxel_size_nm=vox,
                                                                 materials={str(i): m for i, m in enumerate(mats)}))
            write_volume(stack, u8, VolumeMeta(kind="image", voxel_size_nm=vox, energy_kev=a.energy_kev,
                                               generator="benchmarks/bench_reconstruct_phases.py",
                                               parameters={"artifacts": p, "materials": list(mats)}))
        truth = np.asarray(read_volume(truth_f).data)
        s = MultiphaseSettings(materials=mats, seg_steps=a.seg_steps, structures=a.structures, seed=seed)
        t0 = time.perf_counter()
        summ = reconstruct(stack, d / "out", s, truth=truth_f, quiet=True)
        t_rec = time.perf_counter() - t0
        ev = summ["evaluation"]
        row = {"seed": seed, "materials": list(mats), "fraction_true": [float((truth == i).mean()) for i in range(3)],
               "seconds": {"mc": round(t_mc, 1), "reconstruct": round(t_rec, 1)},
               "val_mds": summ["training"]["best_val_mds"], "val_multiotsu_mds": summ["training"]["val_multiotsu_mds"]}
        for name, key in (("U-Net (fibsynth)", "unet"), ("multi-Otsu", "multiotsu")):
            row[key] = {"MDS": ev[name]["MDS"], "MP %": ev[name]["MP %"],
                        **{f"dice_{mats[i]}": ev[name]["phases"][str(i)]["Dice"] for i in range(3)},
                        **{f"fraction_{mats[i]}": ev[name]["phases"][str(i)]["fraction"] for i in range(3)}}
        row["steps"] = {st["step"]: st["seconds"] for st in summ["steps"]}
        rows.append(row)
        if not a.json:
            print(json.dumps(row), flush=True)
    mean = {m: {k: float(np.mean([r[m][k] for r in rows])) for k in rows[0][m]} for m in ("unet", "multiotsu")}
    out = {"shape": list(shape), "materials": list(mats), "electrons_per_pixel": a.electrons,
           "energy_kev": a.energy_kev, "seg_steps": a.seg_steps, "rows": rows, "mean": mean}
    print(json.dumps(out, indent=1) if a.json else json.dumps(mean, indent=1))
    return out


if __name__ == "__main__":
    main()
