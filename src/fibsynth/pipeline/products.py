"""The products of the pipeline, each made by ONE function that also makes its one metadata record.

========================  =====================================  =============================================
product                   function                               ``VolumeMeta.generator``
========================  =====================================  =============================================
ground-truth structure    :func:`make_structure`                 the generator (``lwm``, ``hierarchical``)
Monte Carlo stack         :func:`montecarlo_stack`               ``montecarlo``
projection                :func:`fast_stack` (``projection``)    ``projection``
fast-path stack           :func:`fast_stack`                     ``synth`` (projection + CycleGAN)
adapted stack             :func:`adapted_stack`                  ``cyclegan`` (parameters name the source)
segmentation              :func:`segmentation`                   ``segmentation``
baseline segmentation     :func:`baseline_segmentation`          ``baseline``
evaluation                :func:`evaluation`                     (a record, not a volume)
========================  =====================================  =============================================

Each returns a :class:`Product` (the array, its :class:`~fibsynth.io.VolumeMeta`, and a small ``record`` of what
the step did for reports); :meth:`Product.write` writes the volume with its metadata. Experiment steps, the demo,
the napari widget, ``fibsynth synth`` and ``fibsynth mc stack`` call these; no other module builds the metadata of
these products. The material of each phase (``0`` = pore, ``1`` = solid) comes from :func:`phases`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io import VolumeMeta, write_volume
from fibsynth.io.metadata import Generator

# ------------------------------------------------------------------------------------------------ one label each

#: ``VolumeMeta.generator`` of each product (one label per product; defined beside VolumeMeta so that the stages'
#: own writers can use them without importing this layer)
MONTECARLO = Generator.MONTECARLO
PROJECTION = Generator.PROJECTION
FAST = Generator.FAST
ADAPTED = Generator.ADAPTED
SEGMENTATION = Generator.SEGMENTATION
BASELINE = Generator.BASELINE
GROUND_TRUTH = Generator.GROUND_TRUTH

#: the default sample: gold ligaments, epoxy-filled pores
SOLID, PORE = "gold", "epoxy"


def phases(solid: str = SOLID, pore: str = PORE) -> dict[str, str]:
    """``VolumeMeta.materials``: label value -> material (``0`` = pore, ``1`` = solid)."""
    return {"0": str(pore), "1": str(solid)}


#: the default phases, ``{"0": "epoxy", "1": "gold"}``
PHASES = phases()


def label_phases(geometry: Any) -> dict[str, str]:
    """``VolumeMeta.materials`` of a stack geometry: label value -> material, one per label (``materials``), or
    ``phases(solid, pore)`` for the binary form (and for the flat settings layout)."""
    mats = getattr(geometry, "materials", None)
    if mats is not None:
        return {str(i): str(m) for i, m in enumerate(mats)}
    return phases(getattr(geometry, "solid", SOLID), getattr(geometry, "pore", PORE))


@dataclass
class Product:
    """A product of the pipeline: ``data`` (z, y, x), its metadata, and a record of how it was made."""

    data: np.ndarray
    meta: VolumeMeta
    record: dict[str, Any] = field(default_factory=dict)

    def write(self, path: str | Path, **kwargs: Any) -> Path:
        return write_volume(path, self.data, self.meta, **kwargs)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


# ------------------------------------------------------------------------------------------------ structure

def make_structure(
    shape: tuple[int, int, int],
    voxel: Any,
    *,
    generator: Literal["lwm", "hierarchical"] = "lwm",
    solid_fraction: float = 0.3,
    ligament_nm: float = 40.0,
    upper_ligament_nm: float = 110.0,
    lower_ligament_nm: float = 15.0,
    upper_solid_fraction: float = 0.5,
    lower_solid_fraction: float = 0.4,
    waves: int | None = None,
    seed: int = 0,
) -> Product:
    """A ground-truth binary structure (uint8, 1 = solid) and the generator's metadata (its model's record)."""
    from fibsynth.structure import hierarchical, leveled_wave

    voxel = VoxelSize.coerce(voxel, param="voxel")
    extra = {} if waves is None else {"waves": waves}
    shape = tuple(int(s) for s in shape)
    t0 = time.perf_counter()
    if generator == "lwm":
        solid, model = leveled_wave(shape, voxel, solid_fraction, ligament_nm, seed=seed, return_model=True,
                                    **extra)
    elif generator == "hierarchical":
        solid, model = hierarchical(shape, voxel, upper_ligament_nm, lower_ligament_nm, upper_solid_fraction,
                                    lower_solid_fraction, seed=seed, return_model=True, **extra)
    else:
        raise FibsynthError(f"must be lwm or hierarchical (got {generator!r})", param="generator")
    return Product(solid, model.meta(), {"seconds": time.perf_counter() - t0,
                                         "solid_fraction": float(solid.mean()), "shape": list(solid.shape)})


def make_multiphase(
    shape: tuple[int, int, int],
    voxel: Any,
    fractions: tuple[float, ...],
    *,
    kind: Literal["two-field", "particles"] = "two-field",
    ligament_nm: Any = 40.0,
    particle_radius_nm: Any = 20.0,
    phases: Any = None,
    waves: int | None = None,
    seed: int = 0,
) -> Product:
    """A ground-truth structure of n phases (uint8 labels 0..n-1, :mod:`fibsynth.structure.multiphase`); its
    metadata records the phase (material) of each label and the measured fractions."""
    from fibsynth.structure.multiphase import multiphase

    voxel = VoxelSize.coerce(voxel, param="voxel")
    extra = {} if waves is None else {"waves": waves}
    t0 = time.perf_counter()
    lab, model = multiphase(tuple(int(v) for v in shape), voxel, fractions, kind=kind, ligament_nm=ligament_nm,
                            particle_radius_nm=particle_radius_nm, phases=phases, seed=seed, return_model=True,
                            **extra)
    meta = model.meta()
    return Product(lab, meta, {"seconds": time.perf_counter() - t0, "shape": list(lab.shape),
                               "fractions": meta.parameters["fractions_measured"]})


def label_meta(like: VolumeMeta, *, generator: str = GROUND_TRUTH, **changes: Any) -> VolumeMeta:
    """Metadata of a label volume aligned with ``like`` (same voxel size, offset and materials)."""
    return VolumeMeta(kind="label", voxel_size_nm=like.voxel_size_nm, offset_voxels=like.offset_voxels,
                      materials=like.materials, generator=generator, **changes)


# ------------------------------------------------------------------------------------------------ Monte Carlo

def montecarlo_meta(voxel: Any, settings: Any, slices: tuple[int, int], parameters: dict | None = None) -> VolumeMeta:
    """The metadata of a Monte Carlo stack of slices ``k0:k1`` (``settings``: the stack's ``StackSettings``); the
    stack sits at z offset ``k0`` of its structure."""
    k0, k1 = (int(k) for k in slices)
    params = {**_jsonable(settings.model_dump(mode="json")), "slices": [k0, k1], **(parameters or {})}
    beam = getattr(settings, "beam", settings)  # composed settings (beam, geometry) or the flat layout
    geometry = getattr(settings, "geometry", settings)
    return VolumeMeta(kind="image", voxel_size_nm=VoxelSize.coerce(voxel, param="voxel"), generator=MONTECARLO,
                      energy_kev=float(beam.energy_kev), seed=int(settings.seed),
                      materials=label_phases(geometry),
                      offset_voxels=(k0, 0, 0), parameters=params)


def montecarlo_stack(
    structure: np.ndarray,
    voxel: Any,
    settings: Any = None,
    *,
    slices: tuple[int, int] | None = None,
    backend: str = "numba",
    device: str | None = None,
    progress: bool = False,
    **settings_fields: Any,
) -> Product:
    """Monte Carlo BSE images of slices ``k0:k1`` of ``structure`` (float32, fraction of primaries backscattered).

    ``settings``: a ``StackSettings``, or its fields as keywords (``energy_kev=2, electrons_per_pixel=100, ...``).
    The product's metadata carries the z offset ``k0``; ``record`` holds the binomial standard error (``std``),
    the histograms and the seconds taken."""
    from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack

    if settings is None:
        settings = StackSettings.build(None, **settings_fields)
    elif settings_fields:
        raise FibsynthError("give either settings or its fields, not both", param="settings")
    voxel = VoxelSize.coerce(voxel, param="voxel")
    nz = int(np.shape(structure)[0])
    k0, k1 = (int(k) for k in (slices if slices is not None else (0, nz)))
    if not 0 <= k0 < k1 <= nz:
        raise FibsynthError(f"need 0 <= K0 < K1 <= {nz} (got {k0}:{k1})", param="slices")
    res = simulate_stack(structure, voxel, settings, slices=(k0, k1), progress=progress, backend=backend,
                         device=device)
    meta = montecarlo_meta(voxel, settings, (k0, k1), {"seconds": round(float(res["seconds"]), 3)}
                           if "seconds" in res else None)
    images = np.asarray(res["eta"], dtype=np.float32)
    record = {k: v for k, v in res.items() if k != "eta"}
    record["electrons"] = int(images.size * settings.electrons_per_pixel)
    return Product(images, meta, record)


# ------------------------------------------------------------------------------------------------ fast path

def shipped_model_for(energy_kev: float, solid: str = SOLID, pore: str = PORE) -> str:
    """Name of the shipped projection -> Monte Carlo model for this energy and material pair, or a one-line error
    naming what is shipped and how to train another."""
    from fibsynth.gan.model import shipped_models

    pair = {("gold", "epoxy"): "au-epoxy", ("Au", "epoxy"): "au-epoxy"}.get((solid, pore))
    name = f"proj2mc-{energy_kev:g}kev-{pair}" if pair else None
    have = [m for m in shipped_models() if m.startswith("proj2mc-")]
    if name in have:
        return name
    raise FibsynthError(
        f"{energy_kev:g} keV with {solid}/{pore}: no shipped translation model (shipped: {', '.join(have) or 'none'}); "
        "train one with 'fibsynth gan train --source PROJECTION --target MONTECARLO --out DIR' and pass it as model",
        param="energy_kev",
    )


def fast_stack(
    structure: np.ndarray,
    voxel: Any,
    energy_kev: float,
    *,
    model: str | Path | None = None,
    translation: Literal["best", "auto", "gan", "paired", "projection"] = "best",
    incidence_deg: float = 38.0,
    solid: str = SOLID,
    pore: str = PORE,
    seed: int = 0,
    keep_projection: bool = False,
    electrons_per_pixel: int = 100,
    materials: Any = None,
    detector: str = "bse",
) -> Product:
    """Monte-Carlo-like images of every slice of ``structure`` in seconds: the shine-through projection, then a
    translation to the Monte Carlo's look.

    ``translation="best"`` (default): the paired translator wherever it is valid -- gold/epoxy at the energies it
    was trained on (1-4 keV), no ``model`` given -- else as ``"gan"``; the record says which and why
    (``translation_choice``). ``"paired"``: the paired translator (:mod:`fibsynth.fastsim.translator`: the Monte
    Carlo's mean image regressed from the structure and its projection, trained on paired data, plus binomial shot
    noise at ``electrons_per_pixel``; ``model`` then names other weights, a ``.pt`` with its ``.json``); it is
    measured closer to the Monte Carlo than the CycleGAN (docs/fastsim.md, section 8). ``"gan"``: a projection ->
    Monte Carlo CycleGAN (``model``, else the shipped one for ``energy_kev``; a missing model is an error).
    ``"projection"`` returns the projection itself (generator ``projection``); ``"auto"`` does so when no CycleGAN
    is given and none is shipped for the energy.

    ``seed`` seeds the translation model's noise input (the paired translator's shot noise). ``keep_projection``
    puts the projection product into ``record["projection_product"]``.

    ``materials``: a label volume (0..n-1) with one material per label (label 0 the filling); ``solid`` and
    ``pore`` are then not used. The n-phase projection (:func:`fibsynth.fastsim.multiphase.project_labels`); no
    translation model is shipped for n phases, so ``auto`` gives the projection, ``gan`` needs ``model`` (a
    CycleGAN you trained on such projections), ``best`` is ``gan`` and ``paired`` is refused (its translator is
    gold/epoxy).

    ``detector``: ``bse`` (the default; everything above) or a secondary-electron detector for a binary structure
    with open pores (``pore="vacuum"``): ``inlens`` or ``se`` (``et`` has no fast model). There ``best`` is the
    paired SE translator where it was trained -- silicon with open pores at 2 keV, in-lens
    (:data:`fibsynth.fastsim.translator.SHIPPED`; its mean image plus the Monte Carlo's measured per-primary noise
    at ``electrons_per_pixel``, measured in docs/fastsim.md section 9) -- else the SE projection alone
    (:func:`fibsynth.fastsim.se_projection.project_se`, noise-free, SE per primary), with the reason recorded;
    ``paired`` is that translator (``model``: other SE translator weights) or an error where it does not apply,
    ``auto`` and ``projection`` the SE projection, ``gan`` an error (no CycleGAN exists for SE images). The
    metadata carries the translator's record (training data, seeds, measured fidelity)."""
    from fibsynth.fastsim.projection import project

    voxel = VoxelSize.coerce(voxel, param="voxel")
    if detector != "bse":
        return _se_fast_stack(structure, voxel, energy_kev, detector=detector, model=model, translation=translation,
                              incidence_deg=incidence_deg, solid=solid, pore=pore, seed=seed,
                              keep_projection=keep_projection, electrons_per_pixel=electrons_per_pixel,
                              materials=materials)
    if materials is not None:
        if translation == "best":
            translation = "gan"  # no paired translator for n phases: as gan (a model given, else an error)
        return _labels_fast_stack(structure, voxel, energy_kev, materials, model=model, translation=translation,
                                  incidence_deg=incidence_deg, seed=seed, keep_projection=keep_projection)
    _check_translation(translation, seed)
    choice = None
    if translation == "best":
        translation, choice = best_translation(energy_kev, solid, pore, model)
    if translation == "paired":
        return _with_choice(_paired_fast_stack(structure, voxel, energy_kev, model=model, incidence_deg=incidence_deg,
                                               solid=solid, pore=pore, seed=int(seed),
                                               keep_projection=keep_projection,
                                               electrons_per_pixel=electrons_per_pixel), choice)
    name: str | None = None
    why = ""
    if translation != "projection":
        if model is not None:
            name = str(model)
        else:
            try:
                name = shipped_model_for(energy_kev, solid, pore)
            except FibsynthError as exc:
                if translation == "gan":
                    if choice is not None:  # the default fell back here: say why the paired translator was not used
                        raise FibsynthError(f"{exc.message}; {choice}", param=exc.param) from None
                    raise
                why = "none (projection only: no model for this energy)"
    else:
        why = "none (projection only, as asked)"
    t0 = time.perf_counter()
    proj, rec = project(structure, voxel.zyx(), energy_kev, incidence_deg=incidence_deg, solid=solid, pore=pore)
    projection = {k: v for k, v in rec.items() if k not in ("cells", "weights")}
    common = dict(kind="image", voxel_size_nm=voxel, energy_kev=float(energy_kev), materials=phases(solid, pore))
    return _with_choice(_translated_product(proj, projection, common, incidence_deg=incidence_deg, seed=int(seed),
                                            name=name, why=why, keep_projection=keep_projection, t0=t0), choice)


