"""A cheap imitation of a FIB-SEM stack for tests, examples and benchmarks — not physics.

Gold on the face is bright (1.0), epoxy dark (0.0), and epoxy pixels show gold lying up to ``depth``
slices *behind* the face (larger z) through a blurred, depth-attenuated "shine-through" term, plus
Gaussian noise. Behind-gold epoxy then reaches gold-like gray values, which a global threshold cannot
separate from gold while a network that sees the next slices (2.5D/3D) or the blur can. For physically
modelled images use ``fibsynth.fastsim.projection.project`` or the Monte Carlo engine.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def toy_image(structure: np.ndarray, *, shine: float = 0.9, depth: int = 3, blur: float = 1.0,
              noise: float = 0.08, seed: int = 0) -> np.ndarray:
    """Gray values (float32): ``s + (1 - s) * shine * min(1, blur(sum_j w_j s[z + j]))``, w_j = 2^(1-j)
    for j = 1..depth (the stack's last slice repeats beyond its end), plus N(0, noise)."""
    s = np.asarray(structure, np.float32)
    nz = s.shape[0]
    behind = np.zeros_like(s)
    weights = 0.5 ** np.arange(depth)
    for j, w in enumerate(weights, start=1):
        shifted = np.concatenate([s[j:], np.repeat(s[-1:], min(j, nz), axis=0)])[:nz]
        behind += w * shifted
    behind = np.minimum(ndi.gaussian_filter(behind, sigma=(0, blur, blur)), 1.0)
    img = s + (1.0 - s) * shine * behind
    img = img + np.random.default_rng(seed).normal(0.0, noise, s.shape).astype(np.float32)
    return img.astype(np.float32)


def toy_structure(shape, *, solid_fraction: float = 0.35, sigma: float = 2.5, seed: int = 0) -> np.ndarray:
    """A smooth random two-phase structure (thresholded Gaussian field), uint8 1 = solid."""
    g = ndi.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), sigma)
    return (g > np.quantile(g, 1 - solid_fraction)).astype(np.uint8)
