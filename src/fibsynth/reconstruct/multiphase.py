"""``fibsynth reconstruct --phases N`` / ``--materials a,b,c``: the reconstruction of a stack of three or more phases
(issue 17, item 2; the binary workflow is :mod:`fibsynth.reconstruct.workflow`, unchanged).

Steps (content-cached like the binary ones, under ``OUT/work/cache``):

1. ``inspect``    the binary workflow's inspection and corrections (the same step, shared cache);
2. ``estimate``   first pass: multi-Otsu and n-means (1-D k-means from the multi-Otsu classes) of the median-filtered
                  stack, the k-th darkest gray class given to the k-th darkest material (the materials' bulk
                  backscatter coefficients at the beam energy, Castaing's rule for compounds); per phase its volume
                  fraction and mean diameter (3D local thickness), and the diameter of the solid network (all labels
                  but 0), each with an uncertainty (octants' standard error combined with half the spread between
                  the two methods, as in the binary estimate);
3. ``generate``   matched multiphase structures drawn around the estimates (:mod:`fibsynth.structure.multiphase`:
                  two-field for three phases -- field A the solid network, field B the part of it that is label 2,
                  B's ligament calibrated once on a probe so that label 2's diameter matches --, particles for
                  other n), imaged by the n-phase fast path (:func:`fibsynth.fastsim.multiphase.project_labels`) or
                  the Monte Carlo with one material per label, augmented with the microscope model's artifacts;
4. ``adapt`` / ``translate``  the binary workflow's adaptation (histogram matching by default);
5. ``train``      an n-class U-Net (Dice + cross-entropy), validated on held-out synthetic structures against
                  multi-Otsu on the same data;
6. ``predict``    per-class probabilities of the whole stack, block by block; the most probable class per voxel and
                  its confidence (n P_max - 1) / (n - 1) (0 = all classes equally likely, 1 = certain);
7. ``evaluate``   per phase: fraction, diameter, isotropy errors of the U-Net's and multi-Otsu's labels (and per-phase
                  Dice, MDS, MP against a ground truth, for benchmarks).

Not done for n phases (the binary workflow has them): the forward-model calibration of the fractions and the
re-estimate / regenerate round.
"""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from fibsynth import __version__
from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.reconstruct.settings import ReconstructSettings

MAX_PHASES = 5  # multi-Otsu's exhaustive search (skimage) and the U-Net's classes stay small
#: candidates of the generic phases (``--phases N`` without ``--materials``): elements spread over the eta range
GENERIC_ELEMENTS = ("C", "Al", "Si", "Ti", "Fe", "Ni", "Cu", "Zr", "Mo", "Ag", "Sn", "W", "Pt", "Au")


class MultiphaseSettings(ReconstructSettings):
    """:class:`ReconstructSettings` with ``phases`` (3..5) and/or one material per label (``materials``; label 0 the
    filling, e.g. ``("epoxy", "Ni", "Zr0.852Y0.148O1.926:5.9")``). ``solid`` and ``pore`` are not used: without
    ``materials`` label 0 is ``pore`` and labels 1..n-1 are generic elements evenly spread in backscatter between
    ``pore`` and ``solid`` (only their order and contrast matter once the histogram is adapted). ``translation``:
    ``auto`` or ``projection`` (both: the n-phase projection alone; no translation model exists for n phases)."""

    phases: int | None = Field(None, ge=3, le=MAX_PHASES, description="number of phases (labels 0..n-1)")
    materials: tuple[str, ...] | None = Field(None, description="material per label, label 0 the filling")
    seg_seeds: int = Field(1, ge=1, le=8, description="one network (choosing among seeds is binary only)")
    round2_init: Literal["scratch"] = Field("scratch", description="round 2's network starts from random weights "
                                            "(the warm start from round 1's is measured for two phases only)")
    round2_steps: float = Field(1.0, ge=1, le=1, description="round 2 trains as long as round 1")
    reestimate_bias: Literal[False] = Field(False, description="the n-phase re-estimate is not corrected by the "
                                            "network's bias on held-out stacks (measured for two phases only)")

    @model_validator(mode="after")
    def _check_phases(self):
        if self.materials is not None:
            n = len(self.materials)
            # FibsynthError (not a ValueError) passes through pydantic unchanged: one line naming the parameter
            if not 3 <= n <= MAX_PHASES:
                raise FibsynthError(f"give 3 to {MAX_PHASES} materials, one per label (got {n}); two materials are "
                                    "the binary workflow (solid, pore)", param="materials")
            if self.phases is not None and self.phases != n:
                raise FibsynthError(f"{self.phases} phases but {n} materials were given", param="phases")
        elif self.phases is None:
            raise FibsynthError("give the number of phases or one material per label (materials)", param="phases")
        if self.translation not in ("auto", "projection"):
            # no paired translator or CycleGAN exists for n phases: the training images are the n-phase projection
            raise FibsynthError(f"{self.translation!r} is not available for three or more phases (their training "
                                "images are the n-phase projection, with no translation model): leave it at auto "
                                "or give projection", param="translation")
        if self.tta != 1:
            raise FibsynthError(f"test-time augmentation ({self.tta}) is not available for three or more phases (the "
                                "n-class prediction has no averaged form yet): leave it at 1", param="tta")
        if self.seg_seeds != 1:
            raise FibsynthError(f"choosing among {self.seg_seeds} U-Nets is not available for three or more phases (the "
                                "choice re-images binary reconstructions): leave it at 1", param="seg_seeds")
        if self.detector != "bse":
            raise FibsynthError(f"the {self.detector} detector is not available for three or more phases (the n-phase "
                                "images are BSE): give bse", param="detector")
        return self

    @property
    def n(self) -> int:
        return len(self.materials) if self.materials is not None else int(self.phases)