#: the fast path's translations (:func:`fast_stack`); ``best`` is the default
TRANSLATIONS = ("best", "auto", "gan", "paired", "projection")


def _check_translation(translation: str | None, seed: Any) -> None:
    """One line unless ``translation`` is one of :data:`TRANSLATIONS` (None: checked by the caller) and ``seed`` (the
    translators' noise) is in [0, 2^63)."""
    if translation is not None and translation not in TRANSLATIONS:
        raise FibsynthError(f"must be {', '.join(TRANSLATIONS[:-1])} or {TRANSLATIONS[-1]} (got {translation!r})",
                            param="translation")
    if not (0 <= int(seed) < 2**63):
        raise FibsynthError(f"must be in [0, 2^63) (got {seed})", param="seed")


def best_translation(energy_kev: float, solid: str = SOLID, pore: str = PORE, model: Any = None,
                     materials: Any = None) -> tuple[str, str]:
    """(translation, why) that ``translation="best"`` resolves to: ``paired`` for gold/epoxy at an energy the
    shipped paired translator was trained on when no ``model`` is given, else ``gan`` (a given CycleGAN, else the
    shipped one; an error naming this note where none is shipped)."""
    if materials is not None:
        return "gan", "the paired translator is for gold/epoxy, not one material per label"
    if model is not None:
        return "gan", "a model was given: the CycleGAN"
    from fibsynth.fastsim.translator import load_paired

    try:
        load_paired().check(energy_kev, solid, pore)
    except FibsynthError as exc:
        return "gan", f"the paired translator does not apply ({exc.message}): the CycleGAN"
    return "paired", "the paired translator (gold/epoxy, within its trained energies)"


