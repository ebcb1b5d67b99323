"""Step kinds of an experiment; each calls the pipeline layer (:mod:`fibsynth.pipeline`), which makes the product
and its metadata, and stores it in the step's folder.

Conventions inside a step's output folder: ``volume.npy`` (with its ``.npy.json`` metadata) is the step's volume
(structure, image stack or segmentation), ``labels.npy`` the ground truth aligned with it when known, ``projection.npy`` a fast step's
projection before translation, ``model/`` a trained model, ``metrics.json`` scores, ``table.md`` / ``table.csv`` tables. ``run`` returns a small summary
that is stored in the step's marker and printed in the run report.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from fibsynth.config import StrictModel, VoxelSize
from fibsynth.errors import FibsynthError

from fibsynth.experiment.store import (  # noqa: F401  (step-folder conventions, re-exported)
    LABELS, METRICS, MODEL, PROJECTION, VOLUME, load, load_labels, save, voxel_of,
)


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
        from fibsynth.pipeline import make_structure

        voxel = VoxelSize.from_xy_z(p.voxel_nm, p.slice_nm)
        prod = make_structure(p.shape, voxel, generator=p.generator, solid_fraction=p.solid_fraction,
                              ligament_nm=p.ligament_nm, upper_ligament_nm=p.upper_ligament_nm,
                              lower_ligament_nm=p.lower_ligament_nm, upper_solid_fraction=p.upper_solid_fraction,
                              lower_solid_fraction=p.lower_solid_fraction, waves=p.waves, seed=p.seed)
        save(out, prod.data, prod.meta, labels=prod.data)
        return {"solid_fraction": prod.record["solid_fraction"], "shape": prod.record["shape"]}


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
        from fibsynth.physics.montecarlo.stack import StackSettings
        from fibsynth.pipeline import montecarlo_stack

        solid, meta = load(one(inputs, "structure"))
        voxel = voxel_of(meta, one(inputs, "structure"))
        k0, k1 = p.slices or (0, solid.shape[0])
        if not 0 <= k0 < k1 <= solid.shape[0]:
            raise FibsynthError(f"params.slices: {k0}:{k1} outside 0:{solid.shape[0]}")
        st = StackSettings(energy_kev=p.energy_kev, electrons_per_pixel=p.electrons_per_pixel, seed=p.seed,
                           incidence_deg=p.incidence_deg, probe_fwhm_nm=p.probe_fwhm_nm)
        prod = montecarlo_stack(solid, voxel, st, slices=(k0, k1), backend=p.backend, device=p.device)
        save(out, prod.data, prod.meta, labels=solid[k0:k1])
        return {"slices": [k0, k1], "electrons": prod.record["electrons"]}


# ------------------------------------------------------------------------------------------------ fast path

class FastParams(StrictModel):
    energy_kev: float = Field(ge=0.2, le=30.0)
    incidence_deg: float = Field(38.0, ge=0, le=85)
    translation: Literal["best", "auto", "gan", "paired", "projection"] = Field(
        "best", description="best: the paired translator for gold/epoxy at its trained energies (1-4 keV), else gan")
    seed: int = Field(0, ge=0, lt=2**63, description="seed of the translation model's noise input")
    electrons_per_pixel: int = Field(100, ge=1, le=10**6, description="dose of the paired translator's shot noise")


class FastStep(Step):
    """The fast path (:func:`fibsynth.pipeline.fast_stack`). Default ``translation: best``: the paired translator
    (shot noise at ``electrons_per_pixel``) for gold/epoxy at the energies it was trained on, else as ``gan``;
    ``paired`` always the paired translator; ``gan`` projection + CycleGAN (``model`` input, else the shipped model
    for the energy); projection alone when ``translation: projection`` or (``auto``) when no CycleGAN exists for the
    energy. The summary says which (and, for ``best``, why)."""

    Params = FastParams
    required_inputs = ("structure",)
    optional_inputs = ("model",)

    def run(self, p, inputs, out, ctx):
        from fibsynth.pipeline import fast_stack

        solid, meta = load(one(inputs, "structure"))
        voxel = voxel_of(meta, one(inputs, "structure"))
        model = str(one(inputs, "model") / MODEL) if "model" in inputs else None
        prod = fast_stack(solid, voxel, p.energy_kev, model=model, translation=p.translation,
                          incidence_deg=p.incidence_deg, seed=p.seed, keep_projection=True,
                          electrons_per_pixel=p.electrons_per_pixel)
        if "translation" in prod.record:  # projection only
            translation = prod.record["translation"]
        elif prod.record.get("translator") == "paired":
            translation = "paired translator " + str(prod.record["translation_model"])
        else:
            translation = "shipped " + prod.record["translation_model"] if model is None else "experiment-trained CycleGAN"
        prod.meta = prod.meta.model_copy(update={"parameters": {**prod.meta.parameters, "translation": translation}})
        save(out, prod.data, prod.meta, labels=solid)
        if "projection_product" in prod.record:  # the intermediate, for reports
            prod.record["projection_product"].write(out / PROJECTION)
        summary = {"translation": translation}
        if "translation_choice" in prod.record:
            summary["translation_choice"] = prod.record["translation_choice"]
        return summary


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
        from fibsynth.pipeline import adapted_stack

        src = one(inputs, "images")
        img, meta = load(src)
        prod = adapted_stack(one(inputs, "model") / MODEL, img, meta, direction=p.direction, tile=p.tile, seed=p.seed)
        save(out, prod.data, prod.meta, labels=load_labels(src))
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
        from fibsynth.pipeline import segmentation

        src = one(inputs, "images")
        img, meta = load(src)
        prod = segmentation(one(inputs, "model") / MODEL, img, meta, block=p.block, overlap=p.overlap, batch=p.batch,
                            device=p.device)
        save(out, prod.data, prod.meta, labels=load_labels(src))
        return {"solid_fraction": prod.record["solid_fraction"]}


class BaselineParams(StrictModel):
    method: Literal["otsu", "kmeans"] = "otsu"


class BaselineStep(Step):
    """A global threshold of the ``images`` step's volume (Otsu or k-means): the baseline a trained model must beat."""

    Params = BaselineParams
    required_inputs = ("images",)

    def run(self, p, inputs, out, ctx):
        from fibsynth.pipeline import baseline_segmentation

        src = one(inputs, "images")
        img, meta = load(src)
        prod = baseline_segmentation(img, meta, method=p.method)
        save(out, prod.data, prod.meta, labels=load_labels(src))
        return {"threshold": prod.record["threshold"], "solid_fraction": float(prod.data.mean())}


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
        from fibsynth.pipeline import evaluation

        src = one(inputs, "prediction")
        pred, meta = load(src)
        truth = None
        if p.ground_truth:
            truth = load(one(inputs, "truth"))[0] if "truth" in inputs else load_labels(src)
            if truth is None:
                raise FibsynthError("params.ground_truth: the prediction has no ground truth; give inputs.truth", src)
        res = evaluation(pred, truth, voxel=voxel_of(meta, src) if p.isotropy else None, isotropy=p.isotropy)
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


