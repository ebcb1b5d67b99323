"""Train the in-lens SE paired translator of one open-pore configuration (issue 17, item 4): porous silicon with
open (vacuum) pores, 2 keV, 38 degrees, in-lens detector. The machinery of the BSE translator
(experiments/fastpath_train_translator.py: the same network, features, loss, augmentation and training loop
``fit``); the projection channels are the SE projection's parts (``translator.se_projection_channels``).

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 nice -n 10 python experiments/se_fastpath_sets.py        # Monte Carlo (cached)
    OMP_NUM_THREADS=1 nice -n 10 python experiments/se_train_translator.py --out /tmp/se_fastpath/model [--ship]

Training structures: se_fastpath_sets.TRAIN (10 leveled waves; the last one is the monitor for early stopping);
the held-out test structures (se_fastpath_sets.TEST) are never read. After training, the per-primary noise law
v(m) = a m + b m^2 is fitted on the training structures' Monte Carlo standard errors against the trained
network's mean images (``translator.fit_se_noise_law``). One torch thread, seeded: reproducible.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fastpath_train_translator as bse_training  # noqa: E402
import se_fastpath_sets as sets  # noqa: E402

SPREAD, SPREAD_SE1 = 0.5, 0.2  # the SE projection's defaults (se_projection.DEFAULT_SPREAD, DEFAULT_SPREAD_SE1)


def signal_block(yields):
    return {"detector": sets.DETECTOR, "pore_view": "straight", "bse_weight": 1.0, "inlens_bse_theta_deg": 10.0,
            "yields": [float(v) for v in yields], "yields_from": "se_projection.flat_face_yields(silicon, 2 keV, "
            "38 deg), bulk Monte Carlo, 4000 electrons, seed 0", "spread": SPREAD, "spread_se1": SPREAD_SE1}


def load_pairs(structs, signal, cache, slices=sets.TRAIN_SLICES, test=False, realisation=0):
    from fibsynth.fastsim.translator import features, se_projection_channels

    xs, ys, ss = [], [], []
    for seed, sf, lig in structs:
        s = sets.test_structure(seed, sf, lig) if test else sets.train_structure(seed, sf, lig)
        m = sets.test_mc(seed, sf, lig, realisation, cache) if test else sets.train_mc(seed, sf, lig, cache)
        ch, _ = se_projection_channels(s, (sets.VOXEL_NM,) * 3, sets.ENERGY_KEV, signal, solid=sets.SOLID,
                                       incidence_deg=sets.INCIDENCE_DEG, slices=(0, slices))
        xs.append(features(s, (sets.VOXEL_NM,) * 3, sets.ENERGY_KEV, incidence_deg=sets.INCIDENCE_DEG,
                           projection=ch, slices=(0, slices)))
        ys.append(m["eta"])
        ss.append(m["std"])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)


def main():
    ap = argparse.ArgumentParser()
    bse_training.training_arguments(ap, out="/tmp/se_fastpath/model", cache=sets.CACHE, epochs=400, max_seconds=900.0)
    ap.add_argument("--ship", action="store_true", help="copy weights + json into src/fibsynth/fastsim/data")
    ap.add_argument("--refit-noise", action="store_true",
                    help="keep the trained weights in --out; only fit the noise law again and rewrite the .json")
    a = ap.parse_args()
    import torch

    from fibsynth.fastsim import translator as T
    from fibsynth.fastsim.se_projection import flat_face_yields

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    t0 = time.perf_counter()
    yields = flat_face_yields(sets.SOLID, sets.ENERGY_KEV, sets.INCIDENCE_DEG)
    signal = signal_block(yields)
    train_sets, monitor_sets = sets.TRAIN[:-1], sets.TRAIN[-1:]
    xtr, ytr, str_ = load_pairs(train_sets, signal, a.cache)
    xmo, ymo, smo = load_pairs(monitor_sets, signal, a.cache)
    print(f"data: train {xtr.shape}, monitor {xmo.shape} ({time.perf_counter() - t0:.1f} s); yields {yields}",
          flush=True)
    if a.refit_noise:
        cpath = a.out / "paired_translator_se.json"
        cfg = json.loads(cpath.read_text())
        tr = T.PairedTranslator(a.out / "paired_translator_se.pt")
        means = [tr.mean(x[None])[0] for x in np.concatenate([xtr, xmo])]
        cfg["signal"]["noise"] = T.fit_se_noise_law(means, list(np.concatenate([str_, smo])), sets.ELECTRONS)
        cpath.write_text(json.dumps(cfg, indent=1))
        print(json.dumps(cfg["signal"]["noise"], indent=1))
        return
    dil = tuple(int(d) for d in a.dilations.split(","))
    net = T._torch_net(xtr.shape[1], a.width, dil)
    with torch.no_grad():  # start the output at the mean signal
        net.out.bias.fill_(float(ytr.mean()))
    best, best_epoch, history, secs = bse_training.fit(net, xtr, ytr, xmo, ymo, rng, epochs=a.epochs,
                                                       patience=a.patience, batch=a.batch, lr=a.lr,
                                                       max_seconds=a.max_seconds)
    from fibsynth.ml.checkpoint import save_weights

    a.out.mkdir(parents=True, exist_ok=True)
    save_weights(a.out / "paired_translator_se.pt", net.state_dict())
    # the noise law from the Monte Carlo's standard errors of all training structures against the network's means
    net.eval()
    with torch.no_grad():
        means = [net(torch.from_numpy(x[None])).numpy()[0] for x in np.concatenate([xtr, xmo])]
    means = [np.clip(m, 0.0, None) for m in means]
    noise = T.fit_se_noise_law(means, list(np.concatenate([str_, smo])), sets.ELECTRONS)
    signal["noise"] = noise
    params = sum(p.numel() for p in net.parameters())
    # noise floor of the monitor MSE: the Monte Carlo's own variance (what a perfect mean scores)
    floor = float(np.mean(smo.astype(np.float64) ** 2))
    training = {
        "trained_by": "experiments/se_train_translator.py (the loop of experiments/fastpath_train_translator.py)",
        "materials": [sets.SOLID, "vacuum"], "detector": sets.DETECTOR, "voxel_nm": sets.VOXEL_NM,
        "incidence_deg": sets.INCIDENCE_DEG, "energy_range_kev": [sets.ENERGY_KEV, sets.ENERGY_KEV],
        "energies_kev": [sets.ENERGY_KEV],
        "data": {"structures": [{"seed": s, "solid_fraction": sf, "ligament_nm": lig,
                                 "shape": [sets.TRAIN_SLICES + sets.BEHIND, sets.SIZE, sets.SIZE]}
                                for s, sf, lig in sets.TRAIN],
                 "generator": f"fibsynth.structure.leveled_wave, {sets.VOXEL_NM:g} nm voxels",
                 "monte_carlo": f"physics.montecarlo.stack.simulate_stack, slices 0-{sets.TRAIN_SLICES - 1}, "
                                f"{sets.ELECTRONS} electrons/pixel, {sets.INCIDENCE_DEG:g} deg, silicon / vacuum "
                                f"pores, backing repeat, in-lens detector (defaults), MC seed = structure seed",
                 "train_structures": [s for s, _, _ in train_sets],
                 "monitor_structures": [s for s, _, _ in monitor_sets],
                 "held_out_test_structures": [s for s, _, _ in sets.TEST]},
        "settings": {"epochs_max": a.epochs, "max_seconds": a.max_seconds, "patience": a.patience,
                     "batch": a.batch, "lr": a.lr, "optimizer": "Adam, ReduceLROnPlateau x0.3 after 15",
                     "loss": "MSE vs single MC images", "augmentation": "periodic shifts in y and x, mirror in x",
                     "seed": a.seed, "threads": 1},
        "epochs_run": len(history), "best_epoch": best_epoch, "monitor_mse": best,
        "monitor_mse_noise_floor": floor, "seconds": secs, "parameters": params,
    }
    cfg = T.make_config(xtr.shape[1], a.width, dil, training, signal=signal)
    (a.out / "paired_translator_se.json").write_text(json.dumps(cfg, indent=1))
    (a.out / "history.json").write_text(json.dumps(history))
    print(json.dumps({**training, "noise": noise}, indent=1))
    if a.ship:
        bse_training.ship(a.out, ("paired_translator_se.pt", "paired_translator_se.json"))


if __name__ == "__main__":
    main()
