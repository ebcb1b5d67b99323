"""Step 3: matched training data -- ground-truth structures drawn around the estimates, imaged at the user's beam
energy and voxel size, with randomised microscope artifacts as augmentation.

Structures: leveled-wave (single level) or, when the estimate says hierarchical, two-level structures
(:mod:`fibsynth.structure`). Each structure's solid fraction and ligament diameter are drawn from a normal
distribution around the estimate with the estimate's uncertainty as standard deviation (at least
:data:`MIN_REL_SPREAD` relative, so the training set always spans some range, and at most :data:`MAX_REL_SPREAD`
relative: an estimate from one segmentation can carry a wide uncertainty -- phi 0.26 +- 0.12 once drew training
structures at phi 0.08-0.20 and that round scored 0.75 against 0.86), clipped to what the generators accept.

Imaging: the fast path (shine-through projection, plus the shipped projection -> Monte Carlo translation where one
exists for the energy and materials; for an SE detector with open pores the shipped paired SE translator where it
applies, else the SE projection: :func:`se_translation`) or, on request, the Monte Carlo.

Augmentation: the microscope stage's randomised forward model (:meth:`fibsynth.microscope.MicroscopeModel.sample`
at :data:`AUGMENT_STRENGTH`, then :func:`fibsynth.microscope.apply`): detector response, curtains, shading, drift
(the labels move with the image), charging and Poisson-Gaussian noise, with the dose set so the noise matches the
level measured in the real stack.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

MIN_REL_SPREAD = 0.08
MAX_REL_SPREAD = 0.25
#: the solid fractions a training structure (or one network of a two-level structure) is drawn within
PHI_RANGE = (0.08, 0.85)


def _clip_phi(v: float) -> float:
    return float(np.clip(v, *PHI_RANGE))


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
                    seed: int = 0, translation: str = "auto", detector: str = "bse",
                    slices: tuple[int, int] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Ideal (artifact-free) image stack of a structure and a record of how it was made. ``materials[1]`` may be
    ``vacuum`` (open pores): the projection then follows the beam down the pores (no translation model exists for
    open pores), the Monte Carlo flies electrons through them.

    ``translation`` (fast engine only): ``paired`` -- the paired translator's expected Monte Carlo image (noise-free:
    the microscope augmentation adds the real stack's noise; gold/epoxy, 1-4 keV); ``cyclegan`` -- the shipped
    CycleGAN for the energy; ``projection`` -- the shine-through projection alone; ``auto`` -- paired where it
    applies, else the shipped CycleGAN where one exists, else the projection.

    ``detector`` (the user's detector): ``bse`` (the default; everything above), or a secondary-electron detector:
    the Monte Carlo with that detector model (``se``, ``inlens``, ``et``;
    :class:`~fibsynth.physics.montecarlo.detectors.SignalDetector` at its defaults), or on the fast engine (open
    pores only: ``materials[1]`` vacuum) the shipped paired SE translator's expected image where it applies (the
    rule of :func:`fibsynth.pipeline.fast_stack`: its detector, solid, energy and 38 degrees incidence -- today
    in-lens, silicon, 2 keV; noise-free, the augmentation adds the real stack's noise), else the SE projection
    of open pores (:func:`fibsynth.fastsim.se_projection.project_se`; ``inlens``: straight-out pore view and the
    in-lens BSE share, ``se``: every escaping SE, no BSE). ``translation`` there: ``auto`` -- the translator where
    it applies, else the projection --, ``paired`` (an error where it does not apply), ``projection``;
    :func:`se_translation` decides, and the record says which and why (``translation``, ``translation_choice``).

    ``slices`` (k0, k1): image only those slices of ``solid`` (the slices behind k1 still shape them: what lies
    behind a face is seen through open pores); each imaged slice is the same as in the whole stack's image. The fast
    engine's SE models only (elsewhere a one-line error naming ``slices``)."""
    from fibsynth.errors import FibsynthError
    from fibsynth.physics.materials import is_vacuum

    if detector not in ("bse", "se", "inlens", "et"):
        raise FibsynthError(f"must be bse, se, inlens or et (got {detector!r})", param="detector")
    if slices is not None:
        if engine == "mc" or detector == "bse":
            raise FibsynthError("only for the fast engine's SE models (--engine fast with an SE detector)",
                                param="slices")
        k0, k1 = (int(v) for v in slices)
        if not (0 <= k0 < k1 <= np.asarray(solid).shape[0]):
            raise FibsynthError(f"need 0 <= k0 < k1 <= {np.asarray(solid).shape[0]} (got {k0}:{k1})",
                                param="slices")
        slices = (k0, k1)
    if engine == "mc":
        from fibsynth.config import VoxelSize
        from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack

        vox = VoxelSize(z=voxel_zyx[0], y=voxel_zyx[1], x=voxel_zyx[2])
        # open pores (vacuum): what lies beyond the last slice is more of the structure, not empty space
        backing = "repeat" if is_vacuum(materials[1]) else "pore"
        signal = None
        if detector != "bse":
            from fibsynth.physics.montecarlo.detectors import SignalDetector

            signal = SignalDetector(kind=detector)
        st = StackSettings(energy_kev=energy_kev, electrons_per_pixel=electrons_per_pixel, solid=materials[0],
                           pore=materials[1], backing=backing, seed=seed, signal=signal)
        res = simulate_stack(solid, vox, st, progress=False)
        rec = {"engine": "Monte Carlo", "electrons_per_pixel": electrons_per_pixel}
        if signal is not None:
            rec.update(signal.record())
        return np.asarray(res["eta"], np.float32), rec
    if detector != "bse":
        return _image_se(solid, voxel_zyx, energy_kev, materials, detector, translation, seed, slices)
    from fibsynth.synth import synthesize

    use = check_translation(translation, energy_kev, materials)
    if use == "paired":
        from fibsynth.fastsim.translator import load_paired

        tr = load_paired()
        _, mean = tr(np.asarray(solid), tuple(voxel_zyx), energy_kev, electrons_per_pixel=0, seed=seed,
                     solid=materials[0], pore=materials[1])
        return mean.astype(np.float32), {"engine": "fast path (projection + paired translator, expected image)",
                                         "model": str(tr.weights.name)}
    if use == "cyclegan":
        _, img, rec = synthesize(solid, tuple(voxel_zyx), energy_kev, solid=materials[0], pore=materials[1], seed=seed,
                                translation="gan")
        return img, {"engine": "fast path (projection + shipped CycleGAN)", "model": rec["translation_model"]}
    from fibsynth.fastsim.projection import project

    img, _ = project(solid, tuple(voxel_zyx), energy_kev, solid=materials[0], pore=materials[1])
    return img.astype(np.float32), {"engine": "fast path (projection; no shipped translation model at this energy)"}