def bulk_eta(material: str, energy_kev: float) -> float:
    """Bulk backscatter coefficient (Hunger-Kuechler, Castaing's rule for compounds; 0 for vacuum)."""
    from fibsynth.physics.backscatter import hunger_kuechler
    from fibsynth.physics.materials import is_vacuum

    return 0.0 if is_vacuum(material) else float(hunger_kuechler(material, energy_kev))


def resolve_materials(s: MultiphaseSettings, energy_kev: float) -> tuple[str, ...]:
    """The material of each label (see :class:`MultiphaseSettings`); every name checked (one line, ``materials``)."""
    from fibsynth.fastsim import check_materials

    if s.materials is not None:
        return check_materials(s.materials)
    lo, hi = bulk_eta(s.pore, energy_kev), bulk_eta(s.solid, energy_kev)
    etas = {el: bulk_eta(el, energy_kev) for el in GENERIC_ELEMENTS}
    out = [s.pore]
    for k in range(1, s.n):
        target = lo + (hi - lo) * k / (s.n - 1)
        best = min((el for el in etas if el not in out), key=lambda el: abs(etas[el] - target))
        out.append(s.solid if k == s.n - 1 else best)
    return tuple(out)


def brightness_order(materials, energy_kev: float) -> list[int]:
    """The labels from darkest to brightest by bulk backscatter coefficient."""
    etas = [bulk_eta(m, energy_kev) for m in materials]
    return [int(i) for i in np.argsort(etas, kind="stable")]


# ------------------------------------------------------------------------------------------------ first pass

def nmeans_thresholds(img: np.ndarray, classes: int, start: np.ndarray, iterations: int = 50) -> np.ndarray:
    """1-D k-means (Lloyd) of the gray values from the multi-Otsu thresholds ``start``: the thresholds midway
    between the final class means (on a 1024-bin histogram)."""
    v = np.asarray(img, np.float64).ravel()
    counts, edges = np.histogram(v, bins=1024)
    centres = 0.5 * (edges[1:] + edges[:-1])
    t = np.sort(np.asarray(start, np.float64))
    for _ in range(iterations):
        cls = np.digitize(centres, t)
        means = np.array([np.average(centres[cls == c], weights=counts[cls == c]) if counts[cls == c].sum() else np.nan
                          for c in range(classes)])
        if not np.isfinite(means).all():
            break
        nt = 0.5 * (means[1:] + means[:-1])
        if np.allclose(nt, t):
            break
        t = nt
    return t


def first_pass(img: np.ndarray, materials, energy_kev: float) -> dict[str, np.ndarray]:
    """Multi-Otsu and n-means labels of the stack after a 3x3 median per slice; gray class k (k-th darkest) given to
    the k-th darkest material."""
    from scipy.ndimage import median_filter

    from fibsynth.segment.baseline import multiotsu_thresholds

    n = len(materials)
    lut = np.asarray(brightness_order(materials, energy_kev), np.int64)
    sm = median_filter(img, size=(1, 3, 3))
    t = multiotsu_thresholds(sm, n)
    tk = nmeans_thresholds(sm, n, t)
    return {"multi-Otsu": lut[np.digitize(sm, t)].astype(np.uint8),
            "n-means": lut[np.digitize(sm, tk)].astype(np.uint8)}


def _phase_stats(seg: np.ndarray, voxel_zyx, n: int) -> dict[str, float]:
    from fibsynth.metrics import mean_ligament_diameter

    st: dict[str, float] = {}
    for i in range(n):
        a = (seg == i)
        st[f"fraction_{i}"] = float(a.mean())
        st[f"diameter_{i}_nm"] = float(mean_ligament_diameter(a.astype(np.uint8), voxel_zyx)) if 0 < a.mean() < 1 \
            else float("nan")
    net = seg > 0
    st["network_diameter_nm"] = float(mean_ligament_diameter(net.astype(np.uint8), voxel_zyx)) if 0 < net.mean() < 1 \
        else float("nan")
    return st


