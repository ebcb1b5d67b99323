"""Paired translator of the fast path: structure + projection -> the Monte Carlo's mean image, then shot noise.

The projection and the Monte Carlo image of the same slice are paired data, so the translator is trained by plain
regression (no adversary, no invented texture):

1. **Features** (:func:`features`), per slice k, all computed from the binary structure in milliseconds:
   channel 0 the shine-through projection (group-normalised, :func:`fibsynth.fastsim.projection.project`);
   channels 1..B the solid fraction of the slices behind the face in depth bins (:data:`DEPTH_BINS_NM`, nm along
   the face normal), each slice sheared along y with the tilted beam (the ray of pixel y is at
   y + d tan(a) / dy at depth d); last channel the beam energy, (E - 2.5 keV) / 1.5 keV.
2. **Mean yield**: a small fully convolutional residual CNN (:class:`YieldNet`; dilated 3x3 convolutions,
   circular padding like the periodic Monte Carlo and projection, ~30 k parameters) maps the features to the
   expected backscatter yield p(y, x) (fraction of primaries backscattered, the Monte Carlo's units). Trained with
   the mean squared error against single noisy Monte Carlo images: the minimiser of the expected squared error is
   the Monte Carlo's *mean* image, so the network learns the mean, not the noise.
3. **Shot noise** from the physics instead of a network: with N electrons per pixel the Monte Carlo's pixel is
   Binomial(N, p) / N (each primary backscatters or not, independently), so the output is drawn from exactly that
   distribution with a seeded NumPy generator (``electrons_per_pixel=0``: the noiseless mean image).

4. **Histogram calibration** (:func:`fit_histogram_offsets`, :func:`apply_histogram_offsets`): a regression to the
   mean is, by construction, a little narrower than the true mean in the tails (it predicts E[p | features]); the
   gray-value histogram of ``Binomial(N, m) / N`` then differs from the Monte Carlo's by more than a second Monte
   Carlo run does. A monotone per-energy map m -> m + offset(m) (piecewise linear in the yield, fitted on the
   training pairs so that the *expected* count histogram of the noisy output matches the Monte Carlo's) corrects
   the mean image's gray-value distribution without adding noise or moving any pixel past another
   (``calibrated=False``: the plain regression).

5. **Level correction** (optional, a ``level_correction`` block in the JSON; :func:`fit_level_correction`,
   :func:`level_correction_shift`, ``experiments/fastpath_fit_level.py``): each structure's mean level is the
   regression's largest remaining error (issue 15, fast12); a per-energy linear term in the depth bins' gold
   fractions [and the face's interface density], fitted on structures the network was not trained on and blurred
   by a wide periodic Gaussian, is added to the calibrated mean image -- a prediction from the structure alone, no
   Monte Carlo at inference.

One model for the energy range it was trained on (:data:`ENERGY_RANGE_KEV` is the range the shipped weights were
trained and checked on; ``docs/fastsim.md`` lists the measured fidelity). CPU, deterministic per seed: inference
runs on one torch thread in float32 and the noise generator is ``numpy.random.default_rng(seed)``.

Shipped weights: ``data/paired_translator.pt`` (a ``state_dict``) + ``data/paired_translator.json`` (architecture,
feature definition, training data, seeds, measured fidelity); trained by ``experiments/fastpath_train_translator.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.fastsim.projection import DEPTH_BINS_NM, sheared_depth_fractions  # noqa: F401  (re-exported)

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_WEIGHTS = DATA / "paired_translator.pt"
DEFAULT_CONFIG = DATA / "paired_translator.json"
FORMAT = "fibsynth-paired-translator-1"
E_CENTRE, E_SCALE = 2.5, 1.5
#: yield knots (fraction backscattered) of the histogram calibration's piecewise-linear offset
HIST_KNOTS = tuple(round(0.05 * i, 2) for i in range(17))


def features(structure: np.ndarray, voxel_zyx, energy_kev: float, *, incidence_deg: float = 38.0,
             solid: str = "gold", pore: str = "epoxy", projection: np.ndarray | None = None,
             slices: tuple[int, int] | None = None, bins_nm=DEPTH_BINS_NM,
             solid_depth: float | None = None) -> np.ndarray:
    """(nz', C, ny, nx) float32 inputs of the network for slices k0..k1-1 (default all); ``solid_depth``: that of
    the projection channel (default :data:`fibsynth.fastsim.projection.THIN_SOLID_DEPTH`). ``projection`` may
    have several channels, (nz', P, ny, nx) (the SE translator's :func:`se_projection_channels`): they come
    first, then the depth bins and the energy."""
    vol = np.asarray(structure)
    nz = vol.shape[0]
    k0, k1 = slices if slices is not None else (0, nz)
    if projection is None:
        from fibsynth.fastsim.projection import THIN_SOLID_DEPTH, project

        projection, _ = project(vol, voxel_zyx, energy_kev, incidence_deg=incidence_deg, solid=solid, pore=pore,
                                slices=(k0, k1), solid_depth=THIN_SOLID_DEPTH if solid_depth is None else solid_depth)
    dz = float(voxel_zyx[0])
    reach = int(math.ceil(bins_nm[-1] / dz)) + 1
    depth = sheared_depth_fractions(vol[k0:min(nz, k1 + reach)], voxel_zyx, incidence_deg, bins_nm)[:, : k1 - k0]
    e = np.full((1,) + depth.shape[1:], (float(energy_kev) - E_CENTRE) / E_SCALE, np.float32)
    p = np.asarray(projection, np.float32)
    p = p[None] if p.ndim == 3 else p.transpose(1, 0, 2, 3)  # (nz', C, ny, nx): several projection channels
    x = np.concatenate([p, depth, e], axis=0)
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3))


def _torch_net(in_channels: int, width: int, dilations: tuple[int, ...]):
    import torch
    from torch import nn

    class YieldNet(nn.Module):
        """Residual stack of dilated 3x3 convolutions with circular padding; output = the mean yield."""

        def __init__(self):
            super().__init__()
            self.inp = nn.Conv2d(in_channels, width, 3, padding=1, padding_mode="circular")
            self.body = nn.ModuleList(nn.Conv2d(width, width, 3, padding=d, dilation=d, padding_mode="circular")
                                      for d in dilations)
            self.out = nn.Conv2d(width, 1, 1)

        def forward(self, x):
            h = torch.nn.functional.silu(self.inp(x))
            for conv in self.body:
                h = h + torch.nn.functional.silu(conv(h))
            return self.out(h)[:, 0]

    return YieldNet()


class PairedTranslator:
    """The trained paired translator: ``mean(features)`` -> expected yield, ``sample(mean, N, seed)`` -> noisy
    image, ``__call__(structure, voxel, energy)`` both."""

    def __init__(self, weights: str | Path | None = None, config: str | Path | None = None):
        from fibsynth.ml.checkpoint import load_into, load_weights

        wpath = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        cpath = Path(config) if config is not None else (wpath.with_suffix(".json"))
        if not cpath.is_file():
            raise FibsynthError("no configuration (.json) beside the weights", cpath, param="weights")
        try:
            cfg = json.loads(cpath.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise FibsynthError(f"not valid JSON ({str(exc).splitlines()[0]})", cpath, param="weights") from None
        if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
            raise FibsynthError(f"not a paired translator configuration (format {FORMAT!r})", cpath, param="weights")
        arch = cfg["architecture"]
        self.config = cfg
        #: the detector the translator was trained for: ``bse`` (no ``signal`` block: the gold/epoxy translator) or
        #: an SE detector (``signal``: the SE projection's settings and the noise law, :func:`se_projection_channels`)
        self.signal = cfg.get("signal") or {"detector": "bse"}
        self.detector = str(self.signal.get("detector", "bse"))
        self.bins_nm = tuple(float(b) for b in cfg["features"]["depth_bins_nm"])
        self.solid_depth = float(cfg["features"].get("solid_depth", 0.0))
        self.net = _torch_net(int(arch["in_channels"]), int(arch["width"]), tuple(int(d) for d in arch["dilations"]))
        load_into(self.net, load_weights(wpath, param="weights"), wpath, "the architecture in the .json")
        self.net.eval()
        self.weights = wpath

    def summary(self) -> dict:
        """A short record of what the translator was trained on and how close it was measured to the Monte Carlo
        (for a product's metadata): materials, detector, energies, structures, noise law, measured fidelity."""
        t = self.config["training"]
        data = t.get("data", {})
        out = {"weights": self.weights.name, "detector": self.detector, "materials": t.get("materials"),
               "energy_range_kev": t.get("energy_range_kev"), "incidence_deg": t.get("incidence_deg"),
               "voxel_nm": t.get("voxel_nm"), "trained_by": t.get("trained_by"),
               "train_structures": data.get("train_structures"), "monitor_structures": data.get("monitor_structures"),
               "held_out_test_structures": data.get("held_out_test_structures"), "monte_carlo": data.get("monte_carlo")}
        if self.detector != "bse":
            out["noise_law"] = self.signal.get("noise")
        meas = self.config.get("measured")
        if meas and "rows" in meas:  # the SE translator's record (benchmarks/se_translator_eval.py)
            rows = meas["rows"]
            out["measured"] = {"by": meas.get("by"), "time": meas.get("time"), **{
                f"{name}: {key}": round(float(rows[name][key]["mean"]), 4)
                for name in ("se translator", "se projection + mean/std rescale + noise", "mc second realisation",
                             "se projection") if name in rows
                for key in ("corr", "ssim", "hist") if key in rows[name]}}
            for name in ("se translator", "se projection + mean/std rescale + noise"):
                if name in rows and "nps_ratio" in rows[name]:
                    out["measured"][f"{name}: nps worst band |r - 1|"] = round(
                        float(rows[name]["nps_ratio"]["max_abs_dev"]["mean"]), 4)
        elif meas:
            out["measured"] = {"by": meas.get("by")}
        return out

    @property
    def energy_range(self) -> tuple[float, float]:
        lo, hi = self.config["training"]["energy_range_kev"]
        return float(lo), float(hi)

    def project(self, structure, voxel_zyx, energy_kev, **kw):
        """The projection channel(s) this translator was trained on: the BSE projection at its ``solid_depth``, or
        for an SE translator the SE projection's channels (:func:`se_projection_channels`; ``solid``,
        ``incidence_deg`` and ``slices`` are used, ``pore`` is vacuum)."""
        if self.detector != "bse":
            kw.pop("pore", None)
            return se_projection_channels(structure, voxel_zyx, energy_kev, self.signal, **kw)
        from fibsynth.fastsim.projection import project

        return project(structure, voxel_zyx, energy_kev, solid_depth=self.solid_depth, **kw)

    def mean(self, x: np.ndarray, batch: int = 16) -> np.ndarray:
        """Expected yield (nz, ny, nx) float32 from features (nz, C, ny, nx); one torch thread (deterministic)."""
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            out = []
            with torch.no_grad():
                for i in range(0, len(x), batch):
                    out.append(self.net(torch.from_numpy(np.ascontiguousarray(x[i:i + batch]))).numpy())
        finally:
            torch.set_num_threads(threads)
        y = np.concatenate(out) if out else np.zeros((0,) + x.shape[2:], np.float32)
        # a fraction backscattered lies in [0, 1]; an SE signal (SE per primary) only above 0
        return np.clip(y, 0.0, 1.0 if self.detector == "bse" else None).astype(np.float32)

    def sample(self, mean: np.ndarray, electrons_per_pixel: int, seed: int) -> np.ndarray:
        """The noisy image at ``electrons_per_pixel`` primaries per pixel: binomial shot noise (:func:`shot_noise`)
        for BSE, the SE translator's measured per-primary noise law (:func:`se_shot_noise`) for SE."""
        if self.detector == "bse":
            return shot_noise(mean, electrons_per_pixel, seed)
        return se_shot_noise(mean, electrons_per_pixel, seed, self.signal["noise"])

    @property
    def histogram_calibration(self) -> dict | None:
        """The fitted histogram calibration of the configuration (knots, energies, offsets), or None."""
        return self.config.get("histogram_calibration")

    def calibrate(self, mean: np.ndarray, energy_kev: float) -> np.ndarray:
        """The mean image through the histogram calibration at ``energy_kev`` (offsets interpolated linearly between
        the fitted energies); unchanged when the configuration has none."""
        cal = self.histogram_calibration
        if not cal:
            return mean
        energies = np.asarray(cal["energies_kev"], np.float64)
        offsets = np.asarray(cal["offsets"], np.float64)  # (energies, knots)
        e = float(np.clip(energy_kev, energies[0], energies[-1]))
        d = np.array([np.interp(e, energies, offsets[:, j]) for j in range(offsets.shape[1])])
        return apply_histogram_offsets(mean, cal["knots"], d)

    @property
    def level_correction(self) -> dict | None:
        """The fitted level correction of the configuration (:func:`fit_level_correction`), or None."""
        return self.config.get("level_correction")

    def level_shift(self, x: np.ndarray, energy_kev: float, structure: np.ndarray | None = None,
                    slices: tuple[int, int] | None = None) -> np.ndarray | None:
        """The level correction's additive shift (nz, ny, nx) float32 for the features ``x`` (nz, C, ny, nx) of
        ``slices`` of ``structure`` at ``energy_kev``, or None without one: c(E) + G_sigma * sum_j w_j(E) L_j, the
        level features L_j (:func:`level_features`: the gold fractions of the depth bins, and the face's interface
        density if the correction uses it) blurred by a periodic Gaussian of ``sigma_px`` (so that on a periodic
        image its mean is exactly c + sum_j w_j mean(L_j)); c and w linear between the fitted energies
        (:func:`level_correction_shift`)."""
        lc = self.level_correction
        if not lc:
            return None
        return level_correction_shift(level_features(x, len(self.bins_nm) - 1, lc, structure, slices), lc, energy_kev)

    def __call__(self, structure: np.ndarray, voxel_zyx, energy_kev: float, *, electrons_per_pixel: int = 100,
                 seed: int = 0, incidence_deg: float = 38.0, solid: str = "gold", pore: str = "epoxy",
                 projection: np.ndarray | None = None, slices: tuple[int, int] | None = None,
                 calibrated: bool = True, detector: str = "bse") -> tuple[np.ndarray, np.ndarray]:
        """(noisy image, mean image) of slices k0..k1-1, in the Monte Carlo's units (fraction backscattered; for
        an SE translator the detector's signal per primary); ``calibrated``: the mean image through the histogram
        calibration (:meth:`calibrate`), else the plain regression. ``detector``: the one asked for (it must be
        the translator's)."""
        self.check(energy_kev, solid, pore, detector)
        vol = np.asarray(structure)
        k0, k1 = slices if slices is not None else (0, vol.shape[0])
        if projection is None:
            projection, _ = self.project(vol, voxel_zyx, energy_kev, incidence_deg=incidence_deg, solid=solid,
                                         pore=pore, slices=(k0, k1))
        if len(projection) != k1 - k0:
            raise FibsynthError(f"projection has {len(projection)} slices for slices {k0}:{k1}", param="projection")
        m = np.empty((k1 - k0,) + vol.shape[1:], np.float32)
        shift = np.zeros_like(m) if calibrated and self.level_correction else None
        chunk = max(1, 2**22 // max(1, vol.shape[1] * vol.shape[2]))  # bounded memory on large stacks
        for a in range(k0, k1, chunk):
            b = min(k1, a + chunk)
            x = features(vol, voxel_zyx, energy_kev, incidence_deg=incidence_deg, solid=solid, pore=pore,
                         projection=projection[a - k0:b - k0], slices=(a, b), bins_nm=self.bins_nm)
            m[a - k0:b - k0] = self.mean(x, batch=max(1, min(16, 2**20 // max(1, vol.shape[1] * vol.shape[2]))))
            if shift is not None:
                shift[a - k0:b - k0] = self.level_shift(x, energy_kev, vol, (a, b))
        if calibrated:
            m = self.calibrate(m, energy_kev)
            if shift is not None:  # the structure-predicted level correction, after the gray-value map
                m = np.clip(m + shift, 0.0, 1.0).astype(np.float32)
        return self.sample(m, electrons_per_pixel, seed), m

    def check(self, energy_kev: float, solid: str = "gold", pore: str = "epoxy", detector: str = "bse") -> None:
        """One-line refusal of an energy, material pair or detector the translator was not trained for."""
        if detector != self.detector:
            raise FibsynthError(f"this paired translator is trained for the {self.detector} detector only "
                                f"(got {detector})", param="detector")
        lo, hi = self.energy_range
        if not lo <= float(energy_kev) <= hi:
            what = f"{lo:g}-{hi:g} keV" if hi > lo else f"{lo:g} keV"
            raise FibsynthError(f"{energy_kev:g} keV is outside the range the paired translator was trained on "
                                f"({what})", param="energy_kev")
        trained = self.config["training"].get("materials", ["gold", "epoxy"])
        if [solid, pore] != list(trained):
            raise FibsynthError(f"the paired translator is trained for {trained[0]}/{trained[1]} only "
                                f"(got {solid}/{pore})", param="pore" if solid == trained[0] else "solid")


def interface_density(structure: np.ndarray, slices: tuple[int, int], depth_slices: int) -> np.ndarray:
    """(nz', ny, nx) float32: per slice k of ``slices`` and pixel, the fraction of its +y and +x neighbours (periodic)
    of the other phase, averaged over the slices k .. k + ``depth_slices`` - 1 behind the face (those inside the
    structure): the face's interface (edge) density, whose mean over a slice is the solid/pore boundary length per
    pixel -- small ligaments, many edges."""
    vol = np.asarray(structure)
    k0, k1 = slices
    out = np.zeros((k1 - k0,) + vol.shape[1:], np.float32)
    for k in range(k0, k1):
        w = vol[k:min(vol.shape[0], k + int(depth_slices))].astype(bool)
        e = 0.5 * ((w != np.roll(w, -1, axis=1)).astype(np.float32) + (w != np.roll(w, -1, axis=2)))
        out[k - k0] = e.mean(0)
    return out


def level_features(x: np.ndarray, n_bins: int, lc: dict, structure: np.ndarray | None = None,
                   slices: tuple[int, int] | None = None) -> np.ndarray:
    """(nz, C, ny, nx) the level correction's features: the gold fractions of the ``n_bins`` depth bins of the
    translator's features ``x`` (nz, C', ny, nx), then, if ``lc["interface_slices"]`` > 0, the face's interface
    density (:func:`interface_density`, needs ``structure`` and ``slices``)."""
    depth = x[:, x.shape[1] - 1 - n_bins:x.shape[1] - 1]
    n_if = int(lc.get("interface_slices", 0))
    if n_if <= 0:
        return depth
    if structure is None or slices is None:
        raise FibsynthError("the level correction uses the interface density: the structure is needed",
                            param="structure")
    return np.concatenate([depth, interface_density(structure, slices, n_if)[:, None]], axis=1)


def level_correction_shift(depth: np.ndarray, lc: dict, energy_kev: float) -> np.ndarray:
    """c(E) + G_sigma * sum_b w_b(E) depth_b per slice: ``depth`` (nz, B, ny, nx) the level features
    (:func:`level_features`: the gold fractions of the depth bins, [the interface density]), ``lc`` a level correction (:func:`fit_level_correction`: ``energies_kev``, ``intercept`` per energy,
    ``weights`` per energy and bin, ``sigma_px``); c and w linear in the energy between the fitted ones (constant
    beyond). The blur is periodic (``mode="wrap"``, like the network's circular padding), so the shift's mean over
    a periodic slice is c + sum_b w_b mean(depth_b) whatever ``sigma_px``."""
    from scipy.ndimage import gaussian_filter

    es = np.asarray(lc["energies_kev"], np.float64)
    w = np.asarray(lc["weights"], np.float64)
    if w.shape != (len(es), depth.shape[1]):
        raise FibsynthError(f"the level correction has weights {list(w.shape)} for {len(es)} energies and "
                            f"{depth.shape[1]} level features", param="weights")
    e = float(np.clip(energy_kev, es[0], es[-1]))
    c = float(np.interp(e, es, np.asarray(lc["intercept"], np.float64)))
    wb = np.array([np.interp(e, es, w[:, j]) for j in range(w.shape[1])], np.float32)
    lin = np.tensordot(np.asarray(depth, np.float32), wb, axes=(1, 0))  # (nz, ny, nx)
    sigma = float(lc.get("sigma_px", 0.0))
    if sigma > 0:
        lin = gaussian_filter(lin, (0, sigma, sigma), mode="wrap")
    return (lin + c).astype(np.float32)


def fit_level_correction(depth_means, biases, energies_kev, ridge: float, sigma_px: float,
                         interface_slices: int = 0) -> dict:
    """Ridge fit of the per-image level error from the mean gold fractions of the depth bins, per energy.

    ``depth_means[i]``: (B,) the level features (:func:`level_features`) averaged over image i (a stack of slices
    of one structure; with ``interface_slices`` > 0 the last is the interface density over that many slices), ``biases[i]``: the Monte Carlo's mean yield minus the (calibrated) translator's over the same
    slices, ``energies_kev[i]``: its energy. Per energy: y = c + w . f, the features standardised, w shrunk by
    ``ridge`` (in units of the standardised design's Gram matrix, i.e. lambda of ``(Z'Z + lambda I) w = Z'y``), c
    unpenalised. Returns the block :func:`level_correction_shift` reads."""
    f = np.asarray(depth_means, np.float64)
    y = np.asarray(biases, np.float64)
    en = np.asarray(energies_kev, np.float64)
    if f.ndim != 2 or len(f) != len(y) or len(y) != len(en):
        raise FibsynthError("need one (B,) feature row, one bias and one energy per image", param="depth_means")
    if not ridge > 0:
        raise FibsynthError(f"must be > 0 (got {ridge})", param="ridge")
    out_e, out_c, out_w = [], [], []
    for e in sorted(set(en.tolist())):
        k = en == e
        if k.sum() < 3:
            raise FibsynthError(f"{int(k.sum())} images at {e:g} keV are too few", param="energies_kev")
        fe, ye = f[k], y[k]
        mu, sd = fe.mean(0), fe.std(0)
        sd = np.where(sd > 0, sd, 1.0)
        z = (fe - mu) / sd
        wz = np.linalg.solve(z.T @ z + ridge * np.eye(z.shape[1]), z.T @ (ye - ye.mean()))
        w = wz / sd
        out_e.append(float(e))
        out_c.append(float(ye.mean() - w @ mu))
        out_w.append([float(v) for v in w])
    return {"energies_kev": out_e, "intercept": out_c, "weights": out_w, "ridge": float(ridge),
            "sigma_px": float(sigma_px), "interface_slices": int(interface_slices)}


def _noise_args(electrons_per_pixel: int, seed: int) -> int:
    """The primaries per pixel as an int, after checking it and the noise ``seed`` (library errors naming them)."""
    n = int(electrons_per_pixel)
    if n < 0:
        raise FibsynthError(f"must be >= 0 (got {n})", param="electrons_per_pixel")
    if not 0 <= int(seed) < 2**63:
        raise FibsynthError(f"must be in [0, 2^63) (got {seed})", param="seed")
    return n


def shot_noise(mean: np.ndarray, electrons_per_pixel: int, seed: int) -> np.ndarray:
    """Binomial(N, p) / N per pixel (N = ``electrons_per_pixel``, p = ``mean``), seeded; N = 0: ``mean`` itself."""
    n = _noise_args(electrons_per_pixel, seed)
    if n == 0:
        return np.asarray(mean, np.float32).copy()
    rng = np.random.default_rng(int(seed))
    return (rng.binomial(n, np.clip(mean, 0.0, 1.0)) / n).astype(np.float32)


def per_primary_variance(mean: np.ndarray, law: dict) -> np.ndarray:
    """The variance per primary v(m) of an SE signal of mean m: piecewise linear through the measured points
    (``law["m"]``, ``law["v"]``, :func:`fit_se_noise_law`); below the first point proportional to m (v -> 0 with
    the signal), above the last proportional to m^2 (a constant relative spread)."""
    km = np.asarray(law["m"], np.float64)
    kv = np.asarray(law["v"], np.float64)
    m = np.asarray(mean, np.float64)
    v = np.interp(m, km, kv)
    v = np.where(m < km[0], m * (kv[0] / km[0]), v)
    return np.where(m > km[-1], m * m * (kv[-1] / km[-1] ** 2), v)


def se_shot_noise(mean: np.ndarray, electrons_per_pixel: int, seed: int, law: dict) -> np.ndarray:
    """The SE image at N = ``electrons_per_pixel`` primaries per pixel: the mean of N independent per-primary
    signals of mean m (``mean``) and variance v(m) (:func:`per_primary_variance` with ``law``, measured on the
    Monte Carlo's per-pixel second moments), drawn as a gamma variate of mean m and variance v(m) / N (exact first
    two moments, never negative, the right skew of a sum of non-negative signals), seeded; 0 where m = 0; N = 0:
    ``mean`` itself. (The Monte Carlo tallies the expected escaping SE of each primary, so its noise is that of
    the primaries' paths, not a Poisson count of SE: v(m) measures it.)"""
    n = _noise_args(electrons_per_pixel, seed)
    if n == 0:
        return np.asarray(mean, np.float32).copy()
    m = np.clip(np.asarray(mean, np.float64), 0.0, None)
    var = np.maximum(per_primary_variance(m, law), 1e-12) / n
    pos = m > 0
    shape = np.where(pos, m * m / var, 1.0)
    scale = np.where(pos, var / np.where(pos, m, 1.0), 0.0)
    rng = np.random.default_rng(int(seed))
    return np.where(pos, rng.gamma(shape, scale), 0.0).astype(np.float32)


def fit_se_noise_law(means, mc_std, electrons_per_pixel: int, bins: int = 32) -> dict:
    """The per-primary variance law of :func:`per_primary_variance`: v is the Monte Carlo's per-pixel estimate
    N std^2 (``mc_std``: its standard errors at N = ``electrons_per_pixel``), m a noiseless mean image of the same
    slices (the translator's), so that the regressor carries no noise; the pixels are grouped into ``bins``
    quantile bins of m, and the bins' mean m and mean v are the law's points. Also returns, for comparison, the
    best two-parameter law a m + b m^2 (relative least squares over the bins) and its worst bin ratio (a simple
    law misses some levels by ~10 %: the variance depends on more than the mean)."""
    n = int(electrons_per_pixel)
    m = np.concatenate([np.ravel(x) for x in means]).astype(np.float64)
    v = np.concatenate([np.ravel(s) for s in mc_std]).astype(np.float64) ** 2 * n
    keep = m > 0
    m, v = m[keep], v[keep]
    if m.size < 2 * bins:
        raise FibsynthError(f"{m.size} pixels with a signal are too few for {bins} bins", param="means")
    edges = np.quantile(m, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, bins - 1)
    cnt = np.bincount(idx, minlength=bins)
    ok = cnt > 0
    m1 = np.bincount(idx, m, bins)[ok] / cnt[ok]
    m2 = np.bincount(idx, m * m, bins)[ok] / cnt[ok]
    vb = np.bincount(idx, v, bins)[ok] / cnt[ok]
    A = np.stack([m1, m2], 1) / vb[:, None]
    (a, b), *_ = np.linalg.lstsq(A, np.ones_like(vb), rcond=None)
    worst = float(np.max(np.abs(vb / (a * m1 + b * m2) - 1)))
    return {"m": [float(x) for x in m1], "v": [float(x) for x in vb],
            "law": "per-primary variance piecewise linear in the mean through the points (m, v); gamma-distributed "
                   "pixel mean of N primaries", "fit": f"{bins} quantile bins of the mean image",
            "two_parameter_law": {"a": float(a), "b": float(b), "worst_bin_deviation": worst}, "pixels": int(m.size)}


def se_projection_channels(structure: np.ndarray, voxel_zyx, energy_kev: float, signal: dict, *,
                           solid: str = "silicon", incidence_deg: float = 38.0,
                           slices: tuple[int, int] | None = None) -> tuple[np.ndarray, dict]:
    """The SE translator's projection channels of slices k0..k1-1, (nz', 4, ny, nx) float32: the SE projection's
    SE1 term, SE2 term and in-lens BSE share (:func:`fibsynth.fastsim.se_projection.project_se` with
    ``components``), each over the flat face's SE yield delta_1 + delta_2, and the depth of the first solid cell
    on the pixel's ray over the Kanaya-Okayama range (at most 4). ``signal``: the translator's ``signal`` block
    (detector, stored flat-face yields -- so no bulk Monte Carlo runs here --, spreads, pore view, BSE weight)."""
    from fibsynth.fastsim.se_projection import project_se

    d1, d2, eta_cone = (float(v) for v in signal["yields"])
    _, rec = project_se(structure, voxel_zyx, energy_kev, solid=solid, incidence_deg=incidence_deg, slices=slices,
                        spread=float(signal["spread"]), spread_se1=float(signal["spread_se1"]),
                        view=str(signal["pore_view"]), bse_weight=float(signal["bse_weight"]),
                        inlens_bse_theta_deg=float(signal["inlens_bse_theta_deg"]), yields=(d1, d2, eta_cone),
                        components=True)
    c = rec.pop("components")
    c[:, :3] /= np.float32(d1 + d2)
    c[:, 3] = np.minimum(c[:, 3] / np.float32(rec["range_ko_nm"]), 4.0)
    return c, rec


def apply_histogram_offsets(mean: np.ndarray, knots, offsets) -> np.ndarray:
    """m + offset(m), the offset piecewise linear through (``knots``, ``offsets``) (constant beyond the ends),
    clipped to [0, 1]; float32. Monotone in m wherever the offsets' slope is above -1 (checked when fitted)."""
    m = np.asarray(mean, np.float32)
    return np.clip(m + np.interp(m, np.asarray(knots, np.float64), np.asarray(offsets, np.float64)), 0.0, 1.0
                   ).astype(np.float32)


def count_cdf(images: np.ndarray, electrons_per_pixel: int) -> np.ndarray:
    """The cumulative histogram of the counts k = 0..N of images in units of the fraction k / N."""
    n = int(electrons_per_pixel)
    k = np.clip(np.rint(np.ravel(images).astype(np.float64) * n).astype(np.int64), 0, n)
    return np.cumsum(np.bincount(k, minlength=n + 1)) / k.size


def fit_histogram_offsets(means, mc_images, electrons_per_pixel: int, knots=HIST_KNOTS, smooth: float = 3.0,
                          max_offset: float = 0.1, max_evaluations: int = 6000) -> dict:
    """Offsets at ``knots`` such that Binomial(N, m + offset(m)) / N has the gray-value histogram of the Monte Carlo
    images of the same slices: the Wasserstein distance of the expected count histogram from the Monte Carlo's
    (in yield units), plus ``smooth`` x the sum of squared second differences of the offsets, minimised (Powell,
    each offset within +-``max_offset``, the map kept monotone).

    ``means``/``mc_images``: lists of arrays (the regression's mean images and Monte Carlo images with
    ``electrons_per_pixel`` primaries per pixel). Returns offsets, the distance before and after, and whether the
    map is monotone."""
    from scipy.optimize import minimize
    from scipy.stats import binom

    n = int(electrons_per_pixel)
    if n < 1:
        raise FibsynthError(f"must be >= 1 (got {n})", param="electrons_per_pixel")
    knots = np.asarray(knots, np.float64)
    if knots.ndim != 1 or len(knots) < 2 or np.any(np.diff(knots) <= 0):
        raise FibsynthError("must be at least 2 increasing yields", param="knots")
    m = np.concatenate([np.ravel(a) for a in means]).astype(np.float64)
    target = count_cdf(np.concatenate([np.ravel(a) for a in mc_images]), n)
    bins = 1000
    h = np.bincount(np.minimum((np.clip(m, 0, 1) * bins).astype(np.int64), bins - 1), minlength=bins)
    used = h > 0
    centres = (np.arange(bins)[used] + 0.5) / bins
    weights = h[used] / m.size
    grid = 4000  # the mapped yields are spread linearly onto a fine grid whose binomial pmfs are computed once
    pmf = binom.pmf(np.arange(n + 1)[None, :], n, (np.arange(grid + 1) / grid)[:, None])

    def distance(d):
        p = np.clip(centres + np.interp(centres, knots, d), 0.0, 1.0) * grid
        i = np.minimum(p.astype(np.int64), grid - 1)
        f = p - i
        w = np.bincount(i, weights * (1 - f), minlength=grid + 1) + np.bincount(i + 1, weights * f, minlength=grid + 1)
        cdf = np.cumsum(w @ pmf)
        return float(np.abs(cdf - target).sum() / n)

    # only knots with data between their neighbours are fitted; beyond the data the offset stays that of the last
    # fitted knot (no extrapolated trend)
    lo, hi = float(m.min()), float(m.max())
    active = np.array([(knots[max(j - 1, 0)] < hi) and (knots[min(j + 1, len(knots) - 1)] > lo)
                       for j in range(len(knots))])
    idx = np.flatnonzero(active)
    if idx.size == 0:
        raise FibsynthError(f"no mean yield within the knots' range {knots[0]:g}-{knots[-1]:g}", param="means")

    def full(x):  # constant beyond the first and last fitted knots
        return np.interp(np.arange(len(knots)), idx, x)

    def objective(x):
        d = full(x)
        if np.any(np.diff(knots + d) <= 0):  # never move one pixel past another
            return 1.0 + float(np.sum(np.abs(x)))
        return distance(d) + smooth * float(np.sum(np.diff(x, 2) ** 2))

    d0 = np.zeros(len(knots))
    res = minimize(objective, np.zeros(len(idx)), method="Powell", bounds=[(-max_offset, max_offset)] * len(idx),
                   options={"xtol": 1e-5, "ftol": 1e-9, "maxfev": int(max_evaluations)})
    d = full(np.asarray(res.x, np.float64))
    monotone = bool(np.all(np.diff(knots + d) > 0))
    return {"knots": knots.tolist(), "offsets": d.tolist(), "distance_before": distance(d0),
            "distance_after": distance(d), "monotone": monotone, "evaluations": int(res.nfev)}


_CACHE: dict[str, PairedTranslator] = {}

#: shipped weights per detector: the BSE translator (gold/epoxy, 1-4 keV) and the in-lens SE translator of one
#: open-pore configuration (silicon/vacuum, 2 keV; ``experiments/se_train_translator.py``, docs/fastsim.md)
SHIPPED = {"bse": DEFAULT_WEIGHTS, "inlens": DATA / "paired_translator_se.pt"}


def load_paired(weights: str | Path | None = None, detector: str = "bse") -> PairedTranslator:
    """The shipped paired translator for ``detector`` (cached; ``bse`` or ``inlens``), or one from ``weights``
    (+ its ``.json``)."""
    if weights is None and detector not in SHIPPED:
        raise FibsynthError(f"no paired translator is shipped for the {detector} detector (shipped: "
                            f"{', '.join(SHIPPED)})", param="detector")
    key = str(Path(weights).resolve()) if weights is not None else ("shipped" if detector == "bse"
                                                                     else f"shipped-{detector}")
    if key not in _CACHE:
        _CACHE[key] = PairedTranslator(weights if weights is not None else SHIPPED[detector])
    return _CACHE[key]


def make_config(in_channels: int, width: int, dilations, training: dict[str, Any], signal: dict | None = None,
                bins_nm=DEPTH_BINS_NM) -> dict:
    """The .json beside a translator's weights; ``signal``: an SE translator's block (detector, the SE
    projection's settings and flat-face yields, the noise law; see :func:`se_projection_channels`); ``bins_nm``:
    the depth bins of its features."""
    from fibsynth.fastsim.projection import THIN_SOLID_DEPTH

    cfg = {"format": FORMAT,
           "architecture": {"in_channels": int(in_channels), "width": int(width),
                            "dilations": [int(d) for d in dilations]},
           "features": {"depth_bins_nm": [float(b) for b in bins_nm], "solid_depth": THIN_SOLID_DEPTH,
                        "projection": "group-normalised, default K and spread, solid_depth as given",
                        "energy": f"(E - {E_CENTRE}) / {E_SCALE}"},
           "training": training}
    if signal is not None:
        cfg["signal"] = signal
        cfg["features"]["projection"] = ("SE projection channels (translator.se_projection_channels): SE1, SE2, "
                                         "in-lens BSE share over delta_1 + delta_2; first-hit depth over R_KO")
        cfg["features"]["solid_depth"] = 0.0
    return cfg
