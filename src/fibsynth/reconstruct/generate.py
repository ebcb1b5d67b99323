"""Step 3: matched training data -- ground-truth structures drawn around the estimates, imaged at the user's beam
energy and voxel size, with randomised microscope artifacts as augmentation.

Structures: leveled-wave (single level) or, when the estimate says hierarchical, two-level structures
(:mod:`fibsynth.structure`). Each structure's solid fraction and ligament diameter are drawn from a normal
distribution around the estimate with the estimate's uncertainty as standard deviation (at least
:data:`MIN_REL_SPREAD` relative, so the training set always spans some range), clipped to what the generators
accept.

Imaging: the fast path (shine-through projection, plus the shipped projection -> Monte Carlo translation where one
exists for the energy and materials) or, on request, the Monte Carlo.

Augmentation -- INTERIM until ``fibsynth.microscope`` (issue 13) lands: a minimal randomised forward model kept here
(:func:`augment`): focus blur, detector gamma, curtain stripes, shading and Poisson-Gaussian noise whose level is
drawn around the noise measured in the real stack. It is deliberately simple and independent of the test stacks'
artifact model (``benchmarks/realistic_stack.py``). When the microscope package provides a randomised forward
model, :func:`augment` calls it instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_REL_SPREAD = 0.08


def _clip_phi(v: float) -> float:
    return float(np.clip(v, 0.08, 0.85))


def draw_parameters(est: dict[str, Any], n: int, voxel_zyx, seed: int, *, spread: bool = True) -> list[dict[str, Any]]:
    """``n`` structure parameter sets around the estimate (see module docstring); ``spread=False``: at it."""
    rng = np.random.default_rng((seed, 31))
    q = est["quantities"]
    min_lig = 2.05 * max(voxel_zyx)

    def draw(key: str) -> float:
        v, u = q[key]["value"], q[key]["uncertainty"]
        return float(rng.normal(v, max(u, MIN_REL_SPREAD * abs(v)))) if spread else float(v)

    out = []
    for i in range(n):
        s = int(rng.integers(0, 2**31 - 1))
        if est.get("hierarchical") and "upper_ligament_nm" in q:
            lower = max(draw("ligament_nm"), min_lig)
            upper = max(draw("upper_ligament_nm"), 2.5 * lower)
            out.append({"kind": "hierarchical", "upper_ligament_nm": upper, "lower_ligament_nm": lower,
                        "upper_solid_fraction": _clip_phi(draw("upper_solid_fraction")),
                        "lower_solid_fraction": _clip_phi(draw("lower_solid_fraction")), "seed": s})
        else:
            out.append({"kind": "leveled_wave", "solid_fraction": _clip_phi(draw("solid_fraction")),
                        "ligament_nm": max(draw("ligament_nm"), min_lig), "seed": s})
    return out


def make_structure(p: dict[str, Any], shape, voxel_zyx) -> np.ndarray:
    from fibsynth.structure import hierarchical, leveled_wave

    if p["kind"] == "hierarchical":
        return hierarchical(shape, tuple(voxel_zyx), p["upper_ligament_nm"], p["lower_ligament_nm"],
                            p["upper_solid_fraction"], p["lower_solid_fraction"], seed=p["seed"])
    return leveled_wave(shape, tuple(voxel_zyx), p["solid_fraction"], p["ligament_nm"], seed=p["seed"])


def image_structure(solid: np.ndarray, voxel_zyx, energy_kev: float, *, engine: str = "fast",
                    materials: tuple[str, str] = ("gold", "epoxy"), electrons_per_pixel: int = 20,
                    seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Ideal (artifact-free) image stack of a structure and a record of how it was made."""
    if engine == "mc":
        from fibsynth.config import VoxelSize
        from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack

        vox = VoxelSize(z=voxel_zyx[0], y=voxel_zyx[1], x=voxel_zyx[2])
        st = StackSettings(energy_kev=energy_kev, electrons_per_pixel=electrons_per_pixel, solid=materials[0],
                           pore=materials[1], seed=seed)
        res = simulate_stack(solid, vox, st, progress=False)
        return np.asarray(res["eta"], np.float32), {"engine": "Monte Carlo", "electrons_per_pixel": electrons_per_pixel}
    from fibsynth.errors import FibsynthError
    from fibsynth.synth import shipped_model_for, synthesize

    try:
        shipped_model_for(energy_kev, materials[0], materials[1])
        has_model = True
    except FibsynthError:
        has_model = False
    if has_model:
        _, img, rec = synthesize(solid, tuple(voxel_zyx), energy_kev, solid=materials[0], pore=materials[1], seed=seed)
        return img, {"engine": "fast path (projection + shipped CycleGAN)", "model": rec["translation_model"]}
    from fibsynth.fastsim.projection import project

    img, _ = project(solid, tuple(voxel_zyx), energy_kev, solid=materials[0], pore=materials[1])
    return img.astype(np.float32), {"engine": "fast path (projection; no shipped translation model at this energy)"}


def _microscope_forward():
    try:
        from fibsynth import microscope
    except ImportError:
        return None
    return getattr(microscope, "randomised", None) or getattr(microscope, "random_forward", None)


def augment(img: np.ndarray, rng: np.random.Generator, noise_relative: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Randomised microscope artifacts (INTERIM, see module docstring); ``noise_relative``: the real stack's noise
    sigma over its 1-99 % gray range."""
    from scipy.ndimage import gaussian_filter

    x = img.astype(np.float64)
    lo, hi = np.percentile(x, [1, 99])
    x = np.clip((x - lo) / max(hi - lo, 1e-9), 0, None)
    nz, ny, nx = x.shape
    blur = float(rng.uniform(0.0, 1.0))
    gamma = float(rng.uniform(0.75, 1.3))
    stripes = float(rng.uniform(0.0, 0.06))
    shade = float(rng.uniform(0.0, 0.25))
    rel = float(np.clip(noise_relative, 0.005, 0.5)) * float(rng.uniform(0.7, 1.3))
    if blur > 0.05:
        x = gaussian_filter(x, (0, blur, blur))
    x = x ** gamma
    prof = gaussian_filter(rng.standard_normal(nx), 1.0) * stripes
    x = x + prof[None, None, :] * (1 + 0.3 * np.sin(np.linspace(0, 3, nz)))[:, None, None]
    x = x * (1 - shade * np.linspace(0, 1, ny) ** 2)[None, :, None]
    # Poisson-Gaussian: half of the variance from counts, half additive, total sigma ~ rel at mid-gray
    dose = 0.5 / rel**2 * 0.5
    x = rng.poisson(np.clip(x, 0, None) * dose) / dose + rng.normal(0, rel / np.sqrt(2), x.shape)
    rec = {"blur_px": blur, "gamma": gamma, "stripes": stripes, "shading": shade, "noise_relative": rel,
           "model": "interim reconstruct.generate.augment"}
    return x.astype(np.float32), rec