def best_se_translation(energy_kev: float, solid: str, detector: str, model: Any = None,
                        incidence_deg: float = 38.0) -> tuple[str, str]:
    """(translation, why) that ``translation="best"`` resolves to for an open-pore SE stack: ``paired`` where the
    shipped SE translator (or ``model``, other SE translator weights) was trained -- its detector, material, energy
    and beam incidence --, else ``projection`` (the SE projection alone)."""
    from fibsynth.fastsim.translator import load_paired

    try:
        tr = load_paired(model, detector=detector)
        tr.check(energy_kev, solid, "vacuum", detector)
        a = tr.config["training"].get("incidence_deg")
        if a is not None and abs(float(incidence_deg) - float(a)) > 1e-6:
            raise FibsynthError(f"it is trained at {float(a):g} degrees incidence (got {float(incidence_deg):g})",
                                param="incidence_deg")
    except FibsynthError as exc:
        return "projection", f"the paired SE translator does not apply ({exc.message}): the SE projection alone"
    trained = tr.config["training"]["materials"][0]
    return "paired", (f"the paired SE translator ({trained}/vacuum, {tr.detector}, "
                      f"{tr.energy_range[0]:g} keV, as trained)")


def _se_fast_stack(structure, voxel, energy_kev, *, detector, model, translation, incidence_deg, solid, pore, seed,
                   keep_projection, electrons_per_pixel, materials) -> Product:
    """:func:`fast_stack` with a secondary-electron detector (open pores)."""
    from fibsynth.physics.materials import is_vacuum

    if detector not in ("se", "inlens", "et"):
        raise FibsynthError(f"must be bse, se, inlens or et (got {detector!r})", param="detector")
    if detector == "et":
        raise FibsynthError("the Everhart-Thornley detector has no fast model: use the Monte Carlo", param="detector")
    if materials is not None:
        raise FibsynthError(f"the fast {detector} model is for a binary structure with open pores, not one material "
                            "per label", param="detector")
    if not is_vacuum(pore):
        raise FibsynthError(f"the fast {detector} model images open pores only (got {pore}-filled pores): give pore "
                            "vacuum, or use the Monte Carlo", param="pore")
    if translation == "gan":
        raise FibsynthError(f"no CycleGAN exists for {detector} images: use best, paired or projection",
                            param="translation")
    _check_translation(translation, seed)
    choice = None
    if translation == "best":
        translation, choice = best_se_translation(energy_kev, solid, detector, model, incidence_deg)
    common = dict(kind="image", voxel_size_nm=voxel, energy_kev=float(energy_kev), materials=phases(solid, pore))
    t0 = time.perf_counter()
    if translation == "paired":
        from fibsynth.fastsim.translator import load_paired

        if isinstance(electrons_per_pixel, bool) or not 0 <= int(electrons_per_pixel) <= 10**8:
            raise FibsynthError(f"must be in [0, 1e8] (got {electrons_per_pixel!r})", param="electrons_per_pixel")
        tr = load_paired(model, detector=detector)
        tr.check(energy_kev, solid, "vacuum", detector)  # before any work
        ch, rec = tr.project(structure, voxel.zyx(), energy_kev, incidence_deg=incidence_deg, solid=solid)
        images, _ = tr(structure, voxel.zyx(), energy_kev, electrons_per_pixel=int(electrons_per_pixel), seed=seed,
                       incidence_deg=incidence_deg, solid=solid, pore="vacuum", projection=ch, detector=detector)
        projection = {k: v for k, v in rec.items() if k != "components"}
        record = {"projection": projection, "translation_model": "paired-translator-se" if model is None else str(model),
                  "translator": "paired", "detector": detector, "translation_seed": int(seed),
                  "electrons_per_pixel": int(electrons_per_pixel), "incidence_deg": incidence_deg,
                  "translator_record": tr.summary()}
        meta = VolumeMeta(generator=FAST, seed=int(seed), parameters=_jsonable(record), **common)
        out = {**record, "seconds": time.perf_counter() - t0}
        if keep_projection:  # the SE projection: the sum of its parts (the channels are normalised by d1 + d2)
            d = np.float32(sum(float(v) for v in tr.signal["yields"][:2]))
            proj_meta = VolumeMeta(generator=PROJECTION, seed=int(seed), parameters=_jsonable(
                {"projection": projection, "incidence_deg": incidence_deg, "detector": detector}), **common)
            out["projection_product"] = Product((ch[:, :3].sum(axis=1) * d).astype(np.float32), proj_meta)
        return _with_choice(Product(np.asarray(images, np.float32), meta, out), choice)
    from fibsynth.fastsim.se_projection import project_se

    img, rec = project_se(np.asarray(structure), voxel.zyx(), energy_kev, solid=solid, incidence_deg=incidence_deg,
                          view="all" if detector == "se" else "straight", bse_weight=0.0 if detector == "se" else 1.0)
    why = choice or "none (the SE projection alone, as asked)"
    projection = {**rec, "detector": detector}
    record = {"translation": why, "projection": projection, "seconds": time.perf_counter() - t0}
    meta = VolumeMeta(generator=PROJECTION, seed=int(seed), parameters=_jsonable(
        {"projection": projection, "incidence_deg": incidence_deg, "translation": why, "detector": detector}), **common)
    return _with_choice(Product(np.asarray(img, np.float32), meta, record), choice)


