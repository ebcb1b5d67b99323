"""GAN benchmark: (a) shine-through projection -> Monte Carlo look at 2 keV gold/epoxy, (b) domain adaptation to a
stand-in "real" stack, (c) translation speed of one 512x512 slice.

(a) A leveled-wave structure is simulated with the Monte Carlo engine (``simulate_stack``) and projected with
``fibsynth.fastsim.projection.project``. The CycleGAN is trained *unpaired* on projection slices of one part of
the stack and Monte Carlo slices of another, then evaluated on held-out slices: histogram Wasserstein distance and
SSIM of the translated projection vs the Monte Carlo slice, next to the raw projection and the projection with its
mean/std matched to the Monte Carlo training slices (a fair linear baseline).
(b) Source = the Monte Carlo slices; target = a STAND-IN for a real stack (no real nanoporous-gold FIB-SEM data in
this repository): the Monte Carlo images of other slices through a different contrast curve (gamma 0.6), a Gaussian
blur (sigma 1 px) and Gaussian noise, stored as uint8. Histogram distance to held-out target slices, before/after.

    .venv/bin/python benchmarks/bench_gan.py --out /tmp/bench_gan [--ship]

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
    ap.add_argument("--ship", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    from scipy import ndimage as ndi

    from fibsynth.config import VoxelSize
    from fibsynth.gan import Architecture, TrainSettings, Translator, train
    from fibsynth.io import VolumeMeta, read_volume, write_volume

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {"threads": args.threads, "note": "timings on a shared 2-core machine: noisy"}
    voxel = VoxelSize.from_xy_z(4.0, 4.0)
    n, s = args.slices, args.size
    mc_path, proj_path = out / "mc.npy", out / "proj.npy"
    if not mc_path.exists():
        from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack
        from fibsynth.structure import leveled_wave

        struct = leveled_wave((n + 24, s, s), voxel_size=4.0, solid_fraction=0.3, ligament_nm=30.0, seed=1)
        t0 = time.perf_counter()
        mc = simulate_stack(struct, voxel, StackSettings(energy_kev=2.0, electrons_per_pixel=args.electrons, seed=1),
                            slices=(0, n), progress=False)["eta"].astype(np.float32)
        res["mc_seconds"] = time.perf_counter() - t0
        from fibsynth.fastsim.projection import project

        proj, _ = project(struct, voxel.zyx(), 2.0, slices=(0, n))
        write_volume(mc_path, mc, VolumeMeta(kind="image", voxel_size_nm=voxel, energy_kev=2.0))
        write_volume(proj_path, proj, VolumeMeta(kind="image", voxel_size_nm=voxel, energy_kev=2.0))
    mc = np.asarray(read_volume(mc_path).data)
    proj = np.asarray(read_volume(proj_path).data)
    res["data"] = {"structure": f"leveled wave {n + 24}x{s}x{s}, 4 nm voxels, solid fraction 0.3, ligament 30 nm",
                   "mc": f"{n} slices, 2 keV, {args.electrons} electrons/pixel, gold/epoxy, 38 deg incidence"}
    q = n // 10
    tr_src, tr_tgt, test = slice(0, 4 * q), slice(4 * q, 8 * q), slice(8 * q, n)  # disjoint: unpaired
    arch = Architecture(gen_channels=args.channels, gen_depth=3, gen_blocks=1, disc_channels=32)
    st = TrainSettings(epochs=args.epochs, patch=min(128, s), stride=64, seed=0)

    # (a) projection -> Monte Carlo
    ma = out / "model_proj2mc"
    shutil.rmtree(ma, ignore_errors=True)
    t0 = time.perf_counter()
    ra = train([proj[tr_src]], [mc[tr_tgt]], ma, st, arch, progress=False,
               extra={"description": "shine-through projection (fibsynth fast project, 2 keV, gold/epoxy, group "
                      "normalised) -> Monte Carlo BSE image (fibsynth mc, 2 keV, 38 deg)",
                      "trained_by": "benchmarks/bench_gan.py", "data": res["data"]})
    res["a_train_seconds"] = time.perf_counter() - t0
    res["a_epochs"] = ra["epochs"]
    tr = Translator(ma, tile=512, overlap=64)
    fake = tr(proj[test])[0]
    ref = mc[test]
    lo, hi = np.percentile(mc[tr_tgt], (0.1, 99.9))
    lin = (proj[test] - proj[tr_src].mean()) / proj[tr_src].std() * mc[tr_tgt].std() + mc[tr_tgt].mean()
    res["a"] = {
        "raw_projection": {"wasserstein": wdist(proj[test], ref, lo, hi), "ssim": ssim(proj[test], ref)},
        "projection_mean_std_matched": {"wasserstein": wdist(lin, ref, lo, hi), "ssim": ssim(lin, ref)},
        "translated": {"wasserstein": wdist(fake, ref, lo, hi), "ssim": ssim(fake, ref)},
        "test_slices": [test.start, test.stop],
    }
    # tiled vs single pass on the trained model (a 3x3 mosaic of the test slices, 384x384)
    mosaic = np.block([[proj[test][i * 3 + j] for j in range(3)] for i in range(3)]) if len(ref) >= 9 else None
    if mosaic is not None:
        single = Translator(ma, tile=512, overlap=0)([mosaic])[0]
        tiled = Translator(ma, tile=128, overlap=32)([mosaic])[0]
        d = np.abs(tiled - single)[16:-16, 16:-16]
        res["a_tiled_vs_single"] = {"max": float(d.max()), "mean": float(d.mean()), "single_std": float(single.std())}
    np.savez_compressed(out / "figure_a.npz", proj=proj[test][0], fake=fake[0], mc=ref[0])

    # (b) domain adaptation: MC -> stand-in "real" (gamma 0.6, blur, noise, uint8)
    rng = np.random.default_rng(5)
    u = np.clip((mc - lo) / (hi - lo), 0, 1) ** 0.6
    u = ndi.gaussian_filter(u, (0, 1.0, 1.0)) + rng.normal(0, 0.06, u.shape)
    real = np.clip(u * 200 + 30, 0, 255).astype(np.uint8)
    mb = out / "model_da"
    shutil.rmtree(mb, ignore_errors=True)
    t0 = time.perf_counter()
    rb = train([mc[tr_src]], [real[tr_tgt]], mb, st, arch, progress=False)
    res["b_train_seconds"] = time.perf_counter() - t0
    res["b_epochs"] = rb["epochs"]
    fb = Translator(mb, tile=512, overlap=64)(mc[test])[0]
    rlo, rhi = np.percentile(real[tr_tgt], (0.1, 99.9))
    # "before": the source as it would be used without adaptation, put on the target's scale linearly (mean/std)
    lin_b = (mc[test] - mc[tr_src].mean()) / mc[tr_src].std() * real[tr_tgt].std() + real[tr_tgt].mean()
    res["b"] = {"before_mean_std_matched": wdist(lin_b, real[test], rlo, rhi),
                "after": wdist(fb, real[test], rlo, rhi),
                "target_vs_target_other_slices": wdist(real[tr_tgt], real[test], rlo, rhi),
                "units": "Wasserstein distance / (target 99.9th - 0.1st percentile)"}
    np.savez_compressed(out / "figure_b.npz", src=mc[test][0], fake=fb[0], tgt=real[test][0])

    # (c) speed: one 512x512 slice, the (a) model
    big = np.tile(proj[test][0], (512 // s + 1, 512 // s + 1))[:512, :512]
    tr1 = Translator(ma, tile=512, overlap=64)
    tr1([big])
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        tr1([big])
        times.append(time.perf_counter() - t0)
    res["c_translate_512_seconds"] = {"min": min(times), "median": float(np.median(times)),
                                      "params": sum(p.numel() for p in tr1.gen.parameters())}
    (out / "results.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    if args.ship:
        dest = Path(__file__).resolve().parents[1] / "src/fibsynth/gan/models/proj2mc-2kev-au-epoxy"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(ma / "generator_ab.pt", dest / "generator_ab.pt")
        cfg = json.loads((ma / "config.json").read_text())
        cfg["training"]["measured"] = {"a": res["a"], "translate_512_seconds": res["c_translate_512_seconds"]}
        (dest / "config.json").write_text(json.dumps(cfg, indent=1))
        print("shipped", dest)


if __name__ == "__main__":
    main()