def estimate_phases(segs: dict[str, np.ndarray], voxel_zyx, n: int) -> dict[str, Any]:
    """Per-phase fractions and diameters with uncertainties from one or several label volumes of the stack (the
    binary estimate's rule: octants' standard error combined in quadrature with half the spread between methods)."""
    from fibsynth.reconstruct.estimate import _crop, _octant_slices

    voxel_zyx = tuple(float(v) for v in voxel_zyx)
    per_method, sem = {}, {}
    for name, seg in segs.items():
        seg = _crop(np.asarray(seg, np.uint8))
        whole = _phase_stats(seg, voxel_zyx, n)
        octs = ([_phase_stats(seg[sl], voxel_zyx, n) for sl in _octant_slices(seg.shape)]
                if max(seg.shape) >= 16 else [])
        per_method[name] = whole
        for k in whole:
            vals = np.array([o[k] for o in octs if np.isfinite(o[k])])
            e = float(vals.std(ddof=1) / math.sqrt(vals.size)) if vals.size > 1 else abs(0.1 * whole[k])
            sem.setdefault(k, []).append(e)
    q = {}
    for k in next(iter(per_method.values())):
        vals = np.array([per_method[m][k] for m in per_method], np.float64)
        if not np.isfinite(vals).any():
            continue
        value = float(np.nanmean(vals))
        spread = float(np.nanmax(vals) - np.nanmin(vals)) if vals.size > 1 else 0.0
        u = math.sqrt(float(np.nanmean(sem[k])) ** 2 + (0.5 * spread) ** 2)
        q[k] = {"value": value, "uncertainty": u, "by_method": {m: per_method[m][k] for m in per_method}}
    return {"quantities": q, "methods": list(segs), "phases": n}


# ------------------------------------------------------------------------------------------------ generation

def _b_ligament(fractions, lig_a: float, target_d2: float, voxel_zyx, seed: int) -> float:
    """Field B's ligament for a two-field structure whose label 2 has mean diameter ``target_d2``: one correction
    of the first guess (B = target) by the ratio measured on a probe (24 x 64 x 64)."""
    from fibsynth.metrics import mean_ligament_diameter
    from fibsynth.structure import multiphase

    min_lig = 2.05 * max(voxel_zyx)
    guess = max(target_d2, min_lig)
    try:
        probe = multiphase((24, 64, 64), tuple(voxel_zyx), fractions, ligament_nm=(max(lig_a, min_lig), guess),
                           seed=seed)
        d2 = float(mean_ligament_diameter((probe == 2).astype(np.uint8), voxel_zyx))
    except FibsynthError:
        return guess
    if not (np.isfinite(d2) and d2 > 0):
        return guess
    return float(np.clip(guess * target_d2 / d2, min_lig, 8 * guess))


def draw_parameters(est: dict[str, Any], n: int, count: int, voxel_zyx, seed: int) -> list[dict[str, Any]]:
    """``count`` multiphase structure parameter sets around the estimate (normal draws with the uncertainties, at
    least 8 % relative; fractions renormalised to sum 1, each in [0.04, 0.9])."""
    from fibsynth.reconstruct.generate import MIN_REL_SPREAD

    rng = np.random.default_rng((seed, 37))
    q = est["quantities"]
    min_lig = 2.05 * max(voxel_zyx)

    def draw(key: str, default: float) -> float:
        if key not in q:
            return default
        v, u = q[key]["value"], q[key]["uncertainty"]
        return float(rng.normal(v, max(u, MIN_REL_SPREAD * abs(v))))

    out = []
    for _ in range(count):
        s = int(rng.integers(0, 2**31 - 1))
        f = np.clip([draw(f"fraction_{i}", 1.0 / n) for i in range(n)], 0.04, 0.9)
        f = f / f.sum()
        f = np.round(f / f.sum(), 4)
        f[-1] = round(1.0 - float(f[:-1].sum()), 4)
        fr = [float(x) for x in f]
        if n == 3:
            lig_a = max(draw("network_diameter_nm", 8 * max(voxel_zyx)), min_lig)
            d2 = max(draw("diameter_2_nm", lig_a), min_lig)
            out.append({"kind": "two-field", "fractions": fr, "ligament_nm": [lig_a, _b_ligament(fr, lig_a, d2, voxel_zyx, s)],
                        "target_diameter_2_nm": d2, "seed": s})
        else:
            radii = [float(max(draw(f"diameter_{i}_nm", 8 * max(voxel_zyx)) / 2.0, 1.01 * max(voxel_zyx)))
                     for i in range(1, n)]
            out.append({"kind": "particles", "fractions": fr, "radius_nm": radii, "seed": s})
    return out


def make_structure(p: dict[str, Any], shape, voxel_zyx) -> np.ndarray:
    from fibsynth.structure import multiphase

    if p["kind"] == "two-field":
        return multiphase(shape, tuple(voxel_zyx), p["fractions"], ligament_nm=tuple(p["ligament_nm"]), seed=p["seed"])
    return multiphase(shape, tuple(voxel_zyx), p["fractions"], kind="particles",
                      particle_radius_nm=tuple(p["radius_nm"]), seed=p["seed"])