# ------------------------------------------------------------------------------------------------ reports

class DemoReportParams(StrictModel):
    solid_fraction: float = Field(gt=0, lt=1, description="the structure's requested solid fraction")
    ligament_nm: float = Field(gt=0, description="the structure's requested ligament diameter")
    seed: int = Field(0, ge=0)
    real: str | None = Field(None, description="the user's own FIB-SEM stack, shown next to the simulated images")
    real_stamp: str = Field("", description="size and modification time of 'real' (a changed file redoes the report)")


class DemoReportStep(Step):
    """The demo's report (:func:`fibsynth.pipeline.demo_report.demo_report`): ``report.html``, ``summary.json``, figures."""

    Params = DemoReportParams
    required_inputs = ("structure", "heldout_structure", "montecarlo", "synthetic_train", "synthetic_heldout",
                       "model", "segmentation", "otsu", "score_unet", "score_otsu")

    def run(self, p, inputs, out, ctx):
        from fibsynth.pipeline.demo_report import demo_report

        summary = demo_report(p, {k: one(inputs, k) for k in inputs}, out)
        return {k: round(v, 4) for k, v in summary["segmentation"].items() if k.endswith("MDS")}


STEP_KINDS: dict[str, Step] = {
    "structure": StructureStep(),
    "montecarlo": MonteCarloStep(),
    "fast": FastStep(),
    "degrade": DegradeStep(),
    "adapt": AdaptStep(),
    "translate": TranslateStep(),
    "segment_train": SegmentTrainStep(),
    "segment_predict": SegmentPredictStep(),
    "baseline": BaselineStep(),
    "evaluate": EvaluateStep(),
    "table": TableStep(),
    "demo_report": DemoReportStep(),
}

__all__ = ["STEP_KINDS", "Step", "load", "load_labels"]
