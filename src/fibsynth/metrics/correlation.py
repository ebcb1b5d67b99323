"""Directional two-point correlation S2(r) and lineal path function L(r) of the solid phase, along one axis.

Discretisation (documented in docs/metrics.md). Voxels are points at their centres; along an axis with voxel
size h the lag r = k h (k = 0, 1, ...), and statistics are averaged over every line parallel to the axis,
using only pairs / segments that lie inside the volume (non-periodic; no padding bias):

* ``S2(k h) = #{(line, i): a[i] = a[i + k] = 1} / (n_lines (N - k))`` -- computed with a zero-padded FFT
  autocorrelation of every line (padding to >= 2N removes the circular wrap-around), summed over lines.
  ``S2(0) = phi`` (solid fraction), ``S2 -> phi^2`` for uncorrelated points.
* ``L(k h) = #{(line, i): a[i] = ... = a[i + k] = 1} / (n_lines (N - k))`` -- the probability that the
  segment of length k h between two voxel centres (covering k + 1 voxels) lies wholly in the solid
  (Torquato's lineal path function). ``L(0) = phi``, L is non-increasing, L <= S2. It follows from the
  chord (run) lengths along the axis: a run of l solid voxels contains ``max(0, l - k)`` such segments.
  Runs cut by the volume border are counted as they are inside the volume, which is exactly what the
  in-volume normalisation ``N - k`` requires.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import scipy.fft

from fibsynth.errors import FibsynthError

AXIS_NAMES = {0: "z", 1: "y", 2: "x"}


def _check3d(volume: np.ndarray) -> np.ndarray:
    a = np.asarray(volume)
    if a.ndim != 3:
        raise FibsynthError(f"expected a 3D (z, y, x) volume, got shape {a.shape}")
    return a


def _max_lag(n: int, max_lag: int | None) -> int:
    k = n // 2 if max_lag is None else int(max_lag)
    if k < 0:
        raise FibsynthError(f"max_lag must be >= 0, got {max_lag}")
    return min(k, n - 1)


def _h(voxel_size: Sequence[float] | float | None, axis: int) -> float:
    from fibsynth.config import VoxelSize

    return 1.0 if voxel_size is None else VoxelSize.coerce(voxel_size, param="voxel_size").zyx()[axis]


def tpcf_counts(volume: np.ndarray, axis: int, max_lag: int, *, block_bytes: int = 1 << 27) -> np.ndarray:
    """Number of solid-solid pairs at lags 0..max_lag along ``axis`` (float64; the float32 FFT result is rounded to integers per block)."""
    a = _check3d(volume)
    n = a.shape[axis]
    nfft = scipy.fft.next_fast_len(2 * n, real=True)
    bax = 0 if axis != 0 else 1  # block over this axis, FFT along `axis` in place (no strided gathers)
    per_index = nfft * 8 * (a.size // (n * a.shape[bax]))  # bytes of one block index in the spectrum
    b = max(1, block_bytes // max(1, per_index))
    acc = np.zeros(max_lag + 1)
    for i0 in range(0, a.shape[bax], b):
        sl = [slice(None)] * 3
        sl[bax] = slice(i0, i0 + b)
        blk = np.asarray(a[tuple(sl)], dtype=np.float32)
        f = scipy.fft.rfft(blk, n=nfft, axis=axis, workers=-1)
        del blk
        p = np.abs(f) ** 2
        del f
        p = np.moveaxis(p, axis, -1).reshape(-1, p.shape[axis]).sum(axis=0, dtype=np.float64)
        acc += np.rint(scipy.fft.irfft(p, n=nfft)[: max_lag + 1])  # counts are integers (float32 FFT)
    return acc


def directional_tpcf(
    volume: np.ndarray,
    voxel_size: Sequence[float] | float | None = None,
    axis: int = 2,
    max_lag: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-point correlation S2 of the solid along ``axis`` (0 = z, 1 = y, 2 = x).

    Returns ``(lags_nm, s2)`` for lags 0..max_lag voxels (default N // 2); voxel_size = (z, y, x) nm.
    """
    a = _check3d(volume)
    n = a.shape[axis]
    k = _max_lag(n, max_lag)
    counts = tpcf_counts(a != 0 if a.dtype != np.bool_ else a, axis, k)
    n_lines = a.size // n
    pairs = n_lines * (n - np.arange(k + 1))
    s2 = np.clip(counts / pairs, 0.0, 1.0)
    return np.arange(k + 1) * _h(voxel_size, axis), s2


