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


def features(structure: np.ndarray, voxel_zyx, energy_kev: float, *, incidence_deg: float = 38.0,
             solid: str = "gold", pore: str = "epoxy", projection: np.ndarray | None = None,
             slices: tuple[int, int] | None = None, bins_nm=DEPTH_BINS_NM,
             solid_depth: float | None = None) -> np.ndarray:
    """(nz', C, ny, nx) float32 inputs of the network for slices k0..k1-1 (default all); ``solid_depth``: that of
    the projection channel (default :data:`fibsynth.fastsim.projection.THIN_SOLID_DEPTH`)."""
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
    x = np.concatenate([np.asarray(projection, np.float32)[None], depth, e], axis=0)
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
        self.bins_nm = tuple(float(b) for b in cfg["features"]["depth_bins_nm"])
        self.solid_depth = float(cfg["features"].get("solid_depth", 0.0))
        self.net = _torch_net(int(arch["in_channels"]), int(arch["width"]), tuple(int(d) for d in arch["dilations"]))
        load_into(self.net, load_weights(wpath, param="weights"), wpath, "the architecture in the .json")
        self.net.eval()
        self.weights = wpath

    @property
    def energy_range(self) -> tuple[float, float]:
        lo, hi = self.config["training"]["energy_range_kev"]
        return float(lo), float(hi)

    def project(self, structure, voxel_zyx, energy_kev, **kw):
        """The projection channel this translator was trained on (its ``solid_depth``)."""
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
        return np.clip(y, 0.0, 1.0).astype(np.float32)

    def __call__(self, structure: np.ndarray, voxel_zyx, energy_kev: float, *, electrons_per_pixel: int = 100,
                 seed: int = 0, incidence_deg: float = 38.0, solid: str = "gold", pore: str = "epoxy",
                 projection: np.ndarray | None = None, slices: tuple[int, int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """(noisy image, mean image) of slices k0..k1-1, in the Monte Carlo's units (fraction backscattered)."""
        self.check(energy_kev, solid, pore)
        vol = np.asarray(structure)
        k0, k1 = slices if slices is not None else (0, vol.shape[0])
        if projection is None:
            projection, _ = self.project(vol, voxel_zyx, energy_kev, incidence_deg=incidence_deg, solid=solid,
                                         pore=pore, slices=(k0, k1))
        if len(projection) != k1 - k0:
            raise FibsynthError(f"projection has {len(projection)} slices for slices {k0}:{k1}", param="projection")
        m = np.empty((k1 - k0,) + vol.shape[1:], np.float32)
        chunk = max(1, 2**22 // max(1, vol.shape[1] * vol.shape[2]))  # bounded memory on large stacks
        for a in range(k0, k1, chunk):
            b = min(k1, a + chunk)
            x = features(vol, voxel_zyx, energy_kev, incidence_deg=incidence_deg, solid=solid, pore=pore,
                         projection=projection[a - k0:b - k0], slices=(a, b), bins_nm=self.bins_nm)
            m[a - k0:b - k0] = self.mean(x, batch=max(1, min(16, 2**20 // max(1, vol.shape[1] * vol.shape[2]))))
        return shot_noise(m, electrons_per_pixel, seed), m

    def check(self, energy_kev: float, solid: str = "gold", pore: str = "epoxy") -> None:
        """One-line refusal of an energy or material pair the translator was not trained for."""
        lo, hi = self.energy_range
        if not lo <= float(energy_kev) <= hi:
            raise FibsynthError(f"{energy_kev:g} keV is outside the range the paired translator was trained on "
                                f"({lo:g}-{hi:g} keV)", param="energy_kev")
        trained = self.config["training"].get("materials", ["gold", "epoxy"])
        if [solid, pore] != list(trained):
            raise FibsynthError(f"the paired translator is trained for {trained[0]}/{trained[1]} only "
                                f"(got {solid}/{pore})", param="pore" if solid == trained[0] else "solid")


def shot_noise(mean: np.ndarray, electrons_per_pixel: int, seed: int) -> np.ndarray:
    """Binomial(N, p) / N per pixel (N = ``electrons_per_pixel``, p = ``mean``), seeded; N = 0: ``mean`` itself."""
    n = int(electrons_per_pixel)
    if n < 0:
        raise FibsynthError(f"must be >= 0 (got {n})", param="electrons_per_pixel")
    if not 0 <= int(seed) < 2**63:
        raise FibsynthError(f"must be in [0, 2^63) (got {seed})", param="seed")
    if n == 0:
        return np.asarray(mean, np.float32).copy()
    rng = np.random.default_rng(int(seed))
    return (rng.binomial(n, np.clip(mean, 0.0, 1.0)) / n).astype(np.float32)


_CACHE: dict[str, PairedTranslator] = {}


def load_paired(weights: str | Path | None = None) -> PairedTranslator:
    """The shipped paired translator (cached), or one from ``weights`` (+ its ``.json``)."""
    key = str(Path(weights).resolve()) if weights is not None else "shipped"
    if key not in _CACHE:
        _CACHE[key] = PairedTranslator(weights)
    return _CACHE[key]


def make_config(in_channels: int, width: int, dilations, training: dict[str, Any]) -> dict:
    from fibsynth.fastsim.projection import THIN_SOLID_DEPTH

    return {"format": FORMAT,
            "architecture": {"in_channels": int(in_channels), "width": int(width),
                             "dilations": [int(d) for d in dilations]},
            "features": {"depth_bins_nm": list(DEPTH_BINS_NM), "solid_depth": THIN_SOLID_DEPTH,
                         "projection": "group-normalised, default K and spread, solid_depth as given",
                         "energy": f"(E - {E_CENTRE}) / {E_SCALE}"},
            "training": training}
