"""Paired projection / Monte Carlo data and the fidelity measures of issue 15 (benchmarks, training, tests).

Data: leveled-wave structures (5 nm voxels) imaged by the Monte Carlo (``fibsynth.pipeline.montecarlo_stack``,
beam at 38 degrees, binomial shot noise at ``electrons_per_pixel``) on their first slices, with enough structure
behind the imaged faces; cached as ``.npz`` under a directory so that the Monte Carlo runs once.

Measures (all over the pixels of a stack of slices; ``docs/fastsim.md`` section 5):

* :func:`pearson` -- pixel correlation (invariant to affine gray scaling);
* :func:`ssim` -- mean per-slice SSIM (``skimage``, data range = the reference's peak-to-peak, as bench_gan);
* :func:`hist_distance` -- Wasserstein distance of the gray-value histograms in units of the reference's 0.1-99.9 %
  range (as bench_gan);
* :func:`hist_distance_bands` -- the same distance split by quantile of the gray-value distribution (tails vs body)
  and signed (too bright vs too dark);
* :func:`radial_nps` -- radially averaged power spectrum of the noise (difference of two realisations of the same
  slices / sqrt 2, so the structure cancels), in bands of spatial frequency;
* :func:`binomial_noise_level` -- the white noise level that binomial images imply through their histogram alone.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

VOXEL_NM = 5.0
INCIDENCE_DEG = 38.0
#: structure depth behind the last imaged slice (slices): 320 nm, beyond it the Monte Carlo's epoxy backing
BEHIND = 64


def make_structure(seed: int, size: int = 64, slices: int = 4, solid_fraction: float = 0.3,
                   ligament_nm: float = 40.0, behind: int = BEHIND) -> np.ndarray:
    from fibsynth.structure import leveled_wave

    return leveled_wave((slices + behind, size, size), voxel_size=VOXEL_NM, solid_fraction=solid_fraction,
                        ligament_nm=ligament_nm, seed=seed)


def structure_key(structure: np.ndarray) -> str:
    """The short content hash that names a structure's cached Monte Carlo images."""
    return hashlib.sha1(np.ascontiguousarray(structure).tobytes()).hexdigest()[:12]


def cached_images(cache: Path | None, name: str, simulate: Callable[[], dict], *, run: bool = True) -> dict:
    """Monte Carlo images ``{"eta", "std", "seconds"}`` from ``cache / name`` (``.npz``) when it is there, else
    ``simulate()``, stored there (written to a temporary name, then renamed). ``run=False``: FileNotFoundError
    instead of simulating; ``cache`` None: nothing is read or stored."""
    f = Path(cache) / name if cache is not None else None
    if f is not None and f.is_file():
        z = np.load(f)
        return {"eta": z["eta"], "std": z["std"], "seconds": float(z["seconds"])}
    if not run:
        raise FileNotFoundError(f"not cached: {f if f is not None else name}")
    out = simulate()
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(name + ".tmp.npz")
        np.savez_compressed(tmp, **out)
        tmp.replace(f)
    return out


def mc_images(structure: np.ndarray, energy_kev: float, *, slices: int, electrons_per_pixel: int, seed: int,
              cache: Path | None = None, tag: str = "", run: bool = True) -> dict:
    """Monte Carlo images (``eta``) and binomial standard errors (``std``) of slices 0..slices-1, cached under
    ``cache`` by a key of the structure's content and the settings (:func:`cached_images`)."""
    def simulate() -> dict:
        from fibsynth.pipeline import montecarlo_stack

        t0 = time.perf_counter()
        p = montecarlo_stack(structure, VOXEL_NM, slices=(0, slices), energy_kev=float(energy_kev),
                             electrons_per_pixel=int(electrons_per_pixel), seed=int(seed), incidence_deg=INCIDENCE_DEG)
        return {"eta": np.asarray(p.data, np.float32), "std": np.asarray(p.record["std"], np.float32),
                "seconds": time.perf_counter() - t0}

    name = f"mc_{tag}{structure_key(structure)}_E{energy_kev:g}_n{slices}_e{electrons_per_pixel}_s{seed}.npz"
    return cached_images(cache, name, simulate, run=run)


# ------------------------------------------------------------------------------------------------ measures

def pearson(a, b) -> float:
    return float(np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1])


def ssim(x, ref) -> float:
    """Mean SSIM per slice; data range = peak-to-peak of the reference stack (as ``benchmarks/bench_gan.py``)."""
    from skimage.metrics import structural_similarity

    rng = float(np.ptp(ref))
    return float(np.mean([structural_similarity(np.asarray(a, np.float64), np.asarray(b, np.float64), data_range=rng)
                          for a, b in zip(x, ref)]))