@numba.njit(cache=True, parallel=True)
def _run_hist(a3, nmax):
    """Histogram of runs of nonzero values along axis 1 of a (K, L, M) array; parallel over K and M blocks."""
    K, L, M = a3.shape
    mb = 64
    nmb = (M + mb - 1) // mb
    nb = K * nmb
    hists = np.zeros((nb, nmax + 1), np.int64)
    for b in numba.prange(nb):
        k = b // nmb
        m0 = (b % nmb) * mb
        m1 = min(M, m0 + mb)
        run = np.zeros(m1 - m0, np.int64)
        h = hists[b]
        for i in range(L):
            for m in range(m0, m1):
                if a3[k, i, m]:
                    run[m - m0] += 1
                elif run[m - m0] > 0:
                    h[run[m - m0]] += 1
                    run[m - m0] = 0
        for m in range(m1 - m0):
            if run[m] > 0:
                h[run[m]] += 1
    return hists.sum(axis=0)


def chord_length_histogram(volume: np.ndarray, axis: int) -> np.ndarray:
    """``h[l]`` = number of maximal runs of exactly l solid voxels along ``axis`` (runs cut by the border
    count with their in-volume length)."""
    a = _check3d(volume)
    a = np.ascontiguousarray(a != 0) if a.dtype != np.bool_ else np.ascontiguousarray(a)
    nz, ny, nx = a.shape
    if axis == 0:
        a3 = a.reshape(1, nz, ny * nx)  # runs along the middle axis, blocks over the flattened (y, x) plane
    elif axis == 1:
        a3 = a
    elif axis == 2:
        a3 = np.ascontiguousarray(a.transpose(0, 2, 1))  # (z, x, y): runs along x in the middle axis
    else:
        raise FibsynthError(f"axis must be 0 (z), 1 (y) or 2 (x), got {axis}")
    return _run_hist(a3, a.shape[axis])


def lineal_path_from_chords(hist: np.ndarray, n: int, n_lines: int, max_lag: int) -> np.ndarray:
    """L(k) for k = 0..max_lag from a run-length histogram: sum_l h[l] max(0, l - k) / (n_lines (n - k))."""
    lengths = np.arange(hist.size, dtype=np.float64)
    h = hist.astype(np.float64)
    # S0[k] = sum_{l > k} h[l], S1[k] = sum_{l > k} l h[l]  ->  windows(k) = S1[k] - k S0[k]
    c0 = np.cumsum(h[::-1])[::-1]
    c1 = np.cumsum((h * lengths)[::-1])[::-1]
    ks = np.arange(max_lag + 1)
    s0 = np.append(c0, 0.0)[ks + 1]
    s1 = np.append(c1, 0.0)[ks + 1]
    windows = s1 - ks * s0
    return windows / (n_lines * (n - ks))


def directional_lineal_path(
    volume: np.ndarray,
    voxel_size: Sequence[float] | float | None = None,
    axis: int = 2,
    max_lag: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Lineal path function L of the solid along ``axis`` (0 = z, 1 = y, 2 = x): ``(lags_nm, L)``."""
    a = _check3d(volume)
    n = a.shape[axis]
    k = _max_lag(n, max_lag)
    hist = chord_length_histogram(a, axis)
    return np.arange(k + 1) * _h(voxel_size, axis), lineal_path_from_chords(hist, n, a.size // n, k)