def _with_choice(prod: Product, choice: str | None) -> Product:
    """Record in ``prod`` (record and metadata) why the default translation chose what it did."""
    if choice is None:
        return prod
    prod.record["translation_choice"] = choice
    prod.meta = prod.meta.model_copy(update={"parameters": {**prod.meta.parameters, "translation_choice": choice}})
    return prod


def _labels_fast_stack(structure, voxel, energy_kev, materials, *, model, translation, incidence_deg, seed,
                       keep_projection) -> Product:
    """:func:`fast_stack` of a label volume with one material per label."""
    from fibsynth.fastsim.multiphase import project_labels

    if translation not in ("auto", "gan", "paired", "projection"):
        raise FibsynthError(f"must be auto, gan, paired or projection (got {translation!r})", param="translation")
    if translation == "paired":
        raise FibsynthError("the paired translator is trained for gold/epoxy: with one material per label use "
                            "projection (or gan with a model you trained)", param="translation")
    if translation == "gan" and model is None:
        raise FibsynthError("no translation model is shipped for one material per label: use projection or auto, "
                            "or pass a CycleGAN you trained on such projections as model", param="translation")
    _check_translation(None, seed)
    t0 = time.perf_counter()
    proj, rec = project_labels(structure, voxel.zyx(), energy_kev, materials, incidence_deg=incidence_deg)
    mats = rec["materials"]
    projection = {k: v for k, v in rec.items() if k not in ("cells", "weights")}
    common = dict(kind="image", voxel_size_nm=voxel, energy_kev=float(energy_kev),
                  materials={str(i): m for i, m in enumerate(mats)})
    projection_only = translation in ("auto", "projection") and model is None or translation == "projection"
    return _translated_product(proj, projection, common, incidence_deg=incidence_deg, seed=int(seed),
                               name=None if projection_only else str(model),
                               why="none (projection only: no translation model is shipped for one material per "
                                   "label)", keep_projection=keep_projection, t0=t0)