def hist_distance(x, ref) -> float:
    """Wasserstein distance of the gray-value distributions / the reference's 0.1-99.9 % range."""
    from scipy.stats import wasserstein_distance

    lo, hi = np.percentile(ref, (0.1, 99.9))
    return float(wasserstein_distance(np.ravel(x).astype(np.float64), np.ravel(ref).astype(np.float64)) / (hi - lo))


#: quantile bands of :func:`hist_distance_bands`: the two 1 % tails, the next 9 % on each side, the two halves
HIST_QUANTILE_BANDS = (0.0, 0.01, 0.1, 0.5, 0.9, 0.99, 1.0)


def hist_distance_bands(x, ref, quantiles=HIST_QUANTILE_BANDS) -> dict:
    """:func:`hist_distance` split by quantile: for two images with the same number of pixels the Wasserstein
    distance is the mean of |sorted(x) - sorted(ref)| over the ranks, so it splits exactly into the contributions
    of rank bands (``quantiles``: increasing fractions from 0 to 1; default the 1 % tails, 1-10 %, 10-50 % ... ).
    Returns ``abs`` (each band's share of the distance; they sum to ``hist_distance(x, ref)``) and ``signed`` (the
    same without the absolute value: > 0 where x's quantiles are brighter), both in units of the reference's
    0.1-99.9 % range, and the ``quantiles``. Tells whether a histogram gap sits in the tails (clipping, outliers) or
    in the body, and whether it is a shift (all bands one sign) or a width/shape error."""
    from fibsynth.errors import FibsynthError

    a = np.sort(np.ravel(x).astype(np.float64))
    b = np.sort(np.ravel(ref).astype(np.float64))
    if a.size != b.size or a.size == 0:
        raise FibsynthError(f"needs the same (non-zero) number of pixels as ref (got {a.size} and {b.size})", param="x")
    q = np.asarray(quantiles, np.float64)
    if q.ndim != 1 or len(q) < 2 or q[0] != 0.0 or q[-1] != 1.0 or np.any(np.diff(q) <= 0):
        raise FibsynthError("must increase from 0 to 1", param="quantiles")
    lo, hi = np.percentile(b, (0.1, 99.9))
    d = (a - b) / (hi - lo) / a.size
    cut = np.rint(q * a.size).astype(np.int64)
    return {"quantiles": q.tolist(), "abs": [float(np.abs(d[i:j]).sum()) for i, j in zip(cut[:-1], cut[1:])],
            "signed": [float(d[i:j].sum()) for i, j in zip(cut[:-1], cut[1:])]}


def radial_power(stack, bands: int = 4) -> np.ndarray:
    """Radially averaged 2-D power spectrum of each slice (mean removed), averaged over slices, in ``bands`` equal
    bands of |f| from 0 to Nyquist (cycles/pixel 0..0.5; the zero frequency excluded)."""
    x = np.asarray(stack, np.float64)
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    p = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0) / (x.shape[-1] * x.shape[-2])
    fy = np.fft.fftfreq(x.shape[-2])[:, None]
    fx = np.fft.fftfreq(x.shape[-1])[None, :]
    f = np.hypot(fy, fx)
    edges = np.linspace(0, 0.5, bands + 1)
    out = np.empty(bands)
    for b in range(bands):
        m = (f > edges[b]) & (f <= edges[b + 1]) if b else (f > 0) & (f <= edges[1])
        out[b] = p[m].mean()
    return out


def radial_nps(a, b, bands: int = 4) -> np.ndarray:
    """Noise power spectrum from two realisations of the same slices: the power of (a - b) / sqrt 2 (the
    structure cancels, the independent noise adds)."""
    return radial_power((np.asarray(a, np.float64) - np.asarray(b, np.float64)) / np.sqrt(2.0), bands)


def binomial_noise_level(images, electrons_per_pixel: int) -> float:
    """The pixel noise variance that binomial images imply through their gray-value distribution alone.

    For pixels x = Binomial(N, m) / N (N = ``electrons_per_pixel``, any mean m per pixel),
    E[x] - E[x^2] = E[m (1 - m)] (N - 1) / N, so (mean x - mean x^2) / (N - 1) estimates E[m (1 - m)] / N: the
    variance of the shot noise averaged over the pixels, i.e. the level of the white noise power spectrum
    (:func:`radial_nps`) in every band. ``images``: one array or a list of arrays (pooled).

    Consequence (issue 15): two images with binomial noise at the same dose whose gray-value histograms agree have
    the same noise power; a histogram calibration that matches the Monte Carlo's histogram cannot cost noise power
    unless the Monte Carlo's noise is not binomial (measured: it is, :func:`noise_variance_by_level`)."""
    from fibsynth.errors import FibsynthError

    n = int(electrons_per_pixel)
    if n < 2:
        raise FibsynthError(f"must be >= 2 (got {n})", param="electrons_per_pixel")
    parts = images if isinstance(images, (list, tuple)) else [images]
    x = np.concatenate([np.ravel(a) for a in parts]).astype(np.float64)
    if x.size == 0:
        raise FibsynthError("no pixels", param="images")
    return float((x.mean() - np.mean(x * x)) / (n - 1))


