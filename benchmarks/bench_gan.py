"""GAN benchmark: (a) shine-through projection -> Monte Carlo look at 2 keV gold/epoxy, (b) domain adaptation to a
stand-in "real" stack, (c) translation speed of one 512x512 slice.

(a) A leveled-wave structure is simulated with the Monte Carlo engine (``simulate_stack``) and projected with
``fibsynth.fastsim.projection.project``. The CycleGAN is trained *unpaired* on projection slices of one half of
the stack and Monte Carlo slices of the other half, then evaluated on a **held-out structure** (another seed),
projected and simulated the same way: histogram Wasserstein distance and SSIM of the translated projection vs the
Monte Carlo slice, next to the raw projection and the projection with its mean/std matched to the Monte Carlo
training slices (a fair linear baseline).
(b) Source = the Monte Carlo slices; target = a STAND-IN for a real stack (no real nanoporous-gold FIB-SEM data in
this repository): the Monte Carlo images of other slices through a different contrast curve (gamma 0.6), a Gaussian
blur (sigma 1 px) and Gaussian noise, stored as uint8. Histogram distance to held-out target slices, before/after.

    .venv/bin/python benchmarks/bench_gan.py --out /tmp/bench_gan [--ship]
    # the two trainings in parallel on two cores (data made once, then reused from OUT):
    .venv/bin/python benchmarks/bench_gan.py --out D --data-only
    .venv/bin/python benchmarks/bench_gan.py --out D --part a --ship & .venv/bin/python benchmarks/bench_gan.py --out D --part b

Issue 15, translators side by side on the paired held-out test set (3 structures, mean +- sd; Monte Carlo data
cached by experiments/fastpath_sets.py): the paired translator (fibsynth.fastsim.translator, the fast path's
translator) against the shipped CycleGAN at 2 keV, SSIM vs the MC-MC ceiling, histogram distance, noise power:

    nice -n 10 .venv/bin/python benchmarks/bench_gan.py --issue15 [--energies 1,2,4]

Timings on the shared 2-core machine are noisy. ``--ship`` copies the (a) generator into
``src/fibsynth/gan/models/proj2mc-2kev-au-epoxy``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np


def wdist(x, y, lo, hi):
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(0)
    x, y = np.ravel(x).astype(np.float64), np.ravel(y).astype(np.float64)
    x = x[rng.permutation(x.size)[:200_000]]
    y = y[rng.permutation(y.size)[:200_000]]
    return float(wasserstein_distance(x, y) / (hi - lo))  # in units of the reference's 0.1-99.9 % range


def grid_artifacts(stack) -> float:
    """Largest periodic-pattern peak at the periods a 2x-upsampling generator can imprint (2 and 4 pixels): the
    slice-averaged 2-D power spectrum at (ky, kx) in {0, n/4, n/2}^2 (not both 0) over the median of its 8
    neighbouring frequencies. Shot noise or natural images give ~1; checkerboard / grid patterns give >> 1."""
    x = np.asarray(stack, dtype=np.float64)
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    p = (np.abs(np.fft.fft2(x)) ** 2).reshape(-1, *x.shape[-2:]).mean(axis=0)
    ny, nx = p.shape
    worst = 0.0
    for fy in (0, ny // 4, ny // 2):
        for fx in (0, nx // 4, nx // 2):
            if fy == 0 and fx == 0:
                continue
            nb = [p[(fy + dy) % ny, (fx + dx) % nx] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
            worst = max(worst, float(p[fy, fx] / np.median(nb)))
    return worst


def ssim(x, y):
    from skimage.metrics import structural_similarity

    rng = float(np.ptp(y))
    return float(np.mean([structural_similarity(a.astype(np.float64), b.astype(np.float64), data_range=rng)
                          for a, b in zip(x, y)]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench_gan"))
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--slices", type=int, default=40)
    ap.add_argument("--electrons", type=int, default=25)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--test-slices", type=int, default=16, help="slices of the held-out structure")
    ap.add_argument("--part", choices=("a", "b", "all"), default="all")
    ap.add_argument("--data-only", action="store_true")
    ap.add_argument("--reuse-models", action="store_true", help="evaluate the models already in OUT (no training)")
    ap.add_argument("--patience", type=int, default=25, help="early-stopping patience in epochs (paper: 25)")
    ap.add_argument("--ship", action="store_true")
    ap.add_argument("--issue15", action="store_true", help="paired translator vs CycleGAN on the paired test set")
    ap.add_argument("--energies", default="2", help="with --issue15 (the CycleGAN exists at 2 keV only)")
    args = ap.parse_args()
    if args.issue15:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import fastpath_eval

        res = fastpath_eval.evaluate(energies=tuple(float(e) for e in args.energies.split(",")),
                                     translators=("paired", "gan"))
        fastpath_eval.print_table(res)
        fastpath_eval.print_intervals(res)
        return
    import torch

    torch.set_num_threads(args.threads)
    from fibsynth.config import VoxelSize
    from fibsynth.gan import Architecture, TrainSettings
    from fibsynth.io import VolumeMeta, read_volume, write_volume

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {"threads": args.threads, "note": "timings on a shared 2-core machine: noisy"}
    voxel = VoxelSize.from_xy_z(4.0, 4.0)
    n, s = args.slices, args.size
    mc_path, proj_path = out / "mc.npy", out / "proj.npy"
    mct_path, projt_path = out / "mc_test.npy", out / "proj_test.npy"
    nt = args.test_slices
    data_desc = {"structure": f"leveled wave {n + 24}x{s}x{s}, 4 nm voxels, solid fraction 0.3, ligament 30 nm, seed 1",
                 "test_structure": f"leveled wave {nt + 24}x{s}x{s}, same parameters, seed 2 (held out)",
                 "mc": f"{n} + {nt} slices, 2 keV, {args.electrons} electrons/pixel, gold/epoxy, 38 deg incidence"}
    if not (mc_path.exists() and mct_path.exists()):
        from fibsynth.fastsim.projection import project
        from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack
        from fibsynth.structure import leveled_wave

        t0 = time.perf_counter()
        for path, ppath, k, seed in ((mc_path, proj_path, n, 1), (mct_path, projt_path, nt, 2)):
            struct = leveled_wave((k + 24, s, s), voxel_size=4.0, solid_fraction=0.3, ligament_nm=30.0, seed=seed)
            mc = simulate_stack(struct, voxel, StackSettings(energy_kev=2.0, electrons_per_pixel=args.electrons,
                                                             seed=seed), slices=(0, k), progress=True)
            proj, _ = project(struct, voxel.zyx(), 2.0, slices=(0, k))
            write_volume(ppath, proj, VolumeMeta(kind="image", voxel_size_nm=voxel, energy_kev=2.0, seed=seed))
            write_volume(path, mc["eta"].astype(np.float32),
                         VolumeMeta(kind="image", voxel_size_nm=voxel, energy_kev=2.0, seed=seed))
        (out / "data.json").write_text(json.dumps({**data_desc, "mc_seconds": time.perf_counter() - t0}, indent=1))
    mcr_path = out / "mc_test_second_realisation.npy"
    if not mcr_path.exists():
        # the same held-out slices simulated again with other random numbers: the SSIM / W1 a perfect Monte-Carlo-like
        # generator would reach (its shot noise is independent of the reference's)
        from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack
        from fibsynth.structure import leveled_wave

        struct = leveled_wave((nt + 24, s, s), voxel_size=4.0, solid_fraction=0.3, ligament_nm=30.0, seed=2)
        mcr = simulate_stack(struct, voxel, StackSettings(energy_kev=2.0, electrons_per_pixel=args.electrons,
                                                          seed=1002), slices=(0, nt), progress=True)
        write_volume(mcr_path, mcr["eta"].astype(np.float32),
                     VolumeMeta(kind="image", voxel_size_nm=voxel, energy_kev=2.0, seed=1002))
    if args.data_only:
        return
    res["mc_seconds"] = json.loads((out / "data.json").read_text()).get("mc_seconds") if (out / "data.json").exists() else None
    mc = np.asarray(read_volume(mc_path).data)
    proj = np.asarray(read_volume(proj_path).data)
    mct = np.asarray(read_volume(mct_path).data)
    mcr = np.asarray(read_volume(mcr_path).data)
    projt = np.asarray(read_volume(projt_path).data)
    res["data"] = data_desc
    h = n // 2
    tr_src, tr_tgt = slice(0, h), slice(h, n)  # disjoint halves: unpaired
    arch = Architecture(gen_channels=args.channels, gen_depth=3, gen_blocks=1, disc_channels=32)
    st = TrainSettings(epochs=args.epochs, patch=min(128, s), stride=64, seed=0, early_stop_patience=args.patience)
    res["settings"] = {"epochs": args.epochs, "early_stop_patience": args.patience, "channels": args.channels,
                       "train_slices_per_domain": h,
                       "electrons_per_pixel": args.electrons}

    if args.part in ("a", "all"):
        _part_a(args, out, res, proj, mc, projt, mct, mcr, tr_src, tr_tgt, st, arch)
    if args.part in ("b", "all"):
        _part_b(args, out, res, mc, mct, tr_src, tr_tgt, st, arch)
    name = "results.json" if args.part == "all" else f"results_{args.part}.json"
    (out / name).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


def _part_a(args, out, res, proj, mc, projt, mct, mcr, tr_src, tr_tgt, st, arch):
    from fibsynth.gan import Translator, train

    # (a) projection -> Monte Carlo
    ma = out / "model_proj2mc"
    if not args.reuse_models:
        shutil.rmtree(ma, ignore_errors=True)
        t0 = time.perf_counter()
        ra = train([proj[tr_src]], [mc[tr_tgt]], ma, st, arch, progress=True,
                   extra={"description": "shine-through projection (fibsynth fast project, 2 keV, gold/epoxy, group "
                          "normalised) -> Monte Carlo BSE image (fibsynth mc, 2 keV, 38 deg)",
                          "trained_by": "benchmarks/bench_gan.py", "data": res["data"], "settings": res["settings"]})
        res["a_train_seconds"] = time.perf_counter() - t0
        res["a_epochs"] = ra["epochs"]
    tr = Translator(ma, tile=512, overlap=64)
    fake = tr(projt)[0]
    ref = mct
    lo, hi = np.percentile(mc[tr_tgt], (0.1, 99.9))
    lin = (projt - proj[tr_src].mean()) / proj[tr_src].std() * mc[tr_tgt].std() + mc[tr_tgt].mean()
    res["a"] = {
        "raw_projection": {"wasserstein": wdist(projt, ref, lo, hi), "ssim": ssim(projt, ref),
                           "grid_artifacts": grid_artifacts(projt)},
        "projection_mean_std_matched": {"wasserstein": wdist(lin, ref, lo, hi), "ssim": ssim(lin, ref),
                                        "grid_artifacts": grid_artifacts(lin)},
        "translated": {"wasserstein": wdist(fake, ref, lo, hi), "ssim": ssim(fake, ref),
                       "grid_artifacts": grid_artifacts(fake)},
        "mc_second_realisation": {"wasserstein": wdist(mcr, ref, lo, hi), "ssim": ssim(mcr, ref),
                                  "grid_artifacts": grid_artifacts(mcr)},
        "mc_reference_grid_artifacts": grid_artifacts(ref),
        "mc_training_slices_vs_test": {"wasserstein": wdist(mc[tr_tgt], ref, lo, hi)},
        "test": "held-out structure (seed 2), all its slices",
    }
    # tiled vs single pass on the trained model (a 3x3 mosaic of the test slices, 384x384), in units of the
    # single pass's standard deviation; (256, 128) has the default's overlap ratio (512, 128)
    if len(ref) >= 9:
        mosaic = np.block([[projt[i * 3 + j] for j in range(3)] for i in range(3)])
        single = Translator(ma, tile=1024, overlap=0)([mosaic])[0]
        res["a_tiled_vs_single"] = {}
        for tile, ov in ((128, 32), (256, 64), (256, 128)):
            tiled = Translator(ma, tile=tile, overlap=ov)([mosaic])[0]
            d = np.abs(tiled - single)[16:-16, 16:-16] / single.std()
            res["a_tiled_vs_single"][f"tile {tile} overlap {ov}"] = {
                "max": float(d.max()), "p99.9": float(np.percentile(d, 99.9)), "mean": float(d.mean())}
    np.savez_compressed(out / "figure_a.npz", proj=projt[0], fake=fake[0], mc=ref[0])

    # (c) speed: one 512x512 slice, the (a) model
    s = projt.shape[-1]
    big = np.tile(projt[0], (512 // s + 1, 512 // s + 1))[:512, :512]
    tr1 = Translator(ma, tile=512, overlap=64)
    tr1([big])
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        tr1([big])
        times.append(time.perf_counter() - t0)
    res["c_translate_512_seconds"] = {"min": min(times), "median": float(np.median(times)),
                                      "params": sum(p.numel() for p in tr1.gen.parameters())}
    if args.ship:
        dest = Path(__file__).resolve().parents[1] / "src/fibsynth/gan/models/proj2mc-2kev-au-epoxy"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(ma / "generator_ab.pt", dest / "generator_ab.pt")
        cfg = json.loads((ma / "config.json").read_text())
        cfg["training"]["measured"] = {"a": res["a"], "translate_512_seconds": res["c_translate_512_seconds"]}
        (dest / "config.json").write_text(json.dumps(cfg, indent=1))
        print("shipped", dest)


def stand_in_real(mc, lo, hi, seed=5):
    """A STAND-IN for a real stack: Monte Carlo images through gamma 0.6, Gaussian blur (1 px), noise, uint8."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    u = np.clip((mc - lo) / (hi - lo), 0, 1) ** 0.6
    u = ndi.gaussian_filter(u, (0, 1.0, 1.0)) + rng.normal(0, 0.06, u.shape)
    return np.clip(u * 200 + 30, 0, 255).astype(np.uint8)


