"""Step kinds of an experiment; each calls a stage's Python API.

Conventions inside a step's output folder: ``volume.npy`` (with its ``.npy.json`` metadata) is the step's volume
(structure, image stack or segmentation), ``labels.npy`` the ground truth aligned with it when known, ``model/``
a trained model, ``metrics.json`` scores, ``table.md`` / ``table.csv`` tables. ``run`` returns a small summary
that is stored in the step's marker and printed in the run report.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from fibsynth.config import StrictModel, VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io import VolumeMeta, read_volume, write_volume

VOLUME, LABELS, MODEL, METRICS = "volume.npy", "labels.npy", "model", "metrics.json"


# ------------------------------------------------------------------------------------------------ helpers

def load(d: Path) -> tuple[np.ndarray, VolumeMeta]:
    if not (d / VOLUME).exists():
        raise FibsynthError(f"step output has no volume ({VOLUME})", d)
    v = read_volume(d / VOLUME)
    return np.asarray(v.data), v.meta


def load_labels(d: Path) -> np.ndarray | None:
    return np.asarray(read_volume(d / LABELS).data) if (d / LABELS).exists() else None


def voxel_of(meta: VolumeMeta, where: Path) -> VoxelSize:
    if meta.voxel_size_nm is None:
        raise FibsynthError("volume carries no voxel size", where)
    return meta.voxel_size_nm


def save(out: Path, data: np.ndarray, meta: VolumeMeta, labels: np.ndarray | None = None) -> None:
    write_volume(out / VOLUME, data, meta)
    if labels is not None:
        write_volume(out / LABELS, np.asarray(labels, np.uint8),
                     VolumeMeta(kind="label", voxel_size_nm=meta.voxel_size_nm, generator="ground truth"))


def one(inputs: dict, role: str) -> Path:
    v = inputs[role]
    return v[0] if isinstance(v, list) else v


class Step:
    """A step kind: ``Params`` (validated), its input roles, and ``run``."""

    Params: type[StrictModel]
    required_inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()

    def run(self, p: Any, inputs: dict[str, Any], out: Path, ctx: dict[str, Any]) -> dict:  # pragma: no cover
        raise NotImplementedError


# ------------------------------------------------------------------------------------------------ structure

class StructureParams(StrictModel):
    generator: Literal["lwm", "hierarchical"] = "lwm"
    shape: tuple[int, int, int]
    voxel_nm: float = Field(5.0, gt=0, le=1e4)
    slice_nm: float | None = Field(None, gt=0, le=1e4)
    solid_fraction: float = Field(0.3, gt=0, lt=1)
    ligament_nm: float = Field(40.0, gt=0)
    upper_ligament_nm: float = Field(110.0, gt=0)
    lower_ligament_nm: float = Field(15.0, gt=0)
    upper_solid_fraction: float = Field(0.5, gt=0, lt=1)
    lower_solid_fraction: float = Field(0.4, gt=0, lt=1)
    waves: int = Field(1000, ge=1, le=100000)
    seed: int = Field(0, ge=0)

    @field_validator("shape")
    @classmethod
    def _edges(cls, v):
        if any(n < 8 or n > 4096 for n in v):
            raise ValueError("each edge must be 8..4096")
        return v


class StructureStep(Step):
    Params = StructureParams

    def run(self, p, inputs, out, ctx):
        from fibsynth.structure import hierarchical, leveled_wave

        voxel = VoxelSize.from_xy_z(p.voxel_nm, p.slice_nm)
        if p.generator == "lwm":
            solid, model = leveled_wave(p.shape, voxel, p.solid_fraction, p.ligament_nm, p.waves, p.seed,
                                        return_model=True)
        else:
            solid, model = hierarchical(p.shape, voxel, p.upper_ligament_nm, p.lower_ligament_nm,
                                        p.upper_solid_fraction, p.lower_solid_fraction, p.waves, p.seed,
                                        return_model=True)
        save(out, solid, model.meta(), labels=solid)
        return {"solid_fraction": float(solid.mean()), "shape": list(solid.shape)}


# ------------------------------------------------------------------------------------------------ Monte Carlo

class MonteCarloParams(StrictModel):
    energy_kev: float = Field(ge=0.2, le=30.0)
    electrons_per_pixel: int = Field(ge=1, le=10**8)
    slices: tuple[int, int] | None = None
    incidence_deg: float = Field(38.0, ge=0, le=85)
    probe_fwhm_nm: float = Field(0.0, ge=0)
    seed: int = Field(0, ge=0)
    backend: Literal["numba", "torch"] = "numba"
    device: str | None = None


class MonteCarloStep(Step):
    Params = MonteCarloParams
    required_inputs = ("structure",)

    def run(self, p, inputs, out, ctx):
        from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack

        solid, meta = load(one(inputs, "structure"))
        voxel = voxel_of(meta, one(inputs, "structure"))
        k0, k1 = p.slices or (0, solid.shape[0])
        if not 0 <= k0 < k1 <= solid.shape[0]:
            raise FibsynthError(f"params.slices: {k0}:{k1} outside 0:{solid.shape[0]}")
        st = StackSettings(energy_kev=p.energy_kev, electrons_per_pixel=p.electrons_per_pixel, seed=p.seed,
                           incidence_deg=p.incidence_deg, probe_fwhm_nm=p.probe_fwhm_nm)
        res = simulate_stack(solid, voxel, st, slices=(k0, k1), progress=False, backend=p.backend, device=p.device)
        img = np.asarray(res["eta"], np.float32)
        m = VolumeMeta(kind="image", voxel_size_nm=voxel, generator="montecarlo", energy_kev=p.energy_kev,
                       materials={"0": "epoxy", "1": "gold"}, seed=p.seed,
                       parameters={**st.model_dump(), "slices": [k0, k1]})
        save(out, img, m, labels=solid[k0:k1])
        return {"slices": [k0, k1], "electrons": int(img.size * p.electrons_per_pixel)}


# ------------------------------------------------------------------------------------------------ fast path

class FastParams(StrictModel):
    energy_kev: float = Field(ge=0.2, le=30.0)
    incidence_deg: float = Field(38.0, ge=0, le=85)
    translation: Literal["auto", "gan", "projection"] = "auto"
    seed: int = Field(0, ge=0, lt=2**63, description="seed of the translation model's noise input")


class FastStep(Step):
    """Projection + CycleGAN (``model`` input, else the shipped model for the energy); projection alone when
    ``translation: projection`` or (``auto``) when no model exists for the energy. The summary says which."""

    Params = FastParams
    required_inputs = ("structure",)
    optional_inputs = ("model",)

    def run(self, p, inputs, out, ctx):
        from fibsynth.fastsim.projection import project
        from fibsynth.synth import shipped_model_for, synthesize

        solid, meta = load(one(inputs, "structure"))
        voxel = voxel_of(meta, one(inputs, "structure"))
        model: str | None = None
        if "model" in inputs:
            model = str(one(inputs, "model") / MODEL)
        elif p.translation != "projection":
            try:
                model = shipped_model_for(p.energy_kev)
            except FibsynthError:
                if p.translation == "gan":
                    raise
        if p.translation == "projection":
            model = None
        if model is None:
            img, rec = project(solid, voxel.zyx(), p.energy_kev, incidence_deg=p.incidence_deg)
            record = {"translation": "none (projection only: no model for this energy)" if p.translation == "auto"
                      else "none (projection only, as asked)",
                      "projection": {k: v for k, v in rec.items() if k not in ("cells", "weights")}}
        else:
            _, img, rec = synthesize(solid, voxel.zyx(), p.energy_kev, model=model, incidence_deg=p.incidence_deg,
                                    seed=p.seed)
            record = {**rec, "translation": "shipped " + model if "model" not in inputs else "experiment-trained CycleGAN"}
        m = VolumeMeta(kind="image", voxel_size_nm=voxel, generator="fast path", energy_kev=p.energy_kev,
                       materials={"0": "epoxy", "1": "gold"}, parameters=json.loads(json.dumps(record, default=str)))
        save(out, np.asarray(img, np.float32), m, labels=solid)
        return {"translation": record["translation"]}


# ------------------------------------------------------------------------------------------------ degrade

class DegradeParams(StrictModel):
    gamma: float = Field(1.0, gt=0.05, le=20)
    gain: float = Field(1.0, gt=0)
    offset: float = 0.0
    blur_sigma_px: float = Field(0.0, ge=0, le=20)
    noise_std: float = Field(0.0, ge=0, le=10, description="Gaussian noise, as a fraction of the 1-99 % range")
    seed: int = Field(0, ge=0)


class DegradeStep(Step):
    """A different contrast curve, blur and noise: a stand-in for a real microscope's images (the simple case of
    the microscope stage, :func:`fibsynth.microscope.simple_degrade`)."""

    Params = DegradeParams
    required_inputs = ("images",)

    def run(self, p, inputs, out, ctx):
        from fibsynth.microscope import simple_degrade

        src = one(inputs, "images")
        img, meta = load(src)
        y = simple_degrade(img, gamma=p.gamma, gain=p.gain, offset=p.offset, blur_sigma_px=p.blur_sigma_px,
                           noise_std=p.noise_std, seed=p.seed)
        m = meta.model_copy(update={"generator": f"degraded {meta.generator}", "parameters": {**meta.parameters, "degrade": p.model_dump()}})
        save(out, y, m, labels=load_labels(src))
        return {}


# ------------------------------------------------------------------------------------------------ CycleGAN

class AdaptParams(StrictModel):
    epochs: int = Field(5, ge=1, le=100000)
    patch: int = Field(64, ge=16, le=4096)
    stride: int = Field(32, ge=1, le=4096)
    batch: int = Field(4, ge=1, le=1024)
    lr: float = Field(2e-4, gt=0, le=1)
    max_patches: int | None = Field(None, ge=1)
    gen_channels: int = Field(16, ge=1, le=256)
    gen_depth: int = Field(3, ge=1, le=6)
    disc_channels: int = Field(32, ge=1, le=256)
    seed: int = Field(0, ge=0)
    accelerator: str = "auto"


class AdaptStep(Step):
    """Train an unpaired CycleGAN from the ``source`` stack's look to the ``target``'s (fibsynth.gan.train)."""

    Params = AdaptParams
    required_inputs = ("source", "target")

    def run(self, p, inputs, out, ctx):
        from fibsynth.gan.model import Architecture
        from fibsynth.gan.train import TrainSettings, train

        src, _ = load(one(inputs, "source"))
        tgt, _ = load(one(inputs, "target"))
        s = TrainSettings(epochs=p.epochs, patch=p.patch, stride=p.stride, batch=p.batch, lr=p.lr,
                          max_patches=p.max_patches, seed=p.seed, early_stop_patience=max(p.epochs, 1), samples=0)
        arch = Architecture(gen_channels=p.gen_channels, gen_depth=p.gen_depth, disc_channels=p.disc_channels)
        summary = train([src], [tgt], out / MODEL, s, arch, accelerator=p.accelerator, progress=False)
        return {k: v for k, v in summary.items() if isinstance(v, (int, float, str)) and k != "out"}


class TranslateParams(StrictModel):
    direction: Literal["ab", "ba"] = "ab"
    tile: int = Field(512, ge=16, le=8192)
    seed: int = Field(0, ge=0, lt=2**63, description="seed of the model's noise input")


class TranslateStep(Step):
    Params = TranslateParams
    required_inputs = ("model", "images")

    def run(self, p, inputs, out, ctx):
        from fibsynth.gan import Translator

        src = one(inputs, "images")
        img, meta = load(src)
        y = Translator(str(one(inputs, "model") / MODEL), direction=p.direction, tile=p.tile,
                       seed=p.seed)(img.astype(np.float32))[0]
        m = meta.model_copy(update={"generator": f"CycleGAN-translated {meta.generator}"})
        save(out, np.asarray(y, np.float32), m, labels=load_labels(src))
        return {}


# ------------------------------------------------------------------------------------------------ segmentation

class SegmentTrainStep(Step):
    """fibsynth.segment.train on the ``images`` steps' volumes with their ground truth (``labels.npy``)."""

    from fibsynth.segment.train import TrainSettings as Params  # noqa: N814
    required_inputs = ("images",)

    def run(self, p, inputs, out, ctx):
        from fibsynth.segment.train import train

        dirs = inputs["images"] if isinstance(inputs["images"], list) else [inputs["images"]]
        for d in dirs:
            if not (d / LABELS).exists():
                raise FibsynthError("inputs.images: this stack has no ground truth to train on", d)
        rec = train([d / VOLUME for d in dirs], [d / LABELS for d in dirs], out / MODEL, p, verbose=False)
        return {k: v for k, v in rec.items() if isinstance(v, (int, float, str))}


