#!/usr/bin/env python3
"""Multi-phase segmentation benchmark (issue 17): a 3-class U-Net against multi-Otsu on held-out 3-phase Monte Carlo
stacks, per-phase scores, a few seeds.

For every seed:

1. two 3-phase structures (``structure.multiphase``, two-field: pore + two solid phases; 4 nm voxels) -- one to
   train on, one held out (seed + 1000);
2. their Monte Carlo BSE stacks (``pipeline.montecarlo_stack``, one material per label, e.g. epoxy / Ni / YSZ,
   2 keV, 38 degrees, slices ``0:slices`` of a deeper structure so that material lies behind the last one);
3. a 2.5D U-Net with 3 classes (``segment.fit``, Dice + cross-entropy) trained on the first stack, applied to
   the held-out one;
4. multi-Otsu (skimage ``threshold_multiotsu``) on the held-out stack, its gray classes given to the labels in the
   order of their mean gray value on the *training* stack (no look at the held-out truth);
5. per-phase Dice, MDS (mean over phases), MP and the predicted phase fractions of both against the truth.

Prints a table per seed and the mean over seeds (``--json``: one object; ``--out DIR`` keeps the stacks, so a
second run with the same options only retrains).

    .venv/bin/python benchmarks/bench_multiphase.py                   # 3 seeds, epoxy/Ni/YSZ (fuel-cell anode)
    .venv/bin/python benchmarks/bench_multiphase.py --materials epoxy,Au,Ni --seeds 0,1 --json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--size", type=int, default=48, help="lateral edge (y = x) in voxels")
    ap.add_argument("--slices", type=int, default=24, help="slices simulated per stack")
    ap.add_argument("--electrons", type=int, default=20, help="electrons per pixel")
    ap.add_argument("--energy-kev", type=float, default=2.0)
    ap.add_argument("--materials", default=None, help="material per label (default: the structure's, epoxy/Ni/YSZ)")
    ap.add_argument("--fractions", default="0.4,0.35,0.25")
    ap.add_argument("--steps", type=int, default=300, help="U-Net optimizer steps")
    ap.add_argument("--out", type=Path, default=None, help="folder keeping the stacks (reused when present)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)

    import numpy as np

    from fibsynth.io import read_volume
    from fibsynth.metrics import evaluate_phases
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.pipeline import baseline_segmentation, make_multiphase, montecarlo_stack, segmentation
    from fibsynth.segment.train import TrainSettings, _brightness_order, fit

    fractions = tuple(float(f) for f in a.fractions.split(","))
    seeds = [int(s) for s in a.seeds.split(",")]
    depth = a.slices + 8  # material behind the last simulated slice
    shape = (depth, a.size, a.size)

    def stack(seed: int):
        st = make_multiphase(shape, 4.0, fractions, ligament_nm=(24.0, 32.0), seed=seed)
        mats = a.materials.split(",") if a.materials else [st.meta.materials[str(i)] for i in range(3)]
        path = a.out / f"mc_{seed}_{a.size}_{a.slices}_{a.electrons}_{'-'.join(mats).replace(':', '@')}.npy" if a.out else None
        if path is not None and path.exists():
            return st.data[: a.slices], read_volume(path).data, mats, 0.0
        s = StackSettings(beam=Beam(energy_kev=a.energy_kev), geometry=StackGeometry(materials=mats),
                          electrons_per_pixel=a.electrons, seed=seed)
        t0 = time.perf_counter()
        img = montecarlo_stack(st.data, 4.0, s, slices=(0, a.slices))
        dt = time.perf_counter() - t0
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            img.write(path)
        return st.data[: a.slices], img.data, mats, dt

    import tempfile

    rows = []
    for seed in seeds:
        lab_tr, img_tr, mats, t_tr = stack(seed)
        lab_te, img_te, _, t_te = stack(seed + 1000)
        settings = TrainSettings(mode="2.5d", k=1, features=(8, 16, 32), num_res_units=1, patch=32, stride=16,
                                 batch=16, lr=3e-3, steps=a.steps, val_every=max(a.steps // 6, 1), early_stop=6,
                                 val_fraction=0.25, seed=seed, classes=3, accelerator="cpu")
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            rec = fit([img_tr], [lab_tr], Path(tmp) / "model", settings, verbose=False)
            t_fit = time.perf_counter() - t0
            pred = segmentation(Path(tmp) / "model", img_te).data
        order = _brightness_order([img_tr], [lab_tr], 3)
        base = baseline_segmentation(img_te, method="multiotsu", classes=3, order=order).data
        net = evaluate_phases(pred, lab_te, 3, names=mats)
        otsu = evaluate_phases(base, lab_te, 3, names=mats)
        keep = ["MP", "MDS"] + [f"dice_{m}" for m in mats] + [f"fraction_pred_{m}" for m in mats]
        rows.append({
            "seed": seed, "materials": mats, "order_dark_to_bright": order,
            "mean_gray_per_label_train": [float(img_tr[lab_tr == i].mean()) for i in range(3)],
            "fraction_true": [net[f"fraction_true_{m}"] for m in mats],
            "unet": {k: net[k] for k in keep}, "multiotsu": {k: otsu[k] for k in keep},
            "seconds": {"mc_train": round(t_tr, 1), "mc_test": round(t_te, 1), "fit": round(t_fit, 1)},
            "steps_run": rec["steps_run"], "best_val_mds": rec["best_val_mds"], "otsu_val_mds": rec["otsu_val_mds"],
        })
    mean = {m: {k: float(np.mean([r[m][k] for r in rows])) for k in rows[0][m]} for m in ("unet", "multiotsu")}
    out = {"shape": list(shape), "slices": a.slices, "electrons_per_pixel": a.electrons, "energy_kev": a.energy_kev,
           "fractions": list(fractions), "steps": a.steps, "rows": rows, "mean": mean}
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        for r in rows:
            print(f"seed {r['seed']} ({'/'.join(r['materials'])}; gray per label "
                  f"{', '.join(f'{g:.3f}' for g in r['mean_gray_per_label_train'])})")
            for m in ("unet", "multiotsu"):
                print(f"  {m:10s} " + "  ".join(f"{k} {v:.3f}" for k, v in r[m].items()))
        for m in ("unet", "multiotsu"):
            print(f"mean {m:10s} " + "  ".join(f"{k} {v:.3f}" for k, v in mean[m].items()))
    return out


if __name__ == "__main__":
    main()