def noise_variance_by_level(level, r0, r1, electrons_per_pixel: int, bins: int = 8) -> dict:
    """Is the noise of two realisations ``r0``, ``r1`` (fractions k / N of N = ``electrons_per_pixel`` primaries) of
    the same slices binomial at every gray level?  Pixels are grouped by ``level`` (an estimate of the mean made
    without their noise, e.g. a translator's mean image) into ``bins`` quantile bins; per bin the measured noise
    variance E[(r1 - r0)^2] / 2 is compared with the unbiased binomial estimate from the realisations themselves,
    E[r (1 - r)] / (N - 1) (= p (1 - p) / N for Binomial(N, p) / N, whatever p is). Returns the bins' edges, both
    variances, their ratio (1 for binomial noise) and its standard error."""
    from fibsynth.errors import FibsynthError

    n = int(electrons_per_pixel)
    if n < 2:
        raise FibsynthError(f"must be >= 2 (got {n})", param="electrons_per_pixel")
    lv = np.ravel(level).astype(np.float64)
    a = np.ravel(r0).astype(np.float64)
    b = np.ravel(r1).astype(np.float64)
    if not lv.size == a.size == b.size:
        raise FibsynthError(f"level and realisations differ in size ({lv.size}, {a.size}, {b.size})", param="level")
    if lv.size < 2 * bins:
        raise FibsynthError(f"{lv.size} pixels are too few for {bins} bins", param="bins")
    d = (b - a) ** 2 / 2
    v = (a * (1 - a) + b * (1 - b)) / 2 / (n - 1)
    edges = np.quantile(lv, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, lv, side="right") - 1, 0, bins - 1)
    out = {"edges": edges.tolist(), "measured": [], "binomial": [], "ratio": [], "ratio_se": [], "pixels": []}
    for k in range(bins):
        sel = idx == k
        dm, vm = float(d[sel].mean()), float(v[sel].mean())
        out["measured"].append(dm)
        out["binomial"].append(vm)
        out["ratio"].append(dm / vm if vm > 0 else float("nan"))
        out["ratio_se"].append(float(d[sel].std(ddof=1) / np.sqrt(sel.sum()) / vm) if vm > 0 else float("nan"))
        out["pixels"].append(int(sel.sum()))
    return out


def mean_sd(values) -> dict:
    v = np.asarray(list(values), np.float64)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan"), "n": int(v.size),
            "values": [float(x) for x in v]}


def t_interval(values, level: float = 0.95) -> dict:
    """Mean, sd, n, standard error and the two-sided Student-t confidence interval (``lo``, ``hi``) of the mean of
    ``values`` (e.g. per-structure differences translator - Monte Carlo: a paired comparison). n < 2: no interval
    (nan)."""
    from scipy.stats import t as student_t

    v = np.asarray(list(values), np.float64)
    n = int(v.size)
    mean = float(v.mean()) if n else float("nan")
    sd = float(v.std(ddof=1)) if n > 1 else float("nan")
    se = sd / np.sqrt(n) if n > 1 else float("nan")
    half = float(student_t.ppf(0.5 + level / 2, n - 1) * se) if n > 1 else float("nan")
    return {"mean": mean, "sd": sd, "n": n, "se": float(se), "level": level, "lo": mean - half, "hi": mean + half}


def verdict(ci: dict, lo: float = -np.inf, hi: float = np.inf) -> str:
    """``met`` if the whole interval ``ci`` (from :func:`t_interval`) lies in [lo, hi], ``not met`` if it lies
    wholly outside, ``unresolved`` if it straddles a bound."""
    if lo <= ci["lo"] and ci["hi"] <= hi:
        return "met"
    if ci["hi"] < lo or ci["lo"] > hi:
        return "not met"
    return "unresolved"


def fmt(ms: dict, digits: int = 3) -> str:
    return f"{ms['mean']:.{digits}f} +- {ms['sd']:.{digits}f}"


def dumps(obj) -> str:
    return json.dumps(obj, indent=1, default=float)
