"""Speed of 2.5D inference with the default model (U-Net 16-32-64-128, 1 residual unit per level, k = 2).

Times ``predict_array`` (z-blocks of 32 slices, whole 512x512 slices as one window, 4 slices per forward
pass) on a random float32 stack of SIZE^3 voxels. The network's weights are random: the cost does not
depend on them. Prints a JSON line. CPU only here (torch threads = the cores given).

    .venv/bin/python benchmarks/bench_segment.py --size 512          # the real 512^3 stack
    .venv/bin/python benchmarks/bench_segment.py --size 512 --slices 32  # 32 slices, extrapolated (stated)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--slices", type=int, default=None, help="time only this many slices and extrapolate")
    ap.add_argument("--mode", default="2.5d")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import torch

    from fibsynth.segment.infer import predict_array
    from fibsynth.segment.model import ModelConfig, build_net

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ModelConfig(mode=args.mode, k=2, norm=[(0.0, 1.0)])
    net = build_net(cfg).eval()
    n = args.size
    nz = args.slices or n
    img = np.random.default_rng(0).random((nz, n, n), dtype=np.float32)
    predict_array((net, cfg), img[: min(nz, 4)], batch=args.batch)  # warm-up (allocator, oneDNN kernels)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    lab = predict_array((net, cfg), img, batch=args.batch)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    per_slice = wall / nz
    rec = {
        "mode": args.mode, "model": {"features": list(cfg.features), "res_units": cfg.num_res_units, "k": cfg.k},
        "stack": [nz, n, n], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "s_per_slice": round(per_slice, 4),
        "voxels_per_s": round(nz * n * n / wall), "extrapolated_512_cubed_s": round(per_slice * 512 * (512 / n) ** 2, 1)
        if nz != 512 or n != 512 else None,
        "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "loadavg_before": os.getloadavg(),
        "max_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "machine": platform.processor() or platform.machine(), "solid_fraction": float(lab.mean()),
    }
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