def image_labels(lab: np.ndarray, voxel_zyx, energy_kev: float, materials, *, engine: str = "fast",
                 electrons_per_pixel: int = 20, seed: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """Ideal image stack of a label volume, one material per label: the n-phase projection or the Monte Carlo."""
    from fibsynth.physics.materials import is_vacuum

    if engine == "mc":
        from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
        from fibsynth.pipeline import montecarlo_stack

        backing = "repeat" if is_vacuum(materials[0]) else "pore"
        st = StackSettings(beam=Beam(energy_kev=energy_kev), geometry=StackGeometry(materials=list(materials),
                                                                                    backing=backing),
                           electrons_per_pixel=electrons_per_pixel, seed=seed)
        img = montecarlo_stack(lab, VoxelSize(z=voxel_zyx[0], y=voxel_zyx[1], x=voxel_zyx[2]), st)
        return np.asarray(img.data, np.float32), {"engine": "Monte Carlo", "electrons_per_pixel": electrons_per_pixel}
    from fibsynth.fastsim.multiphase import project_labels

    img, _ = project_labels(lab, tuple(voxel_zyx), energy_kev, list(materials))
    return img.astype(np.float32), {"engine": "fast path (n-phase projection, one material per label)"}


# ------------------------------------------------------------------------------------------------ prediction

def predict_blocks_phases(model_dir: Path, stack_npy: Path, out_npy: Path, n: int, *, block: int = 32,
                          device: str = "cpu") -> dict:
    """Per-class probabilities (z, n, y, x) of a stack stored as ``.npy`` into a memory-mapped ``out_npy``, block by
    block (as the binary :func:`fibsynth.reconstruct.workflow.predict_blocks`)."""
    from fibsynth.ml.runtime import resolved_device
    from fibsynth.reconstruct.workflow import predict_batch
    from fibsynth.segment.infer import predict_array
    from fibsynth.segment.model import load_model

    dev = resolved_device(device)
    model = load_model(str(model_dir), dev)
    src = np.load(stack_npy, mmap_mode="r")
    out = np.lib.format.open_memmap(out_npy, mode="w+", dtype=np.float32, shape=(src.shape[0], n) + src.shape[1:])
    b = max(1, int(block))
    for z0 in range(0, src.shape[0], b):
        z1 = min(z0 + b, src.shape[0])
        out[z0:z1] = predict_array(model, src, block=block, z_range=(z0, z1), probabilities=True, device=dev,
                                   batch=predict_batch(dev))
    out.flush()
    del out
    return {"blocks": -(-src.shape[0] // b)}


def confidence(prob: np.ndarray) -> np.ndarray:
    """(n P_max - 1) / (n - 1) per voxel of (z, n, y, x) probabilities: 0 = every class equally likely, 1 = certain."""
    n = prob.shape[1]
    return ((n * prob.max(axis=1) - 1.0) / (n - 1)).astype(np.float32)


def moved_phases(old: dict[str, Any], new: dict[str, Any], n: int) -> list[str]:
    """The phase fractions and the network diameter whose new value differs from the old one by more than the larger
    of the two uncertainties."""
    out = []
    for k in [f"fraction_{i}" for i in range(n)] + ["network_diameter_nm"]:
        a, b = old["quantities"].get(k), new["quantities"].get(k)
        if a and b and abs(a["value"] - b["value"]) > max(a["uncertainty"], b["uncertainty"]):
            out.append(k)
    return out


def forward_consistency_phases(seg: np.ndarray, real: np.ndarray, voxel_zyx, energy_kev: float, materials,
                               smooth_px: float = 1.0) -> float:
    """:func:`fibsynth.reconstruct.estimate.forward_consistency` for n phases: the segmentation imaged again by the
    n-phase projection, mapped onto the real stack's histogram, Pearson r with the real stack (both smoothed
    in-plane), on the estimates' central crop. Label-free; compares reconstructions of the same kind."""
    return forward_consistency_phases_octants(seg, real, voxel_zyx, energy_kev, materials, smooth_px)["r"]


def forward_consistency_phases_octants(seg: np.ndarray, real: np.ndarray, voxel_zyx, energy_kev: float, materials,
                                       smooth_px: float = 1.0) -> dict[str, Any]:
    """:func:`forward_consistency_phases` of the whole crop and of each octant (for
    :func:`fibsynth.reconstruct.estimate.choose_round`)."""
    from fibsynth.fastsim.multiphase import project_labels
    from fibsynth.reconstruct.estimate import _crop, correlation_octants

    sg = _crop(np.asarray(seg, np.uint8))
    r = _crop(np.asarray(real, np.float32))
    img, _ = project_labels(sg, tuple(voxel_zyx), energy_kev, list(materials))
    return correlation_octants(r, img, smooth_px)


# ------------------------------------------------------------------------------------------------ the workflow

def reconstruct_phases(real_path: str | Path, out_dir: str | Path, s: MultiphaseSettings, *,
                       truth: str | Path | None, quiet: bool, work_dir: str | Path | None,
                       threads: dict[str, Any] | None = None) -> dict[str, Any]:
    """The n-phase workflow (module docstring); :func:`fibsynth.reconstruct.reconstruct` calls it for
    :class:`MultiphaseSettings` inside :func:`fibsynth.reconstruct.workflow.thread_scope`, whose record of the
    thread choice is ``threads``."""
    from fibsynth.reconstruct import adapt as A
    from fibsynth.reconstruct import generate as G
    from fibsynth.reconstruct.workflow import (NOT_KEYED, WORK, _file_id, _save, adapt_step, auto_region_line,
                                               drop_abandoned_partials, fill_region, inspect_step, meta_key,
                                               open_run, read_real, resolve_align_region, set_names, summary_key,
                                               synth_plan)

    real_path, out = Path(real_path), Path(out_dir)
    t_start = time.perf_counter()
    n = s.n
    raw, voxel, energy, energy_note, desc = read_real(real_path, s)
    materials = resolve_materials(s, energy)
    truth_arr = None
    if truth is not None:
        from fibsynth.io import read_labels

        truth_arr = np.asarray(read_labels(truth, n=n).data, np.uint8)
        if truth_arr.shape != raw.shape:
            raise FibsynthError(f"shape {truth_arr.shape} differs from the stack's {raw.shape}", truth, param="truth")
    bad = [c for c in s.correct if c not in ("align", "destripe", "flatten")]
    if bad:
        raise FibsynthError(f"unknown correction(s) {', '.join(bad)} (choose from align, destripe, flatten)",
                            param="correct")
    from fibsynth.ml.runtime import resolved_device

    resolved_device(s.device)  # an unknown or absent device: one line before anything runs
    # a rectangle inside the slices (the alignment fill is checked once it is found); auto: the band found, or one line
    align_region, auto_region = resolve_align_region(s.align_region, raw, real_path, quiet=quiet)
    console, steps, threads = open_run(out, quiet, work_dir, threads)
    vz = voxel.zyx()
    console.print(f"{n} phases: " + ", ".join(f"{i} = {m}" for i, m in enumerate(materials)))

    # 1. inspect (the binary workflow's step: same key, shared cache) ----------------------------------------
    k_in, d_in, real, insp = inspect_step(steps, raw, real_path, vz, s.correct, align_region, auto_region)
    if auto_region is not None:
        console.print(auto_region_line(insp["drift_region_auto"]))
    truth_arr, offset, fill_note = fill_region(insp, truth_arr, console)

    # 2. estimate ----------------------------------------------------------------------------------------------
    def do_estimate(d: Path) -> dict:
        segs = first_pass(real, materials, energy)
        est = estimate_phases(segs, vz, n)
        est["brightness_order"] = brightness_order(materials, energy)
        (d / "estimate.json").write_text(json.dumps(est))
        _save(d / "multiotsu.npy", segs["multi-Otsu"])
        return {}

    k_e, d_e, _ = steps("phases_estimate", {"seed": s.seed, "energy": energy, "materials": list(materials)},
                        {"real": k_in}, do_estimate, f"estimating the {n} phases (multi-Otsu, n-means)")
    est = json.loads((d_e / "estimate.json").read_text())

    synth_shape, method, gan_plan, seg_ts, seg_plan = synth_plan(s, real.shape)
    seg_ts = type(seg_ts)(**{**seg_ts.model_dump(), "classes": n})

    adapt_model: dict[str, Any] = {}  # the adaptation model of round 1, reused by round 2 (as the binary workflow)

    def one_round(r: int, est: dict, k_est: str) -> dict[str, Any]:
        """Steps 3-6 around an estimate."""
        # 3. generate ------------------------------------------------------------------------------------------
        def do_generate(d: Path) -> dict:
            return G.write_set(
                d, draw_parameters(est, n, s.structures + s.val_structures, vz, s.seed + 1000 * r), s.structures,
                lambda p: make_structure(p, synth_shape, vz),
                lambda lab, p: image_labels(lab, vz, energy, materials, engine=s.engine,
                                            electrons_per_pixel=s.electrons_per_pixel, seed=p["seed"] % 2**31),
                lambda lab: _phase_stats(lab, vz, n), insp["noise_relative"], np.random.default_rng((s.seed, r, 7)))

        gen_params = {"structures": s.structures, "val": s.val_structures, "shape": list(synth_shape),
                      "voxel": list(vz), "energy": energy, "engine": s.engine, "epp": s.electrons_per_pixel,
                      "materials": list(materials), "seed": s.seed,
                      "augment": {"model": "fibsynth.microscope", "strength": G.AUGMENT_STRENGTH}}
        if r > 0:  # round 1 keeps the key it had before rounds existed
            gen_params["round"] = r
        k_g, d_g, _ = steps("phases_generate", gen_params, {"estimate": k_est}, do_generate,
                            f"generating {s.structures}+{s.val_structures} matched {n}-phase synthetic stacks {synth_shape}")
        structures = json.loads((d_g / "structures.json").read_text())

        # 4. adapt -------------------------------------------------------------------------------------------------
        distances = None
        k_imgs, d_imgs = k_g, d_g
        if method is not None:
            ad = adapt_step(steps, s, method, gan_plan, real, k_in, {"key": k_g, "dir": d_g}, adapt_model)
            k_imgs, d_imgs, distances = ad["key"], ad["dir"], ad["distances"]

        # 5. train -------------------------------------------------------------------------------------------------
        def do_train(d: Path) -> dict:
            from fibsynth.segment.train import fit

            ti = [np.load(d_imgs / f"{nm}_img.npy") for nm in set_names(d_imgs, "train")]
            tl = [np.load(d_imgs / f"{nm}_lbl.npy") for nm in set_names(d_imgs, "train")]
            vi = [np.load(d_imgs / f"{nm}_img.npy") for nm in set_names(d_imgs, "val")]
            vl = [np.load(d_imgs / f"{nm}_lbl.npy") for nm in set_names(d_imgs, "val")]
            with A.quiet_lightning():
                rec = fit(ti, tl, d / "model", seg_ts, val_images=vi, val_labels=vl, verbose=False, progress=False)
            return {"best_val_mds": rec.get("best_val_mds"), "val_multiotsu_mds": rec.get("otsu_val_mds"),
                    "epochs_run": rec.get("epochs_run"), "steps_run": rec.get("steps_run"),
                    "history": rec.get("history", [])}

        k_t, d_t, rec = steps("phases_train", {"settings": seg_ts.model_dump(mode="json", exclude=NOT_KEYED)}, {"images": k_imgs}, do_train,
                              f"training the {n}-class {s.mode.upper()} U-Net ({seg_plan['optimizer_steps']} optimizer "
                              f"steps of {seg_plan['batch']} patches)")
        tr = rec["result"]
        if tr["best_val_mds"] is not None and tr["val_multiotsu_mds"] is not None and \
                tr["best_val_mds"] < tr["val_multiotsu_mds"]:
            console.print(f"[bold red]warning[/] the U-Net's validation MDS {tr['best_val_mds']:.3f} is below "
                          f"multi-Otsu's {tr['val_multiotsu_mds']:.3f} on the same held-out synthetic data")

        # 6. predict -----------------------------------------------------------------------------------------------
        def do_predict(d: Path) -> dict:
            return predict_blocks_phases(d_t / "model", d_in / "real.npy", d / "probabilities.npy", n, block=s.block,
                                         device=s.device)

        k_p, d_p, _ = steps("phases_predict", {"block": s.block, "classes": n}, {"model": k_t, "real": k_in}, do_predict,
                            f"segmenting the real stack block by block ({s.block} slices)")
        return {"round": r, "estimate": est, "key_generate": k_g, "dir_generate": d_g, "structures": structures,
                "key_images": k_imgs, "key_train": k_t,
                "dir_images": d_imgs, "distances": distances, "training": tr, "key_predict": k_p, "dir_predict": d_p}

    rounds = [one_round(0, est, k_e)]
    est2 = moved_keys = None
    choice: dict[str, Any] = {"chosen_round": 1, "reason": "one round only (no re-estimate asked)"}

    def reestimate(r: int, used: dict) -> tuple[str, dict]:
        d_pr = rounds[r]["dir_predict"]

        def do_reestimate(d: Path) -> dict:
            sg = np.argmax(np.load(d_pr / "probabilities.npy", mmap_mode="r"), axis=1).astype(np.uint8)
            e2 = estimate_phases({"U-Net": sg}, vz, n)
            for k, q in e2["quantities"].items():  # one method only: keep at least the estimate's uncertainty
                if k in used["quantities"]:
                    q["uncertainty"] = max(q["uncertainty"], used["quantities"][k]["uncertainty"])
            e2["brightness_order"] = used.get("brightness_order")
            (d / "estimate.json").write_text(json.dumps(e2))
            fc = forward_consistency_phases_octants(sg, real, vz, energy, materials)
            return {"forward_consistency": fc["r"], "forward_consistency_octants": fc["octants"]}

        k_r, d_r, rec_r = steps("phases_reestimate", {"seed": s.seed, "round": r,
                                                      "check": "forward_consistency_octants"},
                                {"prediction": rounds[r]["key_predict"], "real": k_in}, do_reestimate,
                                f"re-estimating the phases from reconstruction {r + 1}")
        e2 = json.loads((d_r / "estimate.json").read_text())
        e2["forward_consistency"] = rec_r["result"]["forward_consistency"]
        e2["forward_consistency_octants"] = rec_r["result"].get("forward_consistency_octants")
        return k_r, e2

    if s.reestimate:
        k_e2, est2 = reestimate(0, est)
        moved_keys = moved_phases(est, est2, n)
        choice = {"chosen_round": 1, "forward_consistency": [est2["forward_consistency"]],
                  "reason": "the reconstruction confirmed the estimate (within its uncertainty): one round"}
        if moved_keys:
            console.print(f"[yellow]estimate moved[/] ({', '.join(moved_keys)}): regenerating once around the new estimate")
            rounds.append(one_round(1, est2, k_e2))
            _, est3 = reestimate(1, est2)
            f1, f2 = est2["forward_consistency"], est3["forward_consistency"]
            from fibsynth.reconstruct.estimate import choose_round
            from fibsynth.reconstruct.workflow import round_reason

            test = choose_round(*({"r": e["forward_consistency"], "octants": e.get("forward_consistency_octants")}
                                  for e in (est2, est3)))
            keep2 = test["keep_round_2"]
            choice = {"chosen_round": 2 if keep2 else 1, "forward_consistency": [f1, f2], "test": test,
                      "estimate_round_2_result": {k: v["value"] for k, v in est3["quantities"].items()},
                      "reason": round_reason(keep2, f1, f2, test)}
            console.print(("[green]" if keep2 else "[yellow]") + choice["reason"] + "[/]")
    final = rounds[choice["chosen_round"] - 1]
    d_g, d_imgs, structures, distances, tr = (final["dir_generate"], final["dir_images"], final["structures"],
                                              final["distances"], final["training"])
    k_p, d_p = final["key_predict"], final["dir_predict"]
    prob = np.load(d_p / "probabilities.npy", mmap_mode="r")

    @functools.cache
    def the_seg() -> np.ndarray:  # computed only where a step or file that needs it is not cached
        return np.argmax(prob, axis=1).astype(np.uint8)

    @functools.cache
    def the_conf() -> np.ndarray:
        return confidence(np.asarray(prob))

    # 7. evaluate ----------------------------------------------------------------------------------------------
    truth_id = _file_id(Path(truth)) if truth is not None else None

    def phase_row(lab: np.ndarray, scored: bool) -> dict[str, Any]:
        """The evaluation's row of one labelling of the whole stack (scores against the truth where ``scored``)."""
        from fibsynth.metrics import evaluate_phases, phase_structure
        from fibsynth.reconstruct.estimate import _crop

        c = _crop(lab)
        ps = phase_structure(c, vz, n)
        st = _phase_stats(c, vz, n)
        row: dict[str, Any] = {"phases": {}}
        for i in range(n):
            p = ps.get(i, ps.get(str(i), {}))
            row["phases"][str(i)] = {
                "material": materials[i], "fraction": float((lab == i).mean()),
                "diameter_nm": st[f"diameter_{i}_nm"],
                **{k: float(p[k]) for k in ("e_tpcf", "e_lpf", "e_diameter", "D_xy_nm", "D_xz_nm", "D_yz_nm")
                   if k in p}}
        if scored and truth_arr is not None:
            sc = evaluate_phases(lab, truth_arr, n)
            row.update({"MDS": float(sc["MDS"]), "MP %": float(sc["MP"])})
            for i in range(n):
                row["phases"][str(i)]["Dice"] = float(sc[f"dice_{i}"])
        return row

    # multi-Otsu's row depends on the stack alone (the estimate step's labels): a step of its own, so that a new
    # prediction (the second round, another training) does not measure it again (as Otsu and k-means, two phases)
    k_mo, _, rec_mo = steps("phases_multiotsu", {"truth": truth_id, "phases": n},
                            {"estimate": k_e, "real": k_in},
                            lambda d: {"row": phase_row(np.load(d_e / "multiotsu.npy", mmap_mode="r"), True)},
                            "measuring every phase of multi-Otsu")

    def do_evaluate(d: Path) -> dict:
        res: dict[str, Any] = {"U-Net (fibsynth)": phase_row(the_seg(), True), "multi-Otsu": rec_mo["result"]["row"]}
        if truth_arr is not None:
            res["ground truth"] = phase_row(truth_arr, False)
        (d / "evaluation.json").write_text(json.dumps(res))
        return {}

    k_ev, d_ev, _ = steps("phases_evaluate", {"truth": truth_id, "phases": n},
                          {"prediction": k_p, "multiotsu": k_mo, "real": k_in}, do_evaluate,
                          "measuring every phase of the result")
    evaluation = json.loads((d_ev / "evaluation.json").read_text())

    # outputs ---------------------------------------------------------------------------------------------------
    from fibsynth.io import VolumeMeta, atomic_path, write_volume

    work = Path(work_dir) if work_dir is not None else out / WORK
    drop_abandoned_partials(work, console)  # every prediction of this run is made
    vox = VoxelSize(z=vz[0], y=vz[1], x=vz[2])
    mats = {str(i): m for i, m in enumerate(materials)}
    params = {"settings": s.model_dump(mode="json"), "real_stack": str(real_path), "energy_kev": energy,
              "energy_source": energy_note, "phases": n,
              "estimate": {k: v["value"] for k, v in est["quantities"].items()}, "adaptation": method,
              "segmentation_plan": seg_plan}
    label_meta = VolumeMeta(kind="label", voxel_size_nm=vox, generator="fibsynth reconstruct (n-class U-Net)",
                            materials=mats, seed=s.seed, energy_kev=energy, parameters=params, offset_voxels=offset)
    conf_meta = label_meta.model_copy(update={
        "kind": "image", "generator": "fibsynth reconstruct: confidence (n P_max - 1) / (n - 1) (0 = undecided, 1 = certain)"})
    prob_metas = [label_meta.model_copy(update={"kind": "image",
                                                "generator": f"fibsynth reconstruct: P(phase {i} = {materials[i]})"})
                  for i in range(n)]
    mo_meta = label_meta.model_copy(update={
        "generator": "fibsynth reconstruct: multi-Otsu of the median-filtered stack",
        "parameters": {"real_stack": str(real_path), "order": est["brightness_order"]}})
    # each file a cached step of its own (the binary workflow's _Steps.files): a rerun writes only what is missing,
    # was changed or is made from other results
    steps.files("outputs", out, {
        "segmentation.tif": ({"meta": meta_key(label_meta)}, {"prediction": k_p},
                             lambda p: write_volume(p, the_seg(), label_meta) and None),
        "confidence.tif": ({"meta": meta_key(conf_meta)}, {"prediction": k_p},
                           lambda p: write_volume(p, the_conf(), conf_meta) and None),
        **{f"probability_{i}.tif": ({"meta": meta_key(prob_metas[i])}, {"prediction": k_p},
                                    lambda p, i=i: write_volume(p, np.ascontiguousarray(prob[:, i], np.float32),
                                                                prob_metas[i]) and None) for i in range(n)},
        "multiotsu.tif": ({"meta": meta_key(mo_meta)}, {"estimate": k_e},
                          lambda p: write_volume(p, np.load(d_e / "multiotsu.npy"), mo_meta) and None)},
        "writing the segmentation, its confidence, the probabilities and multi-Otsu")
    total = time.perf_counter() - t_start
    summary: dict[str, Any] = {
        "fibsynth_version": __version__, "real_stack": desc, "energy_kev": energy, "energy_source": energy_note,
        "voxel_size_nm": {"x": vz[2], "y": vz[1], "z": vz[0]}, "settings": s.model_dump(mode="json"),
        "phases": n, "materials": mats, "threads": threads["threads"], "threads_choice": threads,
        "inspection": {k: v for k, v in insp.items() if k not in ("histogram", "drift_shifts_px")},
        "estimate_first_pass": est, "estimate_from_reconstruction": est2, "moved": moved_keys,
        "round_choice": choice, "rounds": len(rounds), "structures": structures, "adaptation": method, "histogram_distances": distances,
        "training": {k: v for k, v in tr.items() if k != "history"}, "segmentation_plan": seg_plan,
        "gan_plan": gan_plan, "evaluation": evaluation, "steps": steps.log, "seconds_total": round(total, 1),
        "outputs": {"segmentation": "segmentation.tif", "confidence": "confidence.tif",
                    "probabilities": [f"probability_{i}.tif" for i in range(n)], "multiotsu": "multiotsu.tif",
                    "report": "report.html"},
        "warnings": [],
    }
    if fill_note:  # the outputs cover the region without the alignment fill
        summary["region"] = {"offset_zyx": list(offset), "shape_zyx": [int(prob.shape[0]), *map(int, prob.shape[2:])],
                             "note": fill_note}
    if tr.get("best_val_mds") is not None and tr.get("val_multiotsu_mds") is not None and \
            tr["best_val_mds"] < tr["val_multiotsu_mds"]:
        summary["warnings"].append(f"the U-Net's validation MDS ({tr['best_val_mds']:.3f}) ended below multi-Otsu's "
                                   f"({tr['val_multiotsu_mds']:.3f}) on the same held-out synthetic data: do not trust "
                                   "this segmentation more than multi-Otsu; give it more training (seg_steps) or "
                                   "check the materials and the estimate")
    from fibsynth.reconstruct.report_multiphase import write_phases_report

    def write_summary(path: Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(summary, indent=2, default=str))

    def write_report(path: Path) -> None:
        write_phases_report(path, summary, real=real, seg=the_seg(), conf=the_conf(), insp=insp, gen_dir=d_g,
                            img_dir=d_imgs if method else None, history=tr.get("history", []), voxel=vox)

    # the summary and the report: rewritten only where what they show changed (not for a rerun's own timings)
    r_key = ({"summary": summary_key(summary)},
             {"real": k_in, "evaluation": k_ev, "generate": final["key_generate"], "images": final["key_images"],
              "train": final["key_train"], "prediction": k_p})
    steps.files("report", out, {"summary.json": (*r_key, write_summary), "report.html": (*r_key, write_report)},
                "writing the summary and the report")
    console.print(f"[bold green]done[/] in {time.perf_counter() - t_start:.0f} s: {out / 'segmentation.tif'}, "
                  f"report {out / 'report.html'}")
    return summary
