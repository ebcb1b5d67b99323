"""Step 3: matched training data -- ground-truth structures drawn around the estimates, imaged at the user's beam
energy and voxel size, with randomised microscope artifacts as augmentation.

Structures: leveled-wave (single level) or, when the estimate says hierarchical, two-level structures
(:mod:`fibsynth.structure`). Each structure's solid fraction and ligament diameter are drawn from a normal
distribution around the estimate with the estimate's uncertainty as standard deviation (at least
:data:`MIN_REL_SPREAD` relative, so the training set always spans some range, and at most :data:`MAX_REL_SPREAD`
relative: an estimate from one segmentation can carry a wide uncertainty -- phi 0.26 +- 0.12 once drew training
structures at phi 0.08-0.20 and that round scored 0.75 against 0.86), clipped to what the generators accept.

Imaging: the fast path (shine-through projection, plus the shipped projection -> Monte Carlo translation where one
exists for the energy and materials) or, on request, the Monte Carlo.

Augmentation: the microscope stage's randomised forward model (:meth:`fibsynth.microscope.MicroscopeModel.sample`
at :data:`AUGMENT_STRENGTH`, then :func:`fibsynth.microscope.apply`): detector response, curtains, shading, drift
(the labels move with the image), charging and Poisson-Gaussian noise, with the dose set so the noise matches the
level measured in the real stack.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_REL_SPREAD = 0.08
MAX_REL_SPREAD = 0.25


def _clip_phi(v: float) -> float:
    return float(np.clip(v, 0.08, 0.85))


def draw_parameters(est: dict[str, Any], n: int, voxel_zyx, seed: int, *, spread: bool = True) -> list[dict[str, Any]]:
    """``n`` structure parameter sets around the estimate (see module docstring); ``spread=False``: at it."""
    rng = np.random.default_rng((seed, 31))
    q = est["quantities"]
    min_lig = 2.05 * max(voxel_zyx)

    def draw(key: str) -> float:
        v, u = q[key]["value"], q[key]["uncertainty"]
        sd = float(np.clip(u, MIN_REL_SPREAD * abs(v), MAX_REL_SPREAD * abs(v)))
        return float(rng.normal(v, sd)) if spread else float(v)

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
                    seed: int = 0, translation: str = "auto") -> tuple[np.ndarray, dict[str, Any]]:
    """Ideal (artifact-free) image stack of a structure and a record of how it was made. ``materials[1]`` may be
    ``vacuum`` (open pores): the projection then follows the beam down the pores (no translation model exists for
    open pores), the Monte Carlo flies electrons through them.

    ``translation`` (fast engine only): ``paired`` -- the paired translator's expected Monte Carlo image (noise-free:
    the microscope augmentation adds the real stack's noise; gold/epoxy, 1-4 keV); ``cyclegan`` -- the shipped
    CycleGAN for the energy; ``projection`` -- the shine-through projection alone; ``auto`` -- paired where it
    applies, else the shipped CycleGAN where one exists, else the projection."""
    from fibsynth.physics.materials import is_vacuum

    if engine == "mc":
        from fibsynth.config import VoxelSize
        from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack

        vox = VoxelSize(z=voxel_zyx[0], y=voxel_zyx[1], x=voxel_zyx[2])
        # open pores (vacuum): what lies beyond the last slice is more of the structure, not empty space
        backing = "repeat" if is_vacuum(materials[1]) else "pore"
        st = StackSettings(energy_kev=energy_kev, electrons_per_pixel=electrons_per_pixel, solid=materials[0],
                           pore=materials[1], backing=backing, seed=seed)
        res = simulate_stack(solid, vox, st, progress=False)
        return np.asarray(res["eta"], np.float32), {"engine": "Monte Carlo", "electrons_per_pixel": electrons_per_pixel}
    from fibsynth.errors import FibsynthError
    from fibsynth.synth import shipped_model_for, synthesize

    if translation not in ("auto", "paired", "cyclegan", "projection"):
        raise FibsynthError(f"must be auto, paired, cyclegan or projection (got {translation!r})", param="translation")
    if translation in ("auto", "paired"):
        from fibsynth.fastsim.translator import load_paired

        tr = load_paired()
        try:
            tr.check(energy_kev, materials[0], materials[1])
            paired_ok = True
        except FibsynthError:
            if translation == "paired":
                raise
            paired_ok = False
        if paired_ok:
            _, mean = tr(np.asarray(solid), tuple(voxel_zyx), energy_kev, electrons_per_pixel=0, seed=seed,
                         solid=materials[0], pore=materials[1])
            return mean.astype(np.float32), {"engine": "fast path (projection + paired translator, expected image)",
                                             "model": str(tr.weights.name)}
    has_model = False
    if translation in ("auto", "cyclegan"):
        try:
            shipped_model_for(energy_kev, materials[0], materials[1])
            has_model = True
        except FibsynthError:
            if translation == "cyclegan":
                raise
    if has_model:
        _, img, rec = synthesize(solid, tuple(voxel_zyx), energy_kev, solid=materials[0], pore=materials[1], seed=seed,
                                translation="gan")
        return img, {"engine": "fast path (projection + shipped CycleGAN)", "model": rec["translation_model"]}
    from fibsynth.fastsim.projection import project

    img, _ = project(solid, tuple(voxel_zyx), energy_kev, solid=materials[0], pore=materials[1])
    return img.astype(np.float32), {"engine": "fast path (projection; no shipped translation model at this energy)"}


AUGMENT_STRENGTH = 1.0  # MicroscopeModel.sample: 1 = a typical FIB-SEM
_LOW, _SPAN = 0.1, 0.7  # the ideal image's 1-99 % range is mapped to [_LOW, _LOW + _SPAN] backscatter yield


def augment(img: np.ndarray, rng: np.random.Generator, noise_relative: float, labels: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Randomised microscope artifacts: a microscope drawn by :meth:`MicroscopeModel.sample` from ``rng`` and applied
    to ``img`` (rescaled so its 1-99 % gray range spans 0.7 of the detector's range). The dose is set so the noise at
    mid-gray is ``noise_relative`` (the real stack's noise sigma over its 1-99 % gray range, times a factor drawn in
    [0.7, 1.3]) of the gray range. Returns the image, ``labels`` moved with it (drift, line jitter) and the record."""
    from fibsynth.microscope import MicroscopeModel, apply

    x = img.astype(np.float64)
    lo, hi = np.percentile(x, [1, 99])
    x = _LOW + _SPAN * (x - lo) / max(hi - lo, 1e-9)
    model = MicroscopeModel.sample(rng, strength=AUGMENT_STRENGTH)
    rel = float(np.clip(noise_relative, 0.005, 0.5)) * float(rng.uniform(0.7, 1.3))
    # Poisson noise of yield eta at dose D * efficiency has sigma sqrt(eta / (D * eff)); at mid-gray it is rel * _SPAN
    mid = _LOW + _SPAN / 2
    dose = float(np.clip(mid / ((rel * _SPAN) ** 2 * model.detector.efficiency), 1.0, 1e9))
    model = model.model_copy(update={"detector": model.detector.model_copy(update={"electrons_per_pixel": dose})})
    res = apply(x, model, labels=labels)
    real = res.record["realised"]
    rec = {"model": "fibsynth.microscope.MicroscopeModel.sample + apply", "strength": AUGMENT_STRENGTH,
           "noise_relative": rel, "microscope": res.record["model"],
           "max_shift_px": float(np.abs(np.asarray(real["shifts_px"])).max()),
           "mean_blur_px": float(np.mean(real["blur_px"])), "mean_stripe_rms": float(np.mean(real["stripe_rms"]))}
    return res.image.astype(np.float32), res.labels, rec
