"""Tiled inference: window grids, blending weights and the one weighted-accumulation loop.

Both tiled predictors of fibsynth use :func:`blend_2d`: the CycleGAN translator (:mod:`fibsynth.gan.infer`) with
Hann ramps over the overlap (weights of neighbouring tiles sum to 1, weight 1 elsewhere) and the segmentation
predictor (:mod:`fibsynth.segment.infer`) with a Gaussian weight (MONAI's sigma, 0.125 of the window, floored at
1e-3; see :func:`gaussian_weight`).

Why not MONAI's ``SlidingWindowInferer`` itself: it lays windows on the grid of the array it is given and makes the
last window flush with the end. The translator needs tile origins on the generator's ``2**depth`` grid of the
*whole* slice (so each tile sees the downsampling phase of a single pass), and the segmentation predictor needs
the window grid of the *whole stack* in z, whichever z-block it computes (block invariance, tested in
tests/segment). Both keep their own grid and share the weights and the accumulation.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def window_starts(n: int, size: int, step: int) -> list[int]:
    """Start positions of windows of ``size`` at ``step`` covering 0..n (the last flush with the end)."""
    if n <= size:
        return [0]
    starts = list(range(0, n - size + 1, step))
    if starts[-1] != n - size:
        starts.append(n - size)
    return starts


def grid_starts(n: int, tile: int, step: int) -> list[int]:
    """Origins 0, step, 2 step, ... of tiles covering [0, n), ``n`` already padded to ``tile + k * step``."""
    return list(range(0, max(n - tile, 0) + 1, step))


def hann_ramp(tile: int, overlap: int, lead: bool, trail: bool) -> np.ndarray:
    """1-D weight: a raised cosine over the overlap on the sides that meet another tile, 1 elsewhere
    (``r[i] + r[overlap - 1 - i] == 1``: overlapping tiles' weights sum to one)."""
    w = np.ones(tile, np.float64)
    if overlap > 0:
        t = (np.arange(overlap) + 0.5) / overlap
        r = 0.5 - 0.5 * np.cos(np.pi * t)
        if lead:
            w[:overlap] = r
        if trail:
            w[-overlap:] = r[::-1]
    return w


def gaussian_weight(size: Sequence[int], sigma_scale: float = 0.125, floor: float = 1e-3) -> np.ndarray:
    """Separable Gaussian blending weight over a window (sigma = ``sigma_scale`` x size, as MONAI's
    ``compute_importance_map``), scaled to a maximum of 1, then floored so that window edges keep a small
    positive weight.

    Not MONAI's function itself: it floors *before* scaling to 1, which for even windows changes the floored
    weights by up to ~2 % (measured: segmentation probabilities move by up to 1.7e-4); the segmentation models'
    outputs are kept identical instead."""
    w = np.ones((), dtype=np.float64)
    for n in size:
        c = (n - 1) / 2.0
        s = max(sigma_scale * n, 1e-6)
        g = np.exp(-0.5 * ((np.arange(n) - c) / s) ** 2)
        w = np.multiply.outer(w, g)
    w = w / w.max()
    return np.maximum(w, floor).astype(np.float32)


def blend_2d(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, ys: Sequence[int], xs: Sequence[int],
             size: tuple[int, int], weight: Callable[[int, int], np.ndarray], *, batch: int = 1,
             out_lead: tuple[int, ...] | None = None) -> np.ndarray:
    """Weighted average of ``fn`` over the windows ``(y, x)`` (``ys`` x ``xs``) of the last two axes of ``x``.

    ``x``: (..., H, W); ``fn`` maps a stack of windows (n, ..., h, w) to outputs (n, *out_lead, h, w) (``out_lead``
    defaults to ``x``'s leading axes); ``weight(y, x)``: the (h, w) weight of the window at (y, x). ``batch``
    windows go through ``fn`` at a time. Returns (*out_lead, H, W)."""
    h, w = size
    H, W = x.shape[-2:]
    lead = tuple(x.shape[:-2] if out_lead is None else out_lead)
    acc = np.zeros(lead + (H, W), np.float32)
    wsum = np.zeros((H, W), np.float32)
    jobs = [(y, xx) for y in ys for xx in xs]
    for i in range(0, len(jobs), batch):
        chunk = jobs[i:i + batch]
        outs = fn(np.stack([x[..., y:y + h, xx:xx + w] for y, xx in chunk]))
        for (y, xx), o in zip(chunk, outs):
            wt = weight(y, xx)
            acc[..., y:y + h, xx:xx + w] += o * wt
            wsum[y:y + h, xx:xx + w] += wt
    return acc / wsum