@functools.lru_cache(maxsize=16)
def _flat_face_yields(solid: str, energy_kev: float, incidence_deg: float) -> tuple[float, float, float]:
    from fibsynth.fastsim.se_projection import flat_face_yields

    return flat_face_yields(solid, energy_kev, incidence_deg)  # bulk Monte Carlo, seed 0: a few seconds, once


#: the beam incidence of every fast image of the workflow (the projections' default)
INCIDENCE_DEG = 38.0


def se_translation(translation: str, energy_kev: float, materials: tuple[str, str], detector: str
                   ) -> tuple[str, str]:
    """(translation, why) of the fast engine's SE image of open pores (:func:`image_structure`): ``paired`` where
    the shipped paired SE translator (:func:`fibsynth.fastsim.load_paired` for ``detector``) applies -- its
    detector, solid (with vacuum pores), energy and incidence, the rule of :func:`fibsynth.pipeline.fast_stack` --
    for ``translation`` auto or paired, else ``projection`` (the SE projection alone). One-line
    :class:`FibsynthError` (naming ``translation``) for ``paired`` where the translator does not apply and for
    ``cyclegan`` (no CycleGAN exists for SE images); ``detector`` for et (no fast model) and filled pores. Cheap
    after the first call (the translator is loaded once): the workflow calls it before any step runs."""
    from fibsynth.errors import FibsynthError
    from fibsynth.physics.materials import is_vacuum

    if translation not in ("auto", "paired", "cyclegan", "projection"):
        raise FibsynthError(f"must be auto, paired, cyclegan or projection (got {translation!r})", param="translation")
    if detector == "et":
        raise FibsynthError("the Everhart-Thornley detector has no fast model: use engine mc", param="detector")
    if not is_vacuum(materials[1]):
        raise FibsynthError(f"the fast SE model images open pores only (got {materials[1]}-filled pores): give pore "
                            "vacuum, or use engine mc", param="detector")
    if translation == "cyclegan":
        raise FibsynthError(f"no CycleGAN exists for {detector} images: use auto, paired or projection",
                            param="translation")
    if translation == "projection":
        return "projection", "the SE projection alone, as asked"
    from fibsynth.fastsim import load_paired

    try:
        tr = load_paired(detector=detector)
        tr.check(energy_kev, materials[0], "vacuum", detector)
        rec = tr.summary()
        a = rec.get("incidence_deg")
        if a is not None and abs(float(a) - INCIDENCE_DEG) > 1e-6:
            raise FibsynthError(f"it is trained at {float(a):g} degrees incidence (the workflow images at "
                                f"{INCIDENCE_DEG:g})", param="incidence_deg")
    except FibsynthError as exc:
        if translation == "paired":
            raise FibsynthError(f"the paired SE translator does not apply ({exc.message}): use auto or projection",
                                param="translation") from None
        return "projection", f"the paired SE translator does not apply ({exc.message}): the SE projection alone"
    lo, hi = tr.energy_range
    energies = f"{lo:g} keV" if hi == lo else f"{lo:g}-{hi:g} keV"
    return "paired", (f"the paired SE translator ({'/'.join(rec['materials'])}, {tr.detector}, {energies}, "
                      f"{INCIDENCE_DEG:g} degrees, as trained)")