def _translated_product(proj: np.ndarray, projection: dict, common: dict, *, incidence_deg: float, seed: int,
                        name: str | None, why: str, keep_projection: bool, t0: float) -> Product:
    """The fast stack from a projection: the projection itself (``name`` None; ``why`` recorded as the
    translation), or its translation by the CycleGAN ``name`` (with the projection product under
    ``projection_product`` when ``keep_projection``). ``common``: the images' VolumeMeta fields; ``t0``: when the
    step started (the record's ``seconds``)."""
    proj_meta = VolumeMeta(generator=PROJECTION, seed=seed,
                           parameters=_jsonable({"projection": projection, "incidence_deg": incidence_deg}), **common)
    if name is None:
        record = {"translation": why, "projection": projection, "seconds": time.perf_counter() - t0}
        return Product(np.asarray(proj, np.float32), proj_meta.model_copy(
            update={"parameters": _jsonable({**proj_meta.parameters, "translation": why})}), record)
    from fibsynth.gan import Translator

    translated = Translator(name, seed=seed)(proj.astype(np.float32))[0]
    record = {"projection": projection, "translation_model": name, "translation_seed": seed,
              "incidence_deg": incidence_deg}
    meta = VolumeMeta(generator=FAST, seed=seed, parameters=_jsonable(record), **common)
    out = {**record, "seconds": time.perf_counter() - t0}
    if keep_projection:
        out["projection_product"] = Product(np.asarray(proj, np.float32), proj_meta)
    return Product(np.asarray(translated, dtype=np.float32), meta, out)


