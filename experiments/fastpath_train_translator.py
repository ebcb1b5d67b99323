"""Train the fast path's paired translator (issue 15) on the cached paired data of experiments/fastpath_sets.py.

    nice -n 10 python experiments/fastpath_sets.py --part train          # Monte Carlo data (cached, ~10 min)
    nice -n 10 python experiments/fastpath_train_translator.py --out /tmp/fastpath/model [--ship]

Training structures: fastpath_sets.TRAIN (6 leveled waves; the last one is the monitor for early stopping);
energies fastpath_sets.TRAIN_ENERGIES; the held-out test structures (fastpath_sets.TEST_SEEDS) are never read.
Loss: mean squared error against single 100 e/px Monte Carlo images (its minimiser is the Monte Carlo's mean
image). Augmentation: random periodic shifts in y and x (projection, structure and Monte Carlo are periodic)
and mirror in x (the beam is tilted in y-z). One torch thread, seeded: reproducible.
"""
from __future__ import annotations

import argparse
import math
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fastpath_sets as sets  # noqa: E402


def load_pairs(seeds_params, energies, cache, bins_nm=None, skip_missing=False):
    """Features and Monte Carlo images of slices 0..SLICES-1 of every structure and energy (the Monte Carlo run where
    not cached; ``skip_missing``: only the cached ones)."""
    from fibsynth.fastsim.fidelity import INCIDENCE_DEG, VOXEL_NM
    from fibsynth.fastsim.translator import DEPTH_BINS_NM, features

    bins_nm = DEPTH_BINS_NM if bins_nm is None else bins_nm

    xs, ys = [], []
    for seed, sf, lig in seeds_params:
        s = sets.train_structure(seed, sf, lig)
        for e in energies:
            try:
                m = sets.train_mc(seed, sf, lig, e, cache, run=not skip_missing)
            except FileNotFoundError:
                continue
            x = features(s, (VOXEL_NM,) * 3, e, incidence_deg=INCIDENCE_DEG, slices=(0, sets.SLICES),
                         bins_nm=bins_nm)
            xs.append(x)
            ys.append(m["eta"])
    return np.concatenate(xs), np.concatenate(ys)