def _part_b(args, out, res, mc, mct, tr_src, tr_tgt, st, arch):
    from fibsynth.gan import Translator, train

    # (b) domain adaptation: MC -> stand-in "real"; the test pair is the held-out structure's MC and its stand-in
    lo, hi = np.percentile(mc[tr_tgt], (0.1, 99.9))
    real = stand_in_real(mc, lo, hi)
    real_test = stand_in_real(mct, lo, hi, seed=6)
    mb = out / "model_da"
    if not args.reuse_models:
        shutil.rmtree(mb, ignore_errors=True)
        t0 = time.perf_counter()
        rb = train([mc[tr_src]], [real[tr_tgt]], mb, st, arch, progress=True)
        res["b_train_seconds"] = time.perf_counter() - t0
        res["b_epochs"] = rb["epochs"]
    fb = Translator(mb, tile=512, overlap=64)(mct)[0]
    rlo, rhi = np.percentile(real[tr_tgt], (0.1, 99.9))
    # "before": the source as it would be used without adaptation, put on the target's scale linearly (mean/std)
    lin_b = (mct - mc[tr_src].mean()) / mc[tr_src].std() * real[tr_tgt].std() + real[tr_tgt].mean()
    res["b"] = {"before_mean_std_matched": wdist(lin_b, real_test, rlo, rhi),
                "after": wdist(fb, real_test, rlo, rhi),
                "grid_artifacts_source_target_after": [grid_artifacts(mct), grid_artifacts(real_test), grid_artifacts(fb)],
                "ssim_before_mean_std_matched": ssim(lin_b, real_test.astype(np.float64)),
                "ssim_after": ssim(fb, real_test.astype(np.float64)),
                "target_vs_target_other_structure": wdist(real[tr_tgt], real_test, rlo, rhi),
                "units": "Wasserstein distance / (target 99.9th - 0.1st percentile)"}
    np.savez_compressed(out / "figure_b.npz", src=mct[0], fake=fb[0], tgt=real_test[0])


if __name__ == "__main__":
    main()
