"""The paper's baselines: a global Otsu threshold and k-means (k = 2) on gray values, the brighter cluster
being gold. Both work on a histogram of the whole stack (4096 bins between its min and max, accumulated
slab by slab, so Zarr stacks larger than memory are fine); the threshold is exact up to half a bin."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fibsynth.errors import FibsynthError

NBINS = 4096
METHODS = ("otsu", "kmeans")


def _slabs(data, step: int = 16):
    for z in range(0, data.shape[0], step):
        part = data[z:z + step]
        if hasattr(part, "compute"):
            part = part.compute()
        yield z, np.asarray(part)


def histogram(data, nbins: int = NBINS) -> tuple[np.ndarray, np.ndarray]:
    """(counts, bin centres) of all gray values of a (z, y, x) stack (NumPy or dask)."""
    lo, hi = np.inf, -np.inf
    for _, s in _slabs(data):
        lo, hi = min(lo, float(s.min())), max(hi, float(s.max()))
    if not hi > lo:
        raise FibsynthError(f"the image is constant ({lo}): nothing to threshold")
    edges = np.linspace(lo, hi, nbins + 1)
    counts = np.zeros(nbins, np.int64)
    for _, s in _slabs(data):
        counts += np.histogram(s, bins=edges)[0]
    return counts, 0.5 * (edges[:-1] + edges[1:])


def otsu_threshold(data, nbins: int = NBINS) -> float:
    from skimage.filters import threshold_otsu

    counts, centres = histogram(data, nbins)
    # skimage puts the chosen bin in the dark class and returns its centre: use the bin's upper edge so that
    # ``value > threshold`` reproduces exactly the class split Otsu optimised
    half = 0.5 * float(centres[1] - centres[0])
    return float(threshold_otsu(hist=(counts, centres))) + half


def kmeans_threshold(data, nbins: int = NBINS, max_iter: int = 1000) -> tuple[float, tuple[float, float]]:
    """Lloyd's k-means with k = 2 on the gray values (weighted histogram): returns the decision threshold
    (midpoint of the two centres) and the centres. Initialised at the 25th and 75th percentiles."""
    counts, x = histogram(data, nbins)
    w = counts.astype(np.float64)
    cdf = np.cumsum(w) / w.sum()
    c = np.array([x[np.searchsorted(cdf, 0.25)], x[np.searchsorted(cdf, 0.75)]], np.float64)
    if c[0] == c[1]:
        c = np.array([x[0], x[-1]])
    for _ in range(max_iter):
        t = 0.5 * (c[0] + c[1])
        hi = x > t
        if w[hi].sum() == 0 or w[~hi].sum() == 0:
            break
        new = np.array([np.average(x[~hi], weights=w[~hi]), np.average(x[hi], weights=w[hi])])
        if np.allclose(new, c, rtol=0, atol=1e-12 * max(1.0, abs(x[-1]))):
            c = new
            break
        c = new
    return float(0.5 * (c[0] + c[1])), (float(c[0]), float(c[1]))


def multiotsu_thresholds(data, classes: int, nbins: int = 256) -> np.ndarray:
    """The ``classes - 1`` thresholds of multi-Otsu (skimage ``threshold_multiotsu``, maximum between-class
    variance) on the stack's histogram (``nbins`` bins: the exhaustive search grows as nbins^(classes-1)).
    ``np.digitize(values, thresholds)`` gives the gray class 0..classes-1 (darkest first)."""
    from skimage.filters import threshold_multiotsu

    if not 2 <= int(classes) <= 5:
        raise FibsynthError(f"multi-Otsu needs 2 to 5 classes (got {classes})", param="classes")
    counts, centres = histogram(data, nbins)
    half = 0.5 * float(centres[1] - centres[0])
    return np.asarray(threshold_multiotsu(hist=(counts, centres), classes=int(classes)), np.float64) + half


def multiotsu_segment(images, classes: int, order=None, nbins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(labels uint8, thresholds): multi-Otsu gray classes of ``images``, class k (k-th darkest) given label
    ``order[k]`` (default k). ``order``: the labels from darkest to brightest, e.g. known from training data or
    from the materials' backscatter coefficients."""
    t = multiotsu_thresholds(images, classes, nbins)
    lut = np.arange(classes) if order is None else np.asarray(order, np.int64)
    if sorted(lut.tolist()) != list(range(classes)):
        raise FibsynthError(f"must be a permutation of 0..{classes - 1} (got {list(lut)})", param="order")
    return lut[np.digitize(np.asarray(images), t)].astype(np.uint8), t


def segment_multiotsu(inp: str | Path, out: str | Path, classes: int = 3, order=None) -> dict:
    """Multi-Otsu labels (0..classes-1; the k-th darkest gray class labelled ``order[k]``) of a stack, written with
    the input's voxel size (in memory)."""
    from fibsynth.io import VolumeMeta, read_volume, write_volume
    from fibsynth.io.metadata import Generator

    vol = read_volume(inp)
    lab, t = multiotsu_segment(vol.data, classes, order)
    info = {"method": "multiotsu", "classes": int(classes), "thresholds": t.tolist(),
            "order": list(range(classes)) if order is None else [int(o) for o in order]}
    meta = VolumeMeta(kind="label", voxel_size_nm=vol.meta.voxel_size_nm, generator=Generator.BASELINE,
                      parameters={**info, "input": str(inp), "nbins": 256}, energy_kev=vol.meta.energy_kev)
    write_volume(out, lab, meta)
    info["fractions"] = (np.bincount(lab.ravel(), minlength=classes) / lab.size).tolist()
    return info


def segment_baseline(inp: str | Path, out: str | Path, method: str = "otsu") -> dict:
    """Threshold a stack with ``otsu`` or ``kmeans``; writes uint8 labels (1 = gray value above the
    threshold = solid) with the input's voxel size. Zarr output is written slab by slab."""
    from fibsynth.io import VolumeMeta, atomic_path, create_zarr, read_volume, volume_format, write_volume
    from fibsynth.io.metadata import Generator

    if method not in METHODS:
        raise FibsynthError(f"must be one of {', '.join(METHODS)} (got {method!r})", param="method")
    vol = read_volume(inp, lazy=True)
    data = vol.data
    info: dict = {"method": method}
    if method == "otsu":
        t = otsu_threshold(data)
    else:
        t, centres = kmeans_threshold(data)
        info["centres"] = list(centres)
    info["threshold"] = t
    meta = VolumeMeta(kind="label", voxel_size_nm=vol.meta.voxel_size_nm, generator=Generator.BASELINE,
                      parameters={**info, "input": str(inp), "nbins": NBINS}, energy_kev=vol.meta.energy_kev)
    if volume_format(out) == "zarr":
        with atomic_path(out) as tmp:
            arr = create_zarr(tmp, tuple(data.shape), np.uint8, meta)
            n = 0
            for z, s in _slabs(data):
                lab = (s > t).astype(np.uint8)
                arr[z:z + lab.shape[0]] = lab
                n += int(lab.sum())
    else:
        lab = np.concatenate([(s > t).astype(np.uint8) for _, s in _slabs(data)])
        n = int(lab.sum())
        write_volume(out, lab, meta)
    info["solid_fraction"] = n / float(np.prod(data.shape))
    return info