def _paired_fast_stack(structure, voxel, energy_kev, *, model, incidence_deg, solid, pore, seed, keep_projection,
                       electrons_per_pixel) -> Product:
    from fibsynth.fastsim.translator import load_paired

    if isinstance(electrons_per_pixel, bool) or not 0 <= int(electrons_per_pixel) <= 10**8:
        raise FibsynthError(f"must be in [0, 1e8] (got {electrons_per_pixel!r})", param="electrons_per_pixel")
    t0 = time.perf_counter()
    tr = load_paired(model)
    tr.check(energy_kev, solid, pore)  # before any work
    proj, rec = tr.project(structure, voxel.zyx(), energy_kev, incidence_deg=incidence_deg, solid=solid, pore=pore)
    images, _ = tr(structure, voxel.zyx(), energy_kev, electrons_per_pixel=int(electrons_per_pixel), seed=seed,
                   incidence_deg=incidence_deg, solid=solid, pore=pore, projection=proj)
    projection = {k: v for k, v in rec.items() if k not in ("cells", "weights")}
    common = dict(kind="image", voxel_size_nm=voxel, energy_kev=float(energy_kev), materials=phases(solid, pore))
    name = "paired-translator" if model is None else str(model)
    record = {"projection": projection, "translation_model": name, "translator": "paired",
              "histogram_calibration": bool(tr.histogram_calibration),
              "level_correction": bool(tr.level_correction),
              "translation_seed": int(seed), "electrons_per_pixel": int(electrons_per_pixel),
              "incidence_deg": incidence_deg}
    meta = VolumeMeta(generator=FAST, seed=int(seed), parameters=_jsonable(record), **common)
    out = {**record, "seconds": time.perf_counter() - t0}
    if keep_projection:
        proj_meta = VolumeMeta(generator=PROJECTION, seed=int(seed),
                               parameters=_jsonable({"projection": projection, "incidence_deg": incidence_deg}), **common)
        out["projection_product"] = Product(np.asarray(proj, np.float32), proj_meta)
    return Product(np.asarray(images, np.float32), meta, out)