def load_unet_test_pairs(energies=(1.0, 2.0, 4.0), bins_nm=None, skip_missing=False):
    """Extra pairs: the U-Net benchmark's held-out Monte Carlo stacks (benchmarks/bench_fastpath_unet.py,
    structures 401-403, 12 slices, 1/2/4 keV, cached by its --generate run). The fast path never images these
    structures there (its fast-path U-Nets are trained on 301-303 and all models segment these MC stacks), so
    training on them leaves that comparison clean; the translator's own test set (201-203) stays held out."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_fastpath_unet as U
    from fibsynth.fastsim.fidelity import INCIDENCE_DEG, VOXEL_NM
    from fibsynth.fastsim.translator import DEPTH_BINS_NM, features

    bins_nm = DEPTH_BINS_NM if bins_nm is None else bins_nm
    xs, ys, loaded = [], [], []
    for seed in U.TEST_SEEDS:
        s = U.structure(seed, U.TEST_SLICES)
        for e in energies:
            try:
                m = U.mc(seed, U.TEST_SLICES, e, run=False)
            except FileNotFoundError:
                if skip_missing:
                    continue
                raise
            loaded.append([seed, e])
            xs.append(features(s, (VOXEL_NM,) * 3, e, incidence_deg=INCIDENCE_DEG, slices=(0, U.TEST_SLICES),
                               bins_nm=bins_nm))
            ys.append(m["eta"])
    return np.concatenate(xs), np.concatenate(ys), {"structures": list(U.TEST_SEEDS), "slices": U.TEST_SLICES,
                                                    "energies_kev": sorted({e for _, e in loaded}),
                                                    "loaded": loaded,
                                                    "monte_carlo": f"bench_fastpath_unet.py cache, MC seed 7000 + "
                                                                   f"structure seed, {U.ELECTRONS} e/px"}


def bin_slices(bins_nm, dz=5.0):
    """Slice index ranges [j0, j1) of each depth bin, by the rule of projection.sheared_depth_fractions."""
    out = []
    for lo, hi in zip(bins_nm[:-1], bins_nm[1:]):
        j0, j1 = (max(0, int(math.ceil(v / dz - 0.5 - 1e-9))) for v in (lo, hi))
        if j1 <= j0:
            j0 = int(max(0, math.floor(0.5 * (lo + hi) / dz)))
            j1 = j0 + 1
        out.append((j0, j1))
    return out


def expand_depth_bins(old_weight, old_bins, new_bins, n_proj=1):
    """Input-convolution weights (out, C_old, 3, 3) for finer depth bins that give the same function: every old
    bin must be a union of new bins (its fraction is then the slice-count-weighted mean of theirs), so the weight
    of new bin i inside old bin b is old_weight[:, b] x (slices of i) / (slices of b)."""
    old_r, new_r = bin_slices(old_bins), bin_slices(new_bins)
    nb_new = len(new_r)
    w = np.zeros((old_weight.shape[0], n_proj + nb_new + 1) + old_weight.shape[2:], np.float32)
    w[:, :n_proj] = old_weight[:, :n_proj]
    w[:, -1] = old_weight[:, -1]  # energy channel
    for b, (j0, j1) in enumerate(old_r):
        inside = [i for i, (k0, k1) in enumerate(new_r) if k0 >= j0 and k1 <= j1]
        if sum(new_r[i][1] - new_r[i][0] for i in inside) != j1 - j0:
            raise SystemExit(f"old depth bin {old_bins[b]}-{old_bins[b + 1]} nm is not a union of new bins")
        for i in inside:
            w[:, n_proj + i] = old_weight[:, n_proj + b] * (new_r[i][1] - new_r[i][0]) / (j1 - j0)
    return w


def fit(net, xtr, ytr, xmo, ymo, rng, *, epochs, patience, batch, lr, max_seconds, mean_weight=0.0):
    """Train ``net`` (in place) on the pairs (xtr, ytr) with early stopping on the monitor pairs (xmo, ymo); the
    best monitor state is loaded at the end. Returns (best monitor loss, its epoch, history, seconds). Shared by
    the SE translator's experiments/se_train_translator.py."""
    import torch

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.3, patience=15)
    xm, ym = torch.from_numpy(xmo), torch.from_numpy(ymo)
    best, best_state, best_epoch, history = np.inf, None, -1, []
    t0 = time.perf_counter()
    n = len(xtr)
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(n)
        losses = []
        for i in range(0, n, batch):
            idx = order[i:i + batch]
            sy, sx = (int(v) for v in rng.integers(0, xtr.shape[-1], 2))
            xb = np.roll(xtr[idx], (sy, sx), axis=(-2, -1))
            yb = np.roll(ytr[idx], (sy, sx), axis=(-2, -1))
            if rng.random() < 0.5:
                xb, yb = xb[..., ::-1], yb[..., ::-1]
            xb, yb = torch.from_numpy(np.ascontiguousarray(xb)), torch.from_numpy(np.ascontiguousarray(yb))
            pred = net(xb)
            loss = torch.mean((pred - yb) ** 2)
            if mean_weight:
                loss = loss + mean_weight * torch.mean((pred.mean((-2, -1)) - yb.mean((-2, -1))) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        net.eval()
        with torch.no_grad():
            pm = net(xm)
            mon = float(torch.mean((pm - ym) ** 2))
            if mean_weight:
                mon += mean_weight * float(torch.mean((pm.mean((-2, -1)) - ym.mean((-2, -1))) ** 2))
        sched.step(mon)
        history.append({"epoch": epoch, "train_mse": float(np.mean(losses)), "monitor_mse": mon,
                        "lr": opt.param_groups[0]["lr"]})
        if mon < best:
            best, best_epoch = mon, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if epoch % 10 == 0:
            print(f"epoch {epoch}: train {np.mean(losses):.6f} monitor {mon:.6f} lr {opt.param_groups[0]['lr']:.1e} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        if epoch - best_epoch >= patience or time.perf_counter() - t0 > max_seconds:
            break
    secs = time.perf_counter() - t0
    net.load_state_dict(best_state)
    return best, best_epoch, history, secs


def training_arguments(ap, *, out, cache, epochs, max_seconds):
    """The options of the network and of the training loop :func:`fit`, with this script's defaults but for the
    output folder, the Monte Carlo cache, the epochs and the time limit (experiments/se_train_translator.py: same
    loop, its own data)."""
    ap.add_argument("--out", type=Path, default=Path(out))
    ap.add_argument("--cache", type=Path, default=cache)
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--patience", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--width", type=int, default=24)
    ap.add_argument("--dilations", default="1,2,4,8,1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=max_seconds, help="stop after this much training time")


def ship(out, names):
    """``--ship``: copy the trained weights and their JSON from ``out`` into the package's data folder."""
    from fibsynth.fastsim import translator as T

    for f in names:
        shutil.copy(Path(out) / f, T.DATA / f)
    print("shipped to", T.DATA)


def main():
    ap = argparse.ArgumentParser()
    training_arguments(ap, out="/tmp/fastpath/model", cache=sets.CACHE, epochs=300, max_seconds=1080.0)
    ap.add_argument("--init", type=Path, default=None, help="start from these weights (.pt with its .json)")
    ap.add_argument("--extra-unet-test", action="store_true",
                    help="add the U-Net benchmark's held-out MC stacks (401-403, 1/2/4 keV) as training pairs")
    ap.add_argument("--mean-weight", type=float, default=0.0,
                    help="loss + this x the squared error of each image's mean yield (the mean level)")
    ap.add_argument("--add-dilation", type=int, default=0,
                    help="with --init: insert a zero-initialised residual layer of this dilation before the last one "
                         "(the network's function is unchanged at the start; a larger receptive field)")
    ap.add_argument("--depth-bins", default=None,
                    help="depth-bin edges in nm, comma separated (default translator.DEPTH_BINS_NM); with --init "
                         "every old bin must be a union of new ones: the input layer is expanded so that training "
                         "starts from the same function")
    ap.add_argument("--more", type=int, nargs="+", default=[], metavar="SEED",
                    help="also train on these structures of fastpath_sets.TRAIN_MORE (their Monte Carlo cached by "
                         "fastpath_sets.py --part train-more; seeds not given stay free for fastpath_validate.py)")
    ap.add_argument("--more-level", type=int, nargs="+", default=[], metavar="SEED",
                    help="also train on these structures of fastpath_sets.TRAIN_LEVEL (their cached energies only)")
    ap.add_argument("--cached-only", action="store_true",
                    help="the --more / --more-level structures and --extra-unet-test: only the energies whose Monte Carlo is cached")
    ap.add_argument("--ship", action="store_true", help="copy weights + json into src/fibsynth/fastsim/data")
    a = ap.parse_args()
    import torch

    from fibsynth.fastsim import translator as T

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    train_sets, monitor_sets = sets.TRAIN[:-1], sets.TRAIN[-1:]
    more = {t[0]: t for t in sets.TRAIN_MORE}
    unknown = [v for v in a.more if v not in more]
    if unknown:
        raise SystemExit(f"--more: {unknown} are not in fastpath_sets.TRAIN_MORE")
    level = {t[0]: t for t in sets.TRAIN_LEVEL}
    unknown = [v for v in a.more_level if v not in level]
    if unknown:
        raise SystemExit(f"--more-level: {unknown} are not in fastpath_sets.TRAIN_LEVEL")
    extra_sets = tuple(more[v] for v in a.more) + tuple(level[v] for v in a.more_level)
    t0 = time.perf_counter()
    bins = T.DEPTH_BINS_NM if a.depth_bins is None else tuple(float(v) for v in a.depth_bins.split(","))
    xtr, ytr = load_pairs(train_sets, sets.TRAIN_ENERGIES, a.cache, bins)
    if extra_sets:
        xm_, ym_ = load_pairs(extra_sets, sets.TRAIN_ENERGIES, a.cache, bins, skip_missing=a.cached_only)
        xtr, ytr = np.concatenate([xtr, xm_]), np.concatenate([ytr, ym_])
    train_sets = train_sets + extra_sets
    xmo, ymo = load_pairs(monitor_sets, sets.TRAIN_ENERGIES, a.cache, bins)
    extra = None
    if a.extra_unet_test:
        xex, yex, extra = load_unet_test_pairs(bins_nm=bins, skip_missing=a.cached_only)
        xtr, ytr = np.concatenate([xtr, xex]), np.concatenate([ytr, yex])
    print(f"data: train {xtr.shape}, monitor {xmo.shape} ({time.perf_counter() - t0:.1f} s)", flush=True)
    dil = tuple(int(d) for d in a.dilations.split(","))
    history0 = []
    if a.init is not None:  # continue an earlier run (its record is kept in the new JSON)
        from fibsynth.ml.checkpoint import load_into, load_weights

        icfg = json.loads(a.init.with_suffix(".json").read_text())
        dil = tuple(int(d) for d in icfg["architecture"]["dilations"])
        a.width = int(icfg["architecture"]["width"])
        old_bins = tuple(float(v) for v in icfg["features"]["depth_bins_nm"])
        state = load_weights(a.init)
        if old_bins != tuple(bins):  # finer depth bins: the same function to start from
            w_old = state["inp.weight"].numpy()
            state["inp.weight"] = torch.from_numpy(expand_depth_bins(w_old, old_bins, bins))
            old_net = T._torch_net(int(icfg["architecture"]["in_channels"]), a.width, dil)
            load_into(old_net, load_weights(a.init), a.init)
            xold = load_pairs(monitor_sets, sets.TRAIN_ENERGIES, a.cache)[0]
        net = T._torch_net(xtr.shape[1], a.width, dil)
        load_into(net, state, a.init)
        if old_bins != tuple(bins):
            with torch.no_grad():
                d = float((old_net(torch.from_numpy(xold)) - net(torch.from_numpy(xmo))).abs().max())
            print(f"depth bins expanded {len(old_bins) - 1} -> {len(bins) - 1}: max |new - old| on the monitor "
                  f"{d:.2e}", flush=True)
        history0 = [icfg["training"]] + list(icfg["training"].get("continued_from", []))
        history0[0] = {k: v for k, v in history0[0].items() if k != "continued_from"}
        if a.add_dilation:
            old = net
            dil = dil[:-1] + (a.add_dilation,) + dil[-1:]
            net = T._torch_net(xtr.shape[1], a.width, dil)
            with torch.no_grad():
                net.inp.load_state_dict(old.inp.state_dict())
                net.out.load_state_dict(old.out.state_dict())
                for i in range(len(old.body) - 1):
                    net.body[i].load_state_dict(old.body[i].state_dict())
                net.body[-1].load_state_dict(old.body[-1].state_dict())
                net.body[-2].weight.zero_()
                net.body[-2].bias.zero_()
    else:
        net = T._torch_net(xtr.shape[1], a.width, dil)
    if a.init is None:  # start the output at the mean yield: faster and more stable
        with torch.no_grad():
            net.out.bias.fill_(float(ytr.mean()))
    best, best_epoch, history, secs = fit(net, xtr, ytr, xmo, ymo, rng, epochs=a.epochs, patience=a.patience,
                                          batch=a.batch, lr=a.lr, max_seconds=a.max_seconds,
                                          mean_weight=a.mean_weight)
    from fibsynth.ml.checkpoint import save_weights

    a.out.mkdir(parents=True, exist_ok=True)
    save_weights(a.out / "paired_translator.pt", net.state_dict())
    params = sum(p.numel() for p in net.parameters())
    # noise floor of the monitor MSE: the Monte Carlo's own binomial variance (what a perfect mean scores)
    floor = float(np.mean(ymo * (1 - ymo)) / sets.ELECTRONS)
    training = {
        "trained_by": "experiments/fastpath_train_translator.py",
        "materials": ["gold", "epoxy"], "voxel_nm": 5.0, "incidence_deg": 38.0,
        "energy_range_kev": [min(sets.TRAIN_ENERGIES), max(sets.TRAIN_ENERGIES)],
        "energies_kev": list(sets.TRAIN_ENERGIES),
        "data": {"structures": [{"seed": s, "solid_fraction": sf, "ligament_nm": lig,
                                 "shape": [sets.SLICES + 64, sets.SIZE, sets.SIZE]}
                                for s, sf, lig in sets.TRAIN + extra_sets],
                 "extra_structures_cached_energies_only": bool(a.cached_only),
                 "generator": "fibsynth.structure.leveled_wave, 5 nm voxels",
                 "monte_carlo": f"fibsynth.pipeline.montecarlo_stack, slices 0-{sets.SLICES - 1}, "
                                f"{sets.ELECTRONS} electrons/pixel, 38 deg, default physics, MC seed = structure seed",
                 "train_structures": [s for s, _, _ in train_sets], "monitor_structures": [s for s, _, _ in monitor_sets],
                 "held_out_test_structures": list(sets.TEST_SEEDS), "extra_pairs": extra},
        "settings": {"epochs_max": a.epochs, "max_seconds": a.max_seconds, "patience": a.patience, "batch": a.batch, "lr": a.lr,
                     "optimizer": "Adam, ReduceLROnPlateau x0.3 after 15", "loss": "MSE vs single MC images" + (
                         f" + {a.mean_weight:g} x squared error of each image's mean" if a.mean_weight else ""),
                     "mean_weight": a.mean_weight, "add_dilation": a.add_dilation, "depth_bins_nm": list(bins),
                     "augmentation": "periodic shifts in y and x, mirror in x", "seed": a.seed, "threads": 1},
        "epochs_run": len(history), "best_epoch": best_epoch, "monitor_mse": best,
        "monitor_mse_noise_floor": floor, "seconds": secs, "parameters": params,
        "continued_from": history0,
    }
    cfg = T.make_config(xtr.shape[1], a.width, dil, training, bins_nm=bins)
    (a.out / "paired_translator.json").write_text(json.dumps(cfg, indent=1))
    (a.out / "history.json").write_text(json.dumps(history))
    print(json.dumps(training, indent=1))
    if a.ship:
        ship(a.out, ("paired_translator.pt", "paired_translator.json"))


if __name__ == "__main__":
    main()
