"""Benchmark of fibsynth.metrics on a 512^3 test structure: time and peak memory of each isotropy step.

Run: .venv/bin/python benchmarks/bench_metrics.py [--n 512] [--sigma 4] [--voxel-nm 5] [--slice-nm 5]
The structure is thresholded Gaussian-filtered white noise (isotropic filter, seed 0); timings include the
numba JIT (first call) unless --warm is given (then a 32^3 warm-up runs first). Peak memory is the process'
maximum resident set size (resource.getrusage), which includes the input volume.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from scipy import ndimage as ndi


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--sigma", type=float, default=4.0)
    p.add_argument("--voxel-nm", type=float, default=5.0)
    p.add_argument("--slice-nm", type=float, default=5.0)
    p.add_argument("--warm", action="store_true", help="compile numba kernels on a tiny volume first")
    args = p.parse_args()

    from fibsynth.metrics import evaluate_segmentation, isotropy_report
    from fibsynth.metrics.isotropy import directional_functions, planar_ligament_diameters

    vs = (args.slice_nm, args.voxel_nm, args.voxel_nm)
    if args.warm:
        isotropy_report(np.random.default_rng(1).random((32, 32, 32)) > 0.5, vs)
    t = time.perf_counter()
    g = ndi.gaussian_filter(np.random.default_rng(0).standard_normal((args.n,) * 3, dtype=np.float32), args.sigma)
    a = (g > 0.2 * g.std()).astype(np.uint8)
    del g
    print(f"structure {a.shape}, solid fraction {a.mean():.3f}: {time.perf_counter() - t:.1f} s, peak RSS {rss_gib():.2f} GiB")
    base = rss_gib()

    t = time.perf_counter()
    d = planar_ligament_diameters(a, vs)
    t_d = time.perf_counter() - t
    print(f"planar ligament diameters (3 x {args.n} slices): {t_d:.1f} s  {d}")
    t = time.perf_counter()
    f = directional_functions(a, vs, max_lag_nm=0.25 * args.n * min(vs))
    t_f = time.perf_counter() - t
    print(f"TPCF + LPF along x, y, z (lags to {0.25 * args.n * min(vs):.0f} nm): {t_f:.1f} s")
    t, c = time.perf_counter(), cpu_s()
    rep = isotropy_report(a, vs)
    t_r = time.perf_counter() - t
    print(f"isotropy_report (all three errors): {t_r:.1f} s wall, {cpu_s() - c:.1f} s CPU, peak RSS {rss_gib():.2f} GiB (before: {base:.2f} GiB)")
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rep.items()})

    t = time.perf_counter()
    noisy = a.copy()
    flip = np.random.default_rng(2).random(a.shape, dtype=np.float32) < 0.01
    noisy[flip] ^= 1
    del flip
    ev = evaluate_segmentation(noisy, a)
    print(f"evaluate_segmentation {a.shape}: {time.perf_counter() - t:.1f} s (incl. making the 1%-flipped copy)")
    print({k: ev[k] for k in ("MP", "MGP", "MDS", "dice_solid", "dice_pore")})
    print(f"peak RSS of the whole run: {rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