# ------------------------------------------------------------------------------------------------ adaptation

def adapted_stack(model: str | Path, images: np.ndarray, meta: VolumeMeta, *, direction: str = "ab",
                  tile: int = 512, seed: int = 0) -> Product:
    """``images`` translated by a trained CycleGAN (domain adaptation); the metadata keeps the source's voxel size,
    offset, energy and materials and names the source's generator."""
    from fibsynth.gan import Translator

    y = Translator(str(model), direction=direction, tile=tile, seed=int(seed))(np.asarray(images, np.float32))[0]
    params = {**meta.parameters, "source_generator": meta.generator, "translation_model": str(model),
              "direction": direction, "translation_seed": int(seed)}
    out = meta.model_copy(update={"generator": ADAPTED, "parameters": _jsonable(params)})
    return Product(np.asarray(y, np.float32), out, {"translation_model": str(model)})


# ------------------------------------------------------------------------------------------------ segmentation

def segmentation(model: Any, images: np.ndarray, meta: VolumeMeta | None = None, *, block: int = 32,
                 overlap: float = 0.25, batch: int = 4, device: str = "cpu") -> Product:
    """Labels (uint8, 1 = solid; a model of n classes: 0..n-1) of ``images`` by a trained segmentation model (a
    folder or ``(net, cfg)``)."""
    from fibsynth.segment.infer import predict_array

    meta = meta or VolumeMeta()
    t0 = time.perf_counter()
    pred = predict_array(model, images, block=block, overlap=overlap, batch=batch, device=device)
    out = label_meta(meta, generator=SEGMENTATION, energy_kev=meta.energy_kev, seed=meta.seed,
                     parameters={"model": str(model) if isinstance(model, (str, Path)) else "in memory",
                                 "block": block, "overlap": overlap})
    record: dict[str, Any] = {"seconds": time.perf_counter() - t0}
    if isinstance(model, (str, Path)):
        from fibsynth.segment.model import load_config

        classes = load_config(model).classes
    else:
        classes = model[1].classes
    if classes > 2:  # n phases: each one's fraction (the mean of labels is none)
        record["fractions"] = (np.bincount(pred.ravel(), minlength=classes) / pred.size).tolist()
    else:
        record["solid_fraction"] = float(pred.mean())
    return Product(pred, out, record)


