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
read arrays (dask, zarr, memory maps) are only materialised one slab at a time. With ``scheduler`` (a dask
scheduler address or Client) or ``workers`` (a local cluster of that many processes) the counting is one
dask.distributed task per chunk of the (Zarr / dask) prediction: each worker reads its block of both arrays
from the store, counts it, and only the four counts come back to be summed (integer sums: exactly the counts of
the single-process path).
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
    return _as_bool(np.asarray(s), name)


def _as_bool(s: np.ndarray, name: str) -> np.ndarray:
    if s.dtype == np.bool_:
        return s
    if s.size and (s.min() < 0 or s.max() > 1):
        raise FibsynthError(f"{name} must be binary (0 = pore, 1 = solid); found values outside {{0, 1}}")
    if np.issubdtype(s.dtype, np.floating) and s.size and not np.all((s == 0) | (s == 1)):
        raise FibsynthError(f"{name} must be binary (0 = pore, 1 = solid); found non-integer values")
    return s != 0


def _check_shapes(ps: tuple[int, ...], ts: tuple[int, ...]) -> None:
    if ps != ts:
        raise FibsynthError(f"prediction and truth must have the same shape, got {ps} and {ts}")
    if len(ps) == 0 or math.prod(ps) == 0:
        raise FibsynthError(f"cannot evaluate an empty array (shape {ps})")
    if len(ps) == 1:
        raise FibsynthError(f"expected a 2D or 3D array, got shape {ps}")


def _count(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """[TP, FP, FN, N] of two boolean blocks."""
    tp = np.count_nonzero(p & t)
    fp = np.count_nonzero(p & ~t)
    fn = np.count_nonzero(~p & t)
    return np.array([tp, fp, fn, p.size], dtype=np.int64)


def _count_block(p: Any, t: Any) -> np.ndarray:
    """Runs on a dask worker: the counts of one block (validated as binary there)."""
    return _count(_as_bool(np.asarray(p), "prediction"), _as_bool(np.asarray(t), "truth"))


def _sum_counts(parts: list) -> np.ndarray:
    return np.sum(np.stack(parts), axis=0, dtype=np.int64)


def _as_dask(a: Any, name: str):
    """A dask array over ``a`` without loading it: dask arrays as they are, Zarr arrays wrapped; in-memory
    arrays are refused (they would have to travel through the scheduler)."""
    import dask.array as da

    if isinstance(a, da.Array):
        return a
    try:
        import zarr

        if isinstance(a, zarr.Array):
            return da.from_zarr(a)
    except ImportError:  # pragma: no cover - zarr is a dependency
        pass
    raise FibsynthError(
        f"counting on dask workers needs the {name} as a Zarr or dask array (read lazily from a .zarr store), "
        f"got {type(a).__name__}"
    )


def _counts_distributed(pred: Any, truth: Any, scheduler: Any, workers: int | None) -> np.ndarray:
    import dask

    from fibsynth.distributed import dask_client

    p, t = _as_dask(pred, "prediction"), _as_dask(truth, "truth")
    if p.chunks != t.chunks:
        t = t.rechunk(p.chunks)  # blocks of both arrays must line up; same-chunked stores need no transfer
    parts = [dask.delayed(_count_block, pure=True)(pb, tb)
             for pb, tb in zip(p.to_delayed().ravel(), t.to_delayed().ravel())]
    total = dask.delayed(_sum_counts, pure=True)(parts)
    with dask_client(scheduler, workers) as client:
        return np.asarray(client.compute(total).result())


def confusion_counts(pred: Any, truth: Any, *, chunk: int = 16, scheduler: Any = None,
                     workers: int | None = None) -> dict[str, int]:
    """TP, TN, FP, FN (solid = positive) counted slab by slab. Arrays may be numpy, dask or zarr.

    ``scheduler`` (address or Client) / ``workers`` (local processes) count one block per dask task on
    dask.distributed workers (:mod:`fibsynth.distributed`); then both arrays must be Zarr or dask arrays, and
    blocks follow the prediction's chunks (``chunk`` is not used).
    """
    from fibsynth.distributed import check_options, wants_cluster

    _check_shapes(tuple(pred.shape), tuple(truth.shape))
    check_options(scheduler, workers)
    if wants_cluster(scheduler, workers):
        tp, fp, fn, n = (int(v) for v in _counts_distributed(pred, truth, scheduler, workers))
        return {"TP": tp, "TN": n - tp - fp - fn, "FP": fp, "FN": fn}
    ps = tuple(pred.shape)
    if chunk < 1:
        raise FibsynthError(f"chunk must be >= 1 (got {chunk})")
    acc = np.zeros(4, dtype=np.int64)
    for z0 in range(0, ps[0], chunk):
        z1 = min(ps[0], z0 + chunk)
        acc += _count(_slab(pred, z0, z1, "prediction"), _slab(truth, z0, z1, "truth"))
    tp, fp, fn, n = (int(v) for v in acc)
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


def evaluate_segmentation(pred: Any, truth: Any, *, chunk: int = 16, scheduler: Any = None,
                          workers: int | None = None) -> dict[str, Any]:
    """MP and MGP (percent), Dice of solid and pore, MDS, plus the confusion counts and the voxel count.

    ``scheduler`` / ``workers``: count on dask.distributed workers (see :func:`confusion_counts`)."""
    c = confusion_counts(pred, truth, chunk=chunk, scheduler=scheduler, workers=workers)
    out: dict[str, Any] = scores_from_counts(c["TP"], c["TN"], c["FP"], c["FN"])
    out.update(c)
    out["n_voxels"] = sum(c.values())
    return out
