"""Benchmark of fibsynth.structure (prints timings; not a test).

    .venv/bin/python benchmarks/bench_structure.py              # 512^3 in memory + 512^3 chunked to Zarr
    .venv/bin/python benchmarks/bench_structure.py --isotropy   # e_TPCF vs number of waves on 128^3
    .venv/bin/python benchmarks/bench_structure.py --big 2048   # 2048^3 chunk by chunk to Zarr (larger than memory)

Timings are wall-clock on whatever machine runs this; on the shared 2-core development machine they
are noisy (other jobs run at the same time).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def bench_speed(n: int, waves: int) -> None:
    from fibsynth.structure import LeveledWave, leveled_wave, lwm_config, write_structure

    leveled_wave((16, 16, 16), 1.0, 0.3, 4.0, waves=16)  # JIT (cached on disk after the first run)
    t = time.perf_counter()
    s, m = leveled_wave((n, n, n), 5.0, 0.3, 50.0, waves=waves, seed=0, return_model=True)
    dt = time.perf_counter() - t
    print(
        f"single-level {n}^3, N = {waves} waves, in memory: {dt:.2f} s "
        f"(solid fraction {s.mean():.4f}, quantile stride {m.level['quantile_stride']}, cores {os.cpu_count()})"
    )
    del s
    tmp = Path(tempfile.mkdtemp())
    try:
        t = time.perf_counter()
        write_structure(tmp / "s.zarr", LeveledWave(lwm_config((n, n, n), 5.0, 0.3, 50.0, waves=waves, seed=0)), progress=False)
        print(f"single-level {n}^3 chunked to OME-Zarr (64x256x256 chunks, incl. compression + writing): "
              f"{time.perf_counter() - t:.2f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from fibsynth.structure import hierarchical

    t = time.perf_counter()
    h = hierarchical((n, n, n), 5.0, 110.0, 15.0, 0.5, 0.4, waves=waves, seed=0)
    print(f"hierarchical {n}^3 (two levels) in memory: {time.perf_counter() - t:.2f} s (solid fraction {h.mean():.4f})")
    print(f"peak RSS {_rss_gib():.2f} GiB")


def bench_isotropy(size: int = 128, seeds: int = 4) -> None:
    """e_TPCF (fibsynth.metrics, paper Eq. 7) vs N; plus the same random directions without the x
    quantisation (brute-force cosine sum) to show that the quantisation does not add anisotropy."""
    from fibsynth.metrics.isotropy import isotropy_report
    from fibsynth.structure import LeveledWave, lwm_config

    for lig in (6.0, 10.0):
        for waves in (100, 200, 500, 1000, 2000):
            e = []
            for seed in range(seeds):
                m = LeveledWave(lwm_config((size,) * 3, 1.0, 0.3, lig, waves=waves, seed=seed))
                e.append(isotropy_report(m.solid(), (1.0, 1.0, 1.0))["e_tpcf"])
            print(f"{size}^3, ligament {lig:.0f} vox, N = {waves:>4}: e_TPCF mean {np.mean(e):.4f}, max {np.max(e):.4f} ({seeds} seeds)", flush=True)
    # quantised vs exact directions, same seeds, N = 300 (brute force cost ~ N * size^3 cosines)
    waves = 300
    eq, ex = [], []
    for seed in range(seeds):
        m = LeveledWave(lwm_config((size,) * 3, 1.0, 0.3, 6.0, waves=waves, seed=seed))
        rng = np.random.default_rng(seed)
        v = rng.standard_normal((waves, 3))
        v /= np.linalg.norm(v, axis=1)[:, None]
        ph = rng.uniform(0, 2 * math.pi, waves)
        c = (np.arange(size) + 0.5)
        f = np.zeros((size,) * 3, np.float32)
        for k in range(waves):
            q = v[k] * m.q0
            f += np.cos(q[0] * c[:, None, None] + q[1] * c[None, :, None] + q[2] * c[None, None, :] + ph[k]).astype(np.float32)
        exact = (f > np.quantile(f, 0.7)).astype(np.uint8)
        eq.append(isotropy_report(m.solid(), (1.0, 1.0, 1.0))["e_tpcf"])
        ex.append(isotropy_report(exact, (1.0, 1.0, 1.0))["e_tpcf"])
    print(f"N = {waves}, ligament 6 vox: e_TPCF x-quantised {np.mean(eq):.4f} vs exact directions {np.mean(ex):.4f}")


def bench_big(n: int, out: Path | None) -> None:
    from fibsynth.structure import LeveledWave, lwm_config, write_structure

    tmp = Path(tempfile.mkdtemp(dir=out))
    try:
        m = LeveledWave(lwm_config((n, n, n), 5.0, 0.3, 50.0, seed=0))
        t = time.perf_counter()
        write_structure(tmp / "big.zarr", m)
        dt = time.perf_counter() - t
        size = sum(f.stat().st_size for f in (tmp / "big.zarr").rglob("*") if f.is_file())
        print(f"{n}^3 = {n**3 / 2**30:.1f} Gi voxels chunked to Zarr: {dt:.0f} s, {size / 2**30:.2f} GiB on disk, "
              f"peak RSS {_rss_gib():.2f} GiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--waves", type=int, default=1000)
    ap.add_argument("--isotropy", action="store_true")
    ap.add_argument("--big", type=int, default=0, help="edge of a chunked-only volume (e.g. 2048)")
    ap.add_argument("--big-dir", type=Path, default=None)
    a = ap.parse_args()
    if a.isotropy:
        bench_isotropy()
    elif a.big:
        bench_big(a.big, a.big_dir)
    else:
        bench_speed(a.size, a.waves)


if __name__ == "__main__":
    main()