def baseline_segmentation(images: np.ndarray, meta: VolumeMeta | None = None, *,
                          method: Literal["otsu", "kmeans", "multiotsu"] = "otsu", classes: int = 3,
                          order: Any = None) -> Product:
    """A global threshold of ``images`` (Otsu, or two-class k-means): the baseline a trained model must beat.
    ``multiotsu``: ``classes`` gray classes by multi-Otsu thresholds, the k-th darkest labelled ``order[k]`` (the
    labels from darkest to brightest; default k)."""
    from fibsynth.segment.baseline import kmeans_threshold, multiotsu_segment, otsu_threshold

    if method == "multiotsu":
        seg, ts = multiotsu_segment(images, classes, order)
        out = label_meta(meta or VolumeMeta(), generator=BASELINE, energy_kev=(meta.energy_kev if meta else None),
                         parameters={"method": method, "thresholds": ts.tolist(), "classes": int(classes),
                                     "order": None if order is None else [int(o) for o in order]})
        return Product(seg, out, {"method": method, "thresholds": ts.tolist()})
    if method == "otsu":
        t = float(otsu_threshold(images))
    elif method == "kmeans":
        t = float(kmeans_threshold(images)[0])
    else:
        raise FibsynthError(f"must be otsu, kmeans or multiotsu (got {method!r})", param="method")
    seg = (np.asarray(images) > t).astype(np.uint8)
    out = label_meta(meta or VolumeMeta(), generator=BASELINE, energy_kev=(meta.energy_kev if meta else None),
                     parameters={"method": method, "threshold": t})
    return Product(seg, out, {"method": method, "threshold": t})


# ------------------------------------------------------------------------------------------------ evaluation

def evaluation(prediction: np.ndarray, truth: np.ndarray | None = None, *, voxel: Any = None,
               isotropy: bool = False, phases: int | None = None) -> dict[str, float]:
    """Scores of a segmentation: MP, MGP (percent), Dice and MDS against ``truth`` when given, and the isotropy
    errors (``isotropy``; needs ``voxel``). The record is plain floats (``metrics.json``).

    ``phases`` = n > 2 (n-phase labels 0..n-1): MP, MDS (mean over the phases) and per phase Dice, MGP and
    fractions (:func:`fibsynth.metrics.evaluate_phases`); with ``isotropy`` each phase's isotropy errors and
    diameters, keys ``phase<i>_<name>``."""
    from fibsynth.metrics import evaluate_segmentation, isotropy_report

    if phases is not None and int(phases) > 2:
        return _evaluation_phases(prediction, truth, int(phases), voxel, isotropy)
    res: dict[str, float] = {}
    if truth is not None:
        res.update({k: float(v) for k, v in evaluate_segmentation(prediction, truth).items()})
    if isotropy:
        if voxel is None:
            raise FibsynthError("isotropy needs the voxel size", param="voxel")
        iso = isotropy_report(prediction, VoxelSize.coerce(voxel, param="voxel").zyx())
        res.update({k: float(v) for k, v in iso.items() if isinstance(v, (int, float))})
    return res


def _evaluation_phases(prediction, truth, n: int, voxel: Any, isotropy: bool) -> dict[str, float]:
    from fibsynth.metrics import evaluate_phases, phase_structure

    res: dict[str, float] = {}
    if truth is not None:
        res.update({k: float(v) for k, v in evaluate_phases(prediction, truth, n).items()
                    if isinstance(v, (int, float))})
    if isotropy:
        if voxel is None:
            raise FibsynthError("isotropy needs the voxel size", param="voxel")
        per = phase_structure(prediction, VoxelSize.coerce(voxel, param="voxel").zyx(), n)
    else:
        per = phase_structure(prediction, None, n, isotropy=False)
    for i, rec in per.items():
        res.update({f"phase{i}_{k}": float(v) for k, v in rec.items()})
    return res


__all__ = [
    "ADAPTED", "BASELINE", "FAST", "GROUND_TRUTH", "MONTECARLO", "PHASES", "PORE", "PROJECTION", "SEGMENTATION",
    "SOLID", "Product", "adapted_stack", "baseline_segmentation", "evaluation", "fast_stack", "label_meta",
    "label_phases", "make_multiphase", "make_structure", "montecarlo_meta", "montecarlo_stack", "phases", "segmentation", "shipped_model_for",
]