class PredictParams(StrictModel):
    block: int = Field(32, ge=1, le=4096)
    overlap: float = Field(0.25, ge=0, lt=1)
    batch: int = Field(4, ge=1, le=1024)
    device: str = "cpu"


class SegmentPredictStep(Step):
    Params = PredictParams
    required_inputs = ("model", "images")

    def run(self, p, inputs, out, ctx):
        from fibsynth.segment.infer import predict_array

        src = one(inputs, "images")
        img, meta = load(src)
        pred = predict_array(one(inputs, "model") / MODEL, img, block=p.block, overlap=p.overlap, batch=p.batch,
                             device=p.device)
        m = VolumeMeta(kind="label", voxel_size_nm=meta.voxel_size_nm, generator="segmentation",
                       energy_kev=meta.energy_kev)
        save(out, pred, m, labels=load_labels(src))
        return {"solid_fraction": float(pred.mean())}


# ------------------------------------------------------------------------------------------------ evaluation

class EvaluateParams(StrictModel):
    ground_truth: bool = True
    isotropy: bool = False


class EvaluateStep(Step):
    """MP / MGP / MDS against the ground truth (the ``truth`` step's volume, else the prediction's own labels) and
    optionally the isotropy errors of the prediction."""

    Params = EvaluateParams
    required_inputs = ("prediction",)
    optional_inputs = ("truth",)

    def run(self, p, inputs, out, ctx):
        from fibsynth.metrics import evaluate_segmentation, isotropy_report

        src = one(inputs, "prediction")
        pred, meta = load(src)
        res: dict[str, Any] = {}
        if p.ground_truth:
            truth = load(one(inputs, "truth"))[0] if "truth" in inputs else load_labels(src)
            if truth is None:
                raise FibsynthError("params.ground_truth: the prediction has no ground truth; give inputs.truth", src)
            res.update({k: float(v) for k, v in evaluate_segmentation(pred, truth).items()})
        if p.isotropy:
            iso = isotropy_report(pred, voxel_of(meta, src).zyx())
            res.update({k: float(v) for k, v in iso.items() if isinstance(v, (int, float))})
        (out / METRICS).write_text(json.dumps(res, indent=2))
        return {k: round(res[k], 4) for k in ("MP", "MGP", "MDS", "e_tpcf", "e_lpf", "e_diameter") if k in res}


