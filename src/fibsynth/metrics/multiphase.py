"""Scores of a segmentation of three or more phases (labels 0..n-1) against ground truth, and per-phase structure
measures (issue 17, item 2; ``docs/metrics.md``, "Several phases").

From the n x n confusion matrix ``C[t, p]`` (voxels of true phase t predicted as p), counted slab by slab:

* ``MP = (1 - trace(C) / N) * 100``                  percent of misclassified voxels (the binary MP for n = 2)
* ``dice_<i> = 2 C[i, i] / (sum_p C[i, p] + sum_t C[t, i])``   Dice of phase i (1.0 when absent from both)
* ``MDS = mean_i dice_<i>``                           mean Dice over the phases (the binary MDS for n = 2)
* ``MGP_<i> = (1 - C[i, i] / sum_p C[i, p]) * 100``  percent of phase i predicted as another phase (nan if absent)
* ``fraction_pred_<i>``, ``fraction_true_<i>``        volume fraction of phase i in each

Per phase (:func:`phase_structure`): the solid fraction, the isotropy errors and the planar diameters of each
phase taken as the "solid" of a binary volume (:func:`fibsynth.metrics.isotropy_report` on ``labels == i``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from fibsynth.errors import FibsynthError


def _labels(a: Any, z0: int, z1: int, n: int, name: str) -> np.ndarray:
    s = a[z0:z1]
    if hasattr(s, "compute"):
        s = s.compute()
    s = np.asarray(s)
    if s.dtype == np.bool_:
        return s.astype(np.int64)
    if s.size and np.issubdtype(s.dtype, np.floating) and not np.all(s == np.round(s)):
        raise FibsynthError(f"{name} must hold integer labels 0..{n - 1}; found non-integer values")
    if s.size and (s.min() < 0 or s.max() >= n):
        raise FibsynthError(f"{name} must hold labels 0..{n - 1}; found values up to {int(s.max())}"
                            if s.max() >= n else f"{name} must hold labels 0..{n - 1}; found negative values")
    return s.astype(np.int64)


def confusion_matrix(pred: Any, truth: Any, n: int | None = None, *, chunk: int = 16) -> np.ndarray:
    """The (n, n) int64 matrix ``C[true, predicted]`` of two label volumes (numpy, dask or zarr), slab by slab.
    ``n`` (default: 1 + the largest label of either) is the number of phases."""
    ps, ts = tuple(pred.shape), tuple(truth.shape)
    if ps != ts:
        raise FibsynthError(f"prediction and truth must have the same shape, got {ps} and {ts}")
    if len(ps) < 2 or math.prod(ps) == 0:
        raise FibsynthError(f"cannot evaluate an empty or 1-D array (shape {ps})")
    if chunk < 1:
        raise FibsynthError(f"chunk must be >= 1 (got {chunk})", param="chunk")
    if n is None:
        top = 0
        for z0 in range(0, ps[0], chunk):
            for a in (pred, truth):
                s = a[z0:z0 + chunk]
                s = np.asarray(s.compute() if hasattr(s, "compute") else s)
                top = max(top, int(s.max()))
        n = max(top + 1, 2)
    n = int(n)
    if not 2 <= n <= 255:
        raise FibsynthError(f"must be in [2, 255] (got {n})", param="n")
    cm = np.zeros(n * n, np.int64)
    for z0 in range(0, ps[0], chunk):
        z1 = min(ps[0], z0 + chunk)
        t = _labels(truth, z0, z1, n, "truth")
        p = _labels(pred, z0, z1, n, "prediction")
        cm += np.bincount((t * n + p).ravel(), minlength=n * n)
    return cm.reshape(n, n)


def scores_from_confusion(cm: np.ndarray, names: Sequence[str] | None = None) -> dict[str, float]:
    """MP, MDS, and per phase Dice, MGP and the predicted / true fractions from a confusion matrix (see module)."""
    cm = np.asarray(cm, np.int64)
    n = cm.shape[0]
    total = int(cm.sum())
    if total == 0:
        raise FibsynthError("cannot evaluate an empty array")
    rows, cols, diag = cm.sum(1), cm.sum(0), np.diag(cm)
    out: dict[str, float] = {"MP": (1.0 - float(diag.sum()) / total) * 100.0}
    dice = []
    for i in range(n):
        key = str(i) if names is None else str(names[i])
        den = int(rows[i] + cols[i])
        d = 1.0 if den == 0 else 2.0 * float(diag[i]) / den
        dice.append(d)
        out[f"dice_{key}"] = d
        out[f"MGP_{key}"] = (1.0 - float(diag[i]) / rows[i]) * 100.0 if rows[i] else float("nan")
        out[f"fraction_pred_{key}"] = float(cols[i]) / total
        out[f"fraction_true_{key}"] = float(rows[i]) / total
    out["MDS"] = float(np.mean(dice))
    out["n_phases"] = n
    return out


def evaluate_phases(pred: Any, truth: Any, n: int | None = None, *, names: Sequence[str] | None = None,
                    chunk: int = 16) -> dict[str, Any]:
    """Scores of an n-phase segmentation (see the module docstring) plus the confusion matrix (``confusion``,
    rows = truth) and the voxel count. ``names``: key suffix of each phase (default its label)."""
    cm = confusion_matrix(pred, truth, n, chunk=chunk)
    if names is not None and len(names) != cm.shape[0]:
        raise FibsynthError(f"give one name per phase ({cm.shape[0]}, got {len(names)})", param="names")
    out: dict[str, Any] = scores_from_confusion(cm, names)
    out["confusion"] = cm.tolist()
    out["n_voxels"] = int(cm.sum())
    return out


def phase_structure(labels: Any, voxel_size: Any, n: int | None = None, *, isotropy: bool = True,
                    **isotropy_kw: Any) -> dict[str, dict[str, Any]]:
    """Per phase i of a label volume: ``solid_fraction`` (its volume fraction) and, with ``isotropy``, the isotropy
    errors and planar diameters of ``labels == i`` (:func:`fibsynth.metrics.isotropy_report`). A phase absent
    from the volume has only its fraction (0)."""
    from fibsynth.metrics.isotropy import isotropy_report

    a = labels.compute() if hasattr(labels, "compute") else labels
    a = np.asarray(a)
    n = int(a.max()) + 1 if n is None else int(n)
    if a.size and (a.min() < 0 or a.max() >= n):
        raise FibsynthError(f"labels must be in 0..{n - 1}", param="labels")
    counts = np.bincount(a.ravel().astype(np.int64), minlength=n)
    out: dict[str, dict[str, Any]] = {}
    for i in range(n):
        rec: dict[str, Any] = {"solid_fraction": float(counts[i]) / a.size}
        if isotropy and 0 < counts[i] < a.size:
            iso = isotropy_report(a == i, voxel_size, **isotropy_kw)
            rec.update({k: v for k, v in iso.items() if isinstance(v, (int, float)) and k != "solid_fraction"})
        out[str(i)] = rec
    return out


__all__ = ["confusion_matrix", "evaluate_phases", "phase_structure", "scores_from_confusion"]