def se_translator_record(detector: str) -> dict[str, Any]:
    """The shipped SE translator's record (training data, seeds, measured fidelity;
    :meth:`fibsynth.fastsim.PairedTranslator.summary`) for a run's summary, without its noise law (the workflow
    uses the expected image: the augmentation adds the real stack's noise)."""
    from fibsynth.fastsim import load_paired

    return {k: v for k, v in load_paired(detector=detector).summary().items() if k != "noise_law"}


def se_translator_id(detector: str) -> str:
    """The shipped SE translator's identity for the step cache's keys: the first 16 hex digits of its weights'
    SHA-256 (a retrained translator makes new keys)."""
    import hashlib

    from fibsynth.fastsim import load_paired

    return hashlib.sha256(load_paired(detector=detector).weights.read_bytes()).hexdigest()[:16]


def _image_se(solid, voxel_zyx, energy_kev: float, materials, detector: str, translation: str, seed: int,
              slices: tuple[int, int] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The fast engine's SE image of an open-pore structure, of ``slices`` only if given (see
    :func:`image_structure`)."""
    use, why = se_translation(translation, energy_kev, materials, detector)
    if use == "paired":
        from fibsynth.fastsim import load_paired

        tr = load_paired(detector=detector)
        _, mean = tr(np.asarray(solid), tuple(voxel_zyx), energy_kev, electrons_per_pixel=0, seed=seed,
                     incidence_deg=INCIDENCE_DEG, solid=materials[0], pore="vacuum", detector=detector,
                     slices=slices)
        return mean.astype(np.float32), {
            "engine": f"fast path (SE projection + paired SE translator, expected image, {detector} detector)",
            "detector": detector, "translation": "paired", "translation_choice": why, "model": str(tr.weights.name)}
    from fibsynth.fastsim.se_projection import project_se

    yields = _flat_face_yields(materials[0], float(energy_kev), INCIDENCE_DEG)
    img, rec = project_se(np.asarray(solid), tuple(voxel_zyx), energy_kev, solid=materials[0], yields=yields,
                          incidence_deg=INCIDENCE_DEG, view="all" if detector == "se" else "straight",
                          bse_weight=0.0 if detector == "se" else 1.0, slices=slices)
    return img.astype(np.float32), {"engine": f"fast path (SE projection of open pores, {detector} detector)",
                                    "detector": detector, "view": rec["view"], "bse_weight": rec["bse_weight"],
                                    "delta_1": rec["delta_1"], "delta_2": rec["delta_2"],
                                    "translation": "projection", "translation_choice": why}


def fast_detector(detector: str, pore: str = "vacuum") -> str:
    """The detector whose fast model stands in for ``detector`` where the workflow needs a fast image (the
    calibration's simulations, the forward-consistency check): itself, and in-lens for Everhart-Thornley (no fast
    ET model; both see SE of the face and the open-pore walls). With filled pores (``--engine mc`` only) no fast SE
    model exists: the BSE projection stands in (an approximation: SE material contrast of an infiltrated face,
    like BSE, orders the phases by Z; both images are histogram-matched to the stack before use)."""
    from fibsynth.physics.materials import is_vacuum

    if detector != "bse" and not is_vacuum(pore):
        return "bse"
    return "inlens" if detector == "et" else detector


#: microscope-artifact strength (:meth:`fibsynth.microscope.MicroscopeModel.sample`) of the calibration's images for
#: secondary-electron images of open pores: 0, the real stack's measured noise alone. With the training data's
#: randomly drawn artifacts (strength 1) the first pass of one and the same simulated image read 0.51-0.92 solid over
#: six draws (the 2-class threshold of an SE image of open pores sits on the broad gray distribution of the pores'
#: insides, which a drawn response curve or shading moves far), so one draw decided the estimate; the translator's
#: image of stack 302's true structure with the measured noise alone read 0.636-0.651 (four draws), the real stack
#: 0.645. Defined here, not in estimate.py: estimate imports this module, so this one must not import estimate
CALIBRATION_AUGMENT_STRENGTH_SE = 0.0


#: nm of structure behind the last slice that the calibration's SE images of open pores are made with
#: (:func:`behind_slices`). A real stack's last slice has more sample behind it; a simulated structure of n slices
#: imaged alone has nothing there, and through open pores the SE image sees that: the paired SE translator's image of
#: the in-lens silicon stack 302's true structure (32 slices, 5 nm) read 0.21 and 0.0 solid in the first pass of its
#: last two slices and 0.612 over the stack, against 0.73 and 0.680 with the 40 slices behind it that the Monte Carlo
#: stack had (docs/reconstruct.md, "se16"). 80 nm: the mean absolute difference of the last slice's image from the
#: one with the true 200 nm behind fell from 0.22 (nothing behind) to 0.05 (40 nm) and 0.02 (80 nm) of the gray range
SE_BEHIND_NM = 80.0


def behind_slices(detector: str, voxel_zyx) -> int:
    """Slices of structure to draw behind a simulated stack's last slice, seen through its open pores but not imaged
    themselves, so that its last slices look like a real stack's, which has sample behind them: ``ceil(SE_BEHIND_NM / slice)`` for the fast
    SE models of open pores (``detector`` as :func:`fast_detector` returns it: ``se``, ``inlens``), 0 for backscatter
    (its images and cache keys as before)."""
    if detector == "bse":
        return 0
    return int(np.ceil(SE_BEHIND_NM / float(voxel_zyx[0]) - 1e-9))


def calibration_image(p: dict[str, Any], shape, voxel_zyx, energy_kev: float, *, materials: tuple[str, str],
                      translation: str, detector: str, seed: int, rng: np.random.Generator, noise_relative: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """One simulated stack for the estimate's calibration (:func:`fibsynth.reconstruct.estimate.calibrate`): the
    structure of parameters ``p`` and ``shape``, imaged on the fast engine for ``detector`` (as :func:`fast_detector`
    returns it) and augmented; returns ``(labels, image)``. Backscatter: imaged alone and augmented with randomly
    drawn artifacts like the training data (as before se16). Secondary electrons of open pores: drawn with
    :func:`behind_slices` more slices, of which only the front ``shape[0]`` are imaged (the real stack has sample
    behind its last slice),
    then only the measured noise added, at exactly the measured level (augmentation strength
    :data:`CALIBRATION_AUGMENT_STRENGTH_SE`, no spread of the noise level)."""

    n = int(shape[0])
    behind = behind_slices(detector, voxel_zyx)
    solid = make_structure(p, (n + behind,) + tuple(int(v) for v in shape[1:]), voxel_zyx)
    # the slices behind are drawn and seen through the pores, not imaged themselves (the same image of the front n)
    ideal, _ = image_structure(solid, voxel_zyx, energy_kev, engine="fast", materials=materials, seed=seed,
                               translation=translation, detector=detector, slices=(0, n) if behind else None)
    solid = solid[:n]
    se = detector != "bse"
    img, lbl, _ = augment(ideal, rng, noise_relative, labels=solid.astype(np.uint8),
                          strength=CALIBRATION_AUGMENT_STRENGTH_SE if se else None, noise_spread=not se)
    return lbl.astype(solid.dtype), img


def check_translation(translation: str, energy_kev: float, materials: tuple[str, str]) -> str:
    """The fast path's translation that ``translation`` resolves to at this energy and material pair (``paired``,
    ``cyclegan`` or ``projection``; see :func:`image_structure`), or a one-line :class:`FibsynthError` when the one
    asked for does not apply (``paired`` outside its energy range or materials, ``cyclegan`` without a shipped
    model). Cheap: the workflow calls it before any step runs."""
    from fibsynth.errors import FibsynthError
    from fibsynth.synth import shipped_model_for

    if translation not in ("auto", "paired", "cyclegan", "projection"):
        raise FibsynthError(f"must be auto, paired, cyclegan or projection (got {translation!r})", param="translation")
    if translation in ("auto", "paired"):
        from fibsynth.fastsim.translator import load_paired

        try:
            load_paired().check(energy_kev, materials[0], materials[1])
            return "paired"
        except FibsynthError:
            if translation == "paired":
                raise
    if translation in ("auto", "cyclegan"):
        try:
            shipped_model_for(energy_kev, materials[0], materials[1])
            return "cyclegan"
        except FibsynthError:
            if translation == "cyclegan":
                raise
    return "projection"


def write_set(d, params: list[dict[str, Any]], n_train: int, make, image, measure, noise_relative: float,
              rng: np.random.Generator) -> dict[str, Any]:
    """The generate step of both workflows (binary and n phases): for each parameter set, ``make(p)`` -> label
    volume, ``image(labels, p)`` -> (ideal image, imaging record), :func:`augment` with ``rng`` at the real stack's
    ``noise_relative``; writes ``train_<i>`` / ``val_<i>`` ``_img.npy`` and ``_lbl.npy`` (the first ``n_train`` are
    training structures), ``example_ideal.npy`` (the first structure's middle slice) and ``structures.json`` (per
    structure: name, parameters, imaging and augmentation records, ``measure(labels)``) into folder ``d``."""
    import json
    from pathlib import Path

    d = Path(d)
    recs = []
    for i, p in enumerate(params):
        lab = make(p)
        ideal, irec = image(lab, p)
        img, lbl, arec = augment(ideal, rng, noise_relative, labels=np.asarray(lab).astype(np.uint8))
        tag = f"train_{i}" if i < n_train else f"val_{i - n_train}"
        np.save(d / f"{tag}_img.npy", np.ascontiguousarray(img))
        np.save(d / f"{tag}_lbl.npy", np.ascontiguousarray(lbl.astype(np.uint8)))
        if i == 0:
            np.save(d / "example_ideal.npy", np.ascontiguousarray(ideal[ideal.shape[0] // 2]))
        recs.append({"name": tag, "parameters": p, "imaging": irec, "augmentation": arec, "measured": measure(lab)})
    (d / "structures.json").write_text(json.dumps(recs))
    return {"n": len(recs)}


AUGMENT_STRENGTH = 1.0  # MicroscopeModel.sample: 1 = a typical FIB-SEM
_LOW, _SPAN = 0.1, 0.7  # the ideal image's 1-99 % range is mapped to [_LOW, _LOW + _SPAN] backscatter yield


def augment(img: np.ndarray, rng: np.random.Generator, noise_relative: float, labels: np.ndarray | None = None,
            strength: float | None = None, noise_spread: bool = True
            ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Randomised microscope artifacts: a microscope drawn by :meth:`MicroscopeModel.sample` from ``rng`` at
    ``strength`` (default :data:`AUGMENT_STRENGTH`; 0: an ideal linear detector, no curtains, shading, drift or blur --
    the measured noise alone) and applied to ``img`` (rescaled so its 1-99 % gray range spans 0.7 of the detector's
    range). The dose is set so the noise at mid-gray is ``noise_relative`` (the real stack's noise sigma over its
    1-99 % gray range, times a factor drawn in [0.7, 1.3]; ``noise_spread=False``: exactly ``noise_relative``) of the
    gray range. Returns the image, ``labels`` moved with it (drift, line jitter) and the record."""
    from fibsynth.microscope import MicroscopeModel, apply

    x = img.astype(np.float64)
    lo, hi = np.percentile(x, [1, 99])
    x = _LOW + _SPAN * (x - lo) / max(hi - lo, 1e-9)
    strength = AUGMENT_STRENGTH if strength is None else float(strength)
    model = MicroscopeModel.sample(rng, strength=strength)
    rel = float(np.clip(noise_relative, 0.005, 0.5)) * (float(rng.uniform(0.7, 1.3)) if noise_spread else 1.0)
    # Poisson noise of yield eta at dose D * efficiency has sigma sqrt(eta / (D * eff)); at mid-gray it is rel * _SPAN
    mid = _LOW + _SPAN / 2
    dose = float(np.clip(mid / ((rel * _SPAN) ** 2 * model.detector.efficiency), 1.0, 1e9))
    model = model.model_copy(update={"detector": model.detector.model_copy(update={"electrons_per_pixel": dose})})
    res = apply(x, model, labels=labels)
    real = res.record["realised"]
    rec = {"model": "fibsynth.microscope.MicroscopeModel.sample + apply", "strength": strength,
           "noise_relative": rel, "microscope": res.record["model"],
           "max_shift_px": float(np.abs(np.asarray(real["shifts_px"])).max()),
           "mean_blur_px": float(np.mean(real["blur_px"])), "mean_stripe_rms": float(np.mean(real["stripe_rms"]))}
    return res.image.astype(np.float32), res.labels, rec
