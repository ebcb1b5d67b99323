"""Segmentation scores against ground truth (paper Sec. 2.7.1): MP (Eq. 4), MGP (Eq. 5), Dice (Eq. 6), MDS.

Solid (gold, value 1) is the positive class: TP = solid in both, TN = pore in both, FP = predicted solid but
truly pore, FN = predicted pore but truly solid.

* ``MP  = (1 - (TP + TN) / N) * 100``               percent of misclassified voxels
* ``MGP = (1 - TP / (TP + FN)) * 100``              percent of true-solid voxels predicted as pore
* ``dice_solid = 2 TP / (2 TP + FP + FN)``,  ``dice_pore = 2 TN / (2 TN + FN + FP)``
* ``MDS = (dice_solid + dice_pore) / 2``

Degenerate cases (explicit, documented in docs/metrics.md):

* no solid in the truth (TP + FN = 0): MGP is undefined -> ``nan`` (JSON ``null``);
* a phase absent from both prediction and truth: its Dice is 1.0 (two empty sets agree perfectly), so a
  perfect prediction always scores MDS = 1;
* a phase absent from exactly one of them: its Dice is 0.0 (this follows from the formula);
* empty arrays or mismatched shapes raise :class:`FibsynthError`.

Counting works slab by slab along axis 0 (``chunk`` slices at a time), so memory stays bounded and lazily
read arrays (dask, zarr, memory maps) are only materialised one slab at a time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fibsynth.errors import FibsynthError


def _slab(a: Any, z0: int, z1: int, name: str) -> np.ndarray:
    s = a[z0:z1]
    if hasattr(s, "compute"):  # dask
        s = s.compute()
    s = np.asarray(s)
    if s.dtype == np.bool_:
        return s
    if s.size and (s.min() < 0 or s.max() > 1):
        raise FibsynthError(f"{name} must be binary (0 = pore, 1 = solid); found values outside {{0, 1}}")
    if np.issubdtype(s.dtype, np.floating) and s.size and not np.all((s == 0) | (s == 1)):
        raise FibsynthError(f"{name} must be binary (0 = pore, 1 = solid); found non-integer values")
    return s != 0


def confusion_counts(pred: Any, truth: Any, *, chunk: int = 16) -> dict[str, int]:
    """TP, TN, FP, FN (solid = positive) counted slab by slab. Arrays may be numpy, dask or zarr."""
    ps, ts = tuple(pred.shape), tuple(truth.shape)
    if ps != ts:
        raise FibsynthError(f"prediction and truth must have the same shape, got {ps} and {ts}")
    if len(ps) == 0 or math.prod(ps) == 0:
        raise FibsynthError(f"cannot evaluate an empty array (shape {ps})")
    if len(ps) == 1:
        raise FibsynthError(f"expected a 2D or 3D array, got shape {ps}")
    tp = fp = fn = n = 0
    for z0 in range(0, ps[0], chunk):
        z1 = min(ps[0], z0 + chunk)
        p = _slab(pred, z0, z1, "prediction")
        t = _slab(truth, z0, z1, "truth")
        tp += int(np.count_nonzero(p & t))
        fp += int(np.count_nonzero(p & ~t))
        fn += int(np.count_nonzero(~p & t))
        n += p.size
    return {"TP": tp, "TN": n - tp - fp - fn, "FP": fp, "FN": fn}


def _dice(pos_both: int, mismatch: int) -> float:
    den = 2 * pos_both + mismatch
    return 1.0 if den == 0 else 2.0 * pos_both / den


def scores_from_counts(tp: int, tn: int, fp: int, fn: int) -> dict[str, float]:
    n = tp + tn + fp + fn
    if n == 0:
        raise FibsynthError("cannot evaluate an empty array")
    mp = (1.0 - (tp + tn) / n) * 100.0
    mgp = (1.0 - tp / (tp + fn)) * 100.0 if tp + fn > 0 else float("nan")
    ds = _dice(tp, fp + fn)
    dp = _dice(tn, fp + fn)
    return {"MP": mp, "MGP": mgp, "MDS": 0.5 * (ds + dp), "dice_solid": ds, "dice_pore": dp}


def evaluate_segmentation(pred: Any, truth: Any, *, chunk: int = 16) -> dict[str, Any]:
    """MP and MGP (percent), Dice of solid and pore, MDS, plus the confusion counts and the voxel count."""
    c = confusion_counts(pred, truth, chunk=chunk)
    out: dict[str, Any] = scores_from_counts(c["TP"], c["TN"], c["FP"], c["FN"])
    out.update(c)
    out["n_voxels"] = sum(c.values())
    return out