# ------------------------------------------------------------------------------------------------ tables

class TableParams(StrictModel):
    title: str = ""
    metrics: list[str] = Field(min_length=1)
    cells: dict[str, dict[str, str]] = Field(min_length=1, description="row -> column group -> evaluate step")
    digits: int = Field(3, ge=0, le=10)
    note: str = ""


class TableStep(Step):
    Params = TableParams

    def run(self, p, inputs, out, ctx):
        dirs: dict[str, Path] = ctx["dirs"]
        groups: list[str] = []
        for row in p.cells.values():
            for g in row:
                if g not in groups:
                    groups.append(g)
        single = len(groups) == 1
        header = ["model"] + [m if single else f"{g} {m}" for g in groups for m in p.metrics]
        rows = []
        for label, row in p.cells.items():
            vals = [label]
            for g in groups:
                metrics = json.loads((dirs[row[g]] / METRICS).read_text()) if g in row else {}
                for m in p.metrics:
                    if g in row and m not in metrics:
                        raise FibsynthError(f"params.cells: step '{row[g]}' has no metric '{m}' (has: {', '.join(metrics)})")
                    vals.append(f"{metrics[m]:.{p.digits}f}" if g in row else "")
            rows.append(vals)
        md = []
        if p.title:
            md += [f"**{p.title}**", ""]
        md += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(r) + " |" for r in rows]
        if p.note:
            md += ["", p.note]
        (out / "table.md").write_text("\n".join(md) + "\n")
        buf = io.StringIO()
        csv.writer(buf).writerows([header] + rows)
        (out / "table.csv").write_text(buf.getvalue())
        return {"rows": len(rows)}


STEP_KINDS: dict[str, Step] = {
    "structure": StructureStep(),
    "montecarlo": MonteCarloStep(),
    "fast": FastStep(),
    "degrade": DegradeStep(),
    "adapt": AdaptStep(),
    "translate": TranslateStep(),
    "segment_train": SegmentTrainStep(),
    "segment_predict": SegmentPredictStep(),
    "evaluate": EvaluateStep(),
    "table": TableStep(),
}

__all__ = ["STEP_KINDS", "Step", "load", "load_labels"]
