"""Step 4: adapt the synthetic images to the real stack with a small CycleGAN trained on this stack, on a CPU budget.

Issue 14 measured that a small CycleGAN (3 epochs x 128 patches, 16 generator channels) lifted a U-Net from MDS
0.46 to 0.85 on a realistic stack, while ``gan train``'s defaults (32/64 channels, 100 epochs over every patch)
take hours on a 2-core CPU. :func:`plan` chooses patch size, widths, epochs and patches per epoch from the stack
sizes and the time budget; :func:`histogram_distance` measures how far the gray-value distributions are apart.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """No Lightning banners, tips or deprecation warnings in the user's terminal."""
    names = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning",
             "lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
    old = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, lv in old.items():
            logging.getLogger(n).setLevel(lv)


def plan(real_shape, synth_shape, *, budget_min: float = 20.0, epochs: int | None = None,
         patches: int | None = None, channels: int | None = None) -> dict[str, Any]:
    """CycleGAN settings for this stack: patch = 128 px where both stacks allow it (else the largest multiple of
    8 that fits, >= 32); generator width 16 and discriminator 32 (issue 14's small model); 3 epochs; patches per
    epoch = the number of distinct real patches, between 32 and 128, scaled down when the budget is short
    (the adaptation gets a quarter of ``budget_min``; the cost model assumes 2 s per 128-px patch on one thread:
    measured 4.8 s per 96-px patch, i.e. ~8.5 s per 128-px patch, on the shared 2-core machine at load 18, and an
    unloaded core is several times faster -- an assumption, not a measurement, for the unloaded case)."""
    side = min(real_shape[1], real_shape[2], synth_shape[1], synth_shape[2])
    patch = 128 if side >= 128 else max(32, (side // 8) * 8)
    per_real = real_shape[0] * max(1, real_shape[1] // patch) * max(1, real_shape[2] // patch)
    n = int(np.clip(per_real, 32, 128))
    ep = 3
    cost = 2.0 * (patch / 128) ** 2  # seconds per patch (see docstring)
    affordable = int(0.25 * budget_min * 60 / max(cost * ep, 1e-3))
    n = max(8, min(n, affordable))
    return {"patch": patch, "stride": max(8, patch // 2), "gen_channels": channels or 16, "disc_channels": 32,
            "epochs": epochs or ep, "patches_per_epoch": patches or n}


def train_adaptation(sources: list[np.ndarray], real: np.ndarray, out_dir: Path, p: dict[str, Any], seed: int,
                     max_real_slices: int = 64, device: str = "cpu") -> dict[str, Any]:
    """Train the synthetic -> real CycleGAN (``fibsynth.gan.train``) on the synthetic stacks (concatenated along z)
    and up to ``max_real_slices`` evenly spaced real slices, on the torch ``device`` (``auto``, ``cpu``, ``cuda``,
    ``cuda:N``)."""
    from fibsynth.ml.runtime import lightning_device

    from fibsynth.gan.model import Architecture
    from fibsynth.gan.train import TrainSettings, train

    src = np.concatenate([s.astype(np.float32) for s in sources], axis=0)
    idx = np.unique(np.linspace(0, real.shape[0] - 1, min(max_real_slices, real.shape[0])).astype(int))
    tgt = np.ascontiguousarray(real[idx], np.float32)
    arch = Architecture(gen_channels=p["gen_channels"], disc_channels=p["disc_channels"], gen_depth=3)
    st = TrainSettings(epochs=p["epochs"], patch=p["patch"], stride=p["stride"], max_patches=p["patches_per_epoch"],
                       seed=int(seed % 2**32), samples=0, early_stop_patience=max(p["epochs"], 1),
                       lr=2e-4)
    with quiet_lightning():
        ld = lightning_device(device)
        res = train([src], [tgt], out_dir, st, arch, progress=False, accelerator=ld["accelerator"],
                    devices=ld["devices"] if ld["accelerator"] == "gpu" else 1)
    return {"epochs": res.get("epochs"), "seconds": res.get("seconds"),
            "final_losses": (res.get("history") or [{}])[-1]}


def translate(model_dir: Path, stack: np.ndarray, seed: int, device: str = "cpu") -> np.ndarray:
    from fibsynth.gan import Translator
    from fibsynth.ml.runtime import resolved_device

    tr = Translator(str(model_dir), device=resolved_device(device), seed=int(seed % 2**32))
    return np.asarray(tr(stack.astype(np.float32), dtype="float32")[0], np.float32)


def _unit(a: np.ndarray, max_values: int = 2_000_000, seed: int = 0) -> np.ndarray:
    """The gray values of ``a`` (at most ``max_values`` of them, chosen at random) scaled to their 0.5-99.5 % range.
    Only the chosen voxels are read and converted: the real stack (memory-mapped) is never copied whole (a float64
    copy of a 256 x 1024 x 1024 stack is 2 GB); the same voxels as choosing from the values themselves."""
    flat = np.asarray(a).ravel()  # a view of a contiguous (memory-mapped) stack
    if flat.size > max_values:
        flat = flat[np.random.default_rng(seed).choice(flat.size, max_values, replace=False)]
    v = np.asarray(flat, np.float64)
    lo, hi = np.percentile(v, [0.5, 99.5])
    return np.clip((v - lo) / max(hi - lo, 1e-12), 0, 1)


def histogram_distance(a: np.ndarray, b: np.ndarray, bins: int = 64) -> dict[str, float]:
    """Distances between the gray-value distributions of two stacks, each scaled to its own 0.5-99.5 %
    range (as the paper's Fig. 5): Wasserstein-1 (in units of that range) and total variation of 64-bin histograms
    (0 = same, 1 = disjoint)."""
    from scipy.stats import wasserstein_distance

    ua, ub = _unit(a), _unit(b)
    ha = np.histogram(ua, bins=bins, range=(0, 1))[0].astype(np.float64)
    hb = np.histogram(ub, bins=bins, range=(0, 1))[0].astype(np.float64)
    tv = 0.5 * np.abs(ha / ha.sum() - hb / hb.sum()).sum()
    return {"wasserstein": float(wasserstein_distance(ua, ub)), "total_variation": float(tv)}


HIST_LEVELS = 1024  # quantiles of the real stack kept by the histogram adaptation


def fit_histogram(real: np.ndarray, levels: int = HIST_LEVELS, max_values: int = 4_000_000, seed: int = 0) -> np.ndarray:
    """The histogram adaptation's whole "model": ``levels`` evenly spaced quantiles of the real stack's gray values
    (from a random subset of at most ``max_values`` voxels for large stacks)."""
    v = np.asarray(real).ravel()  # a view of a memory-mapped stack: only the chosen voxels are read
    if v.size > max_values:  # the same voxels as choosing from the values themselves
        v = v[np.random.default_rng(seed).choice(v.size, max_values, replace=False)]
    return np.quantile(np.asarray(v, np.float64), (np.arange(levels) + 0.5) / levels).astype(np.float64)


def match_histogram(stack: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Monotone gray-value map of a whole synthetic stack onto the real stack's distribution (quantile matching):
    each voxel's rank in its stack is replaced by the real stack's gray value at that rank. Ties (quantised images)
    keep one value. Ranks, hence the structure's boundaries, are unchanged; only the gray-value curve changes
    (detector response, contrast, brightness)."""
    x = np.asarray(stack, np.float32)
    vals, inv, counts = np.unique(x.ravel(), return_inverse=True, return_counts=True)
    mid_rank = (np.cumsum(counts) - 0.5 * counts) / x.size  # mid-rank of each distinct value, in (0, 1)
    q = np.asarray(quantiles, np.float64)
    levels = (np.arange(q.size) + 0.5) / q.size
    return np.interp(mid_rank, levels, q).astype(np.float32)[inv].reshape(x.shape)


def match_linear(stack: np.ndarray, quantiles: np.ndarray, percentiles=(1.0, 99.0)) -> np.ndarray:
    """The minimal adaptation: the synthetic stack's 1-99 % gray range mapped linearly onto the real stack's
    (same quantile "model" as :func:`match_histogram`); the gray-value curve's shape stays the synthetic one."""
    x = np.asarray(stack, np.float32)
    q = np.asarray(quantiles, np.float64)
    levels = (np.arange(q.size) + 0.5) / q.size
    lo_r, hi_r = np.interp(np.asarray(percentiles) / 100.0, levels, q)
    lo_s, hi_s = np.percentile(x, percentiles)
    return (lo_r + (x - lo_s) * (hi_r - lo_r) / max(hi_s - lo_s, 1e-12)).astype(np.float32)


def adapt_set(gen_dir: Path, model_dir: Path, out_dir: Path, names: list[str], method: str, real: np.ndarray,
              seed: int, device: str = "cpu") -> dict[str, dict[str, float]]:
    """Adapt the generated stacks ``names`` (``<name>_img.npy`` / ``_lbl.npy`` in ``gen_dir``) to the real stack with
    ``method`` (``cyclegan``: the model in ``model_dir/model``; ``histogram`` / ``linear``: ``model_dir/quantiles.npy``)
    and write them to ``out_dir``; returns the mean histogram distances to ``real`` of the training stacks before and
    after."""
    before, after = [], []
    for nm in names:
        src = np.load(gen_dir / f"{nm}_img.npy")
        if method == "cyclegan":
            ad = translate(model_dir / "model", src, seed, device)
        else:
            match = match_histogram if method == "histogram" else match_linear
            ad = match(src, np.load(model_dir / "quantiles.npy"))
        np.save(out_dir / f"{nm}_img.npy", np.ascontiguousarray(ad))
        np.save(out_dir / f"{nm}_lbl.npy", np.ascontiguousarray(np.load(gen_dir / f"{nm}_lbl.npy")))
        if nm.startswith("train"):
            before.append(histogram_distance(src, real))
            after.append(histogram_distance(ad, real))
    keys = ("wasserstein", "total_variation")
    return {"before": {k: float(np.mean([r[k] for r in before])) for k in keys},
            "after": {k: float(np.mean([r[k] for r in after])) for k in keys}}
