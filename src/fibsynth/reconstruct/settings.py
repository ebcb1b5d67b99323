"""Settings of ``fibsynth reconstruct`` (one validated pydantic model; every field has a sensible default)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from fibsynth.config import StrictModel
from fibsynth.errors import FibsynthError
from fibsynth.reconstruct.inspect import CORRECTIONS

DEFAULT_ENERGY_KEV = 2.0
DEFAULT_SEG_K = 2  # the 2.5D U-Net's context slices on each side (ReconstructSettings.seg_k)


class ReconstructSettings(StrictModel):
    voxel_nm: float | None = Field(None, gt=0, le=1e4, description="pixel size nm (default: the file's metadata)")
    slice_nm: float | None = Field(None, gt=0, le=1e4, description="slice thickness nm (default: the file's, else the pixel size)")
    energy_kev: float | None = Field(None, ge=0.2, le=30, description="beam energy keV (default: the file's, else 2)")
    solid: str = Field("gold", description="solid material")
    pore: str = Field("epoxy", description="pore filling")
    engine: Literal["fast", "mc"] = Field("fast", description="imaging of the training structures")
    translation: Literal["auto", "paired", "cyclegan", "projection"] = Field(
        "auto", description="fast engine: the projection's translation to the Monte Carlo look (auto: the paired "
        "translator where it applies -- BSE: gold/epoxy, 1-4 keV; in-lens SE: silicon/vacuum, 2 keV --, else the "
        "shipped CycleGAN (BSE only), else none)")
    detector: Literal["bse", "se", "inlens", "et"] = Field(
        "bse", description="the detector your stack was imaged with: bse (backscatter, the default), inlens (in-lens "
        "SE), se (every escaping SE, ideal) or et (Everhart-Thornley: SE + a BSE share, trench shadow; Monte Carlo "
        "engine only). SE detectors on the fast engine need open pores (pore vacuum): the paired SE translator "
        "where it applies (in-lens, silicon, 2 keV), else the SE projection (fastsim/se_projection.py)")
    electrons_per_pixel: int = Field(20, ge=1, le=100000, description="Monte Carlo only")
    structures: int = Field(3, ge=1, le=64, description="training structures drawn around the estimates")
    val_structures: int = Field(1, ge=1, le=16, description="held-out synthetic structures for validation")
    synth_slices: int | None = Field(None, ge=4, le=4096, description="slices per synthetic stack (default: min(real, 48))")
    synth_side: int | None = Field(None, ge=32, le=4096, description="y/x size of synthetic stacks (default: real, 64..128)")
    adapt: bool = Field(True, description="adapt the synthetic images to the real stack (method: adapt_method)")
    adapt_method: Literal["histogram", "linear", "cyclegan"] = Field(
        "histogram", description="histogram: monotone gray-value map onto the real stack's distribution (quantile "
        "matching; the default, measured against the others in docs/reconstruct.md); linear: only the 1-99 % gray "
        "range mapped onto the real stack's; cyclegan: a small CycleGAN trained on this stack (gan_* settings)")
    gan_epochs: int | None = Field(None, ge=1, le=1000)
    gan_patches: int | None = Field(None, ge=1, le=100000, description="CycleGAN patches per epoch")
    gan_channels: int | None = Field(None, ge=2, le=128, description="CycleGAN generator width")
    mode: Literal["2d", "2.5d", "3d"] = Field("2.5d", description="segmentation network")
    seg_steps: int | None = Field(None, ge=1, le=10**6, description="optimizer steps of the segmentation training")
    seg_features: tuple[int, ...] = Field(
        (16, 32, 64), description="U-Net widths per level. (32, 64, 128) was measured against this default on the "
        "full-size Monte Carlo test stack in 4 paired runs (same data and seed): differences +0.052, +0.012, -0.041, "
        "+0.002 MDS -- no clear gain; both widths have bad training seeds (docs/reconstruct.md, recon7)")
    seg_batch: int = Field(16, ge=1, le=1024)
    seg_k: int = Field(
        DEFAULT_SEG_K, ge=1, le=8, description="2.5D U-Net (mode 2.5d): neighbouring slices on each side of the slice "
        "it segments, given to the network as channels (2 k + 1 slices in all; ~10 % more CPU per optimizer step at 4). "
        "Measured (docs/reconstruct.md, recon14): 4 against 2 on five paired full-size runs, final MDS +0.007, "
        "-0.006, +0.010, +0.007, +0.003 -- a gain on average, not on every pair, so 2 stays the default. Other modes "
        "have no context slices: another value is refused with them")
    seg_seeds: int = Field(
        2, ge=1, le=8, description="U-Nets trained per round on the same synthetic data with different seeds (seed, "
        "seed + 1, ...), combined as seg_combine says: their P(solid) averaged (mean, the default), or the one whose "
        "reconstruction of your stack, imaged again by the fast path, correlates best with the stack kept (choose; "
        "label-free, fibsynth.reconstruct.estimate.choose_candidate); their agreement also guards the round choice "
        "(estimate.choose_round). N costs N trainings "
        "and predictions per round (2, the default: one more training per round, ~1 min of an idle core). Measured "
        "(docs/reconstruct.md, recon8): the choice kept the best or a near-best seed on every stack, where the "
        "synthetic validation score picked the worst seed on two; 1 is the single network of before")
    seg_combine: Literal["choose", "mean"] = Field(
        "mean", description="what becomes of the seg_seeds networks of a round: mean (the default since recon14) "
        "averages their P(solid) (an ensemble: no extra training, one more probability map on disk per round); choose "
        "keeps the one chosen by forward consistency (seg_seeds). Measured (docs/reconstruct.md, recon13, recon14): "
        "with the round rule that also asks the seeds' agreement (recon14), mean beat choose on all five paired full-size "
        "runs (+0.001 to +0.004 MDS); with the old rule it had tipped one round choice to a worse round 2 (-0.036)")
    round2_init: Literal["scratch", "round1"] = Field(
        "scratch", description="where round 2's U-Nets (trained when the re-estimate moved) start: scratch (the "
        "default) -- random weights, as round 1's; round1 -- each from round 1's network of the same seed, fine-tuned "
        "on round 2's structures. Measured (docs/reconstruct.md, round16): the warm start made round 2 cheaper and no "
        "worse on the full-size adapted stacks, but where round 1 had failed (small stacks without adaptation) it kept "
        "round 1's failure (grf: round 2 0.43 against 0.69 from scratch)")
    round2_steps: float = Field(
        0.5, gt=0, le=1, description="round 2's optimizer steps as a fraction of round 1's (seg_steps), in whole "
        "validation rounds of 20 steps, at least one. 0.5 (the default since round16): a round 2 from scratch is the "
        "first half of the full training with the same seed, so where that training's best validation came in its "
        "first half (20 of 60 full-size trainings measured) the network is the same; round 2 cost 3-41 % less CPU on "
        "four full-size stacks with no MDS loss beyond the seeds' spread (docs/reconstruct.md, round16). 1: round 2 "
        "trained as long as round 1 (before round16)")
    correct: tuple[str, ...] = Field((), description="corrections of the real stack: align, destripe, flatten")
    align_region: tuple[int, int, int, int] | Literal["auto"] | None = Field(
        None, description="register the slices on this rectangle only, (y0, y1, x0, x1) in pixels, half-open, of the "
        "stack as given (also as text Y0:Y1,X0:X1): a band that does not change from slice to slice, e.g. fiducial "
        "marks milled into the protective cap, measures the stage drift without the apparent motion of slanted "
        "features (fibsynth microscope correct --align-region; docs/microscope.md). auto: the band found by "
        "fibsynth.microscope.find_fiducial_region in the stack's first 48 slices, used exactly as a rectangle given "
        "by hand and recorded (region, confidence, reason) in the inspection; a stack without such a band is refused "
        "in one line before any step runs. The inspection's shifts and the align correction use it; needs correct "
        "align")
    reestimate: bool = Field(True, description="re-estimate the structure from the first reconstruction, regenerate if it moved")
    reestimate_bias: bool = Field(
        False, description="remove the U-Net's own bias from the re-estimate (off by default: measured on two stacks "
        "only): the round's network(s) segment its "
        "held-out synthetic stacks (imaged and adapted like the training data, truth known), the quantities measured "
        "there minus the truth's (solid fraction on the odds scale, ligament and pore diameters in nm) are subtracted "
        "from those measured on your stack's reconstruction (fibsynth.reconstruct.estimate.reconstruction_bias). "
        "Measured in docs/reconstruct.md (bias18)")
    block: int = Field(32, ge=1, le=4096, description="slices per block when segmenting the real stack")
    tta: int = Field(1, ge=1, le=8, description="test-time augmentation: P(solid) averaged over this many in-plane "
                     "symmetries of the real stack (rotations and flips; 1 = none, the default: 8 cost 8x the prediction and "
                     "gained nothing on the Monte Carlo test stacks, -0.001 to -0.003 MDS). Figures in "
                     "docs/reconstruct.md (recon6)")
    budget_min: float = Field(20.0, gt=0, le=10000, description="time budget in minutes that guides the automatic choices")
    threads: int | Literal["auto"] = Field(
        "auto", description="torch and numba CPU threads during the run (restored afterwards). auto (the default): "
        "the usable CPUs (CPU affinity, a cgroup CPU quota) less the machine's current 1-minute load average, "
        "between 1 and 16 (fibsynth.ml.runtime.auto_threads), chosen when the run starts and recorded in its "
        "summary: 1 on a shared 2-core machine that is already busy (there one thread ran the CycleGAN 17x and the "
        "shipped translation 15x faster than two), all of an idle machine's cores up to 16. An integer: that many")
    device: str = Field("auto", description="torch device of the CycleGAN, the U-Net training and the prediction: auto "
                        "(cuda if this machine has a CUDA GPU, else cpu), cpu, cuda or cuda:N. Not part of the step "
                        "cache's keys: a run resumed on another device reuses what is done")
    seed: int = Field(0, ge=0, lt=2**32)

    @field_validator("threads", mode="before")
    @classmethod
    def _check_threads(cls, v):
        """auto, or a whole number in [1, 1024] (also as text): one line naming ``threads`` otherwise."""
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v.strip())
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1024:
            raise FibsynthError(f"must be auto or a whole number in [1, 1024] (got {v!r})", param="threads")
        return v

    @field_validator("align_region", mode="before")
    @classmethod
    def _read_align_region(cls, v):
        return parse_align_region(v)

    @model_validator(mode="after")
    def _check_combinations(self):
        """Combinations refused before anything runs (the energy-dependent ones: :func:`check_imaging`). A
        :class:`FibsynthError` passes through pydantic unchanged: one line naming the parameter."""
        bad = [c for c in self.correct if c not in CORRECTIONS]
        if bad:
            raise FibsynthError(f"unknown correction(s) {', '.join(bad)} (choose from {', '.join(CORRECTIONS)})",
                                param="correct")
        if self.align_region is not None and "align" not in self.correct:
            raise FibsynthError("registers the slices for the align correction: needs align among the "
                                "corrections", param="align_region")
        if self.seg_k != DEFAULT_SEG_K and self.mode != "2.5d":  # (the default: also in a 2d/3d run's saved settings)
            raise FibsynthError(f"the context slices ({self.seg_k} on each side) belong to the 2.5D U-Net: leave it "
                                f"out with mode {self.mode}, or use mode 2.5d", param="seg_k")
        if self.engine == "mc" and self.translation != "auto":
            raise FibsynthError(f"{self.translation!r} applies to the fast engine only (the Monte Carlo engine's images "
                                "need no translation): leave it at auto or use engine fast", param="translation")
        if self.detector != "bse" and self.engine == "fast":
            if self.detector == "et":
                raise FibsynthError("the Everhart-Thornley detector has no fast model (trench shadow, BSE share): "
                                    "use engine mc, or detector inlens", param="detector")
            from fibsynth.physics.materials import is_vacuum

            if not is_vacuum(self.pore):
                raise FibsynthError(f"the fast {self.detector} SE model images open pores only (the SE projection, "
                                    f"fastsim/se_projection.py): give pore vacuum, or use engine mc for "
                                    f"{self.pore}-filled pores", param="detector")
            if self.translation == "cyclegan":
                raise FibsynthError(f"{self.translation!r} has no secondary-electron model (the CycleGANs are BSE, "
                                    "gold/epoxy): leave it at auto, or give paired or projection", param="translation")
        return self


def parse_align_region(value: Any) -> tuple[int, int, int, int] | Literal["auto"] | None:
    """The one place that reads ``align_region`` / ``--align-region``: None, ``auto`` (any case: the band is found
    in the stack once it is read, :func:`fibsynth.reconstruct.workflow.resolve_align_region`), text
    ``Y0:Y1,X0:X1`` (:func:`fibsynth.microscope.parse_region`, the syntax of ``fibsynth microscope correct
    --align-region``) or four whole numbers, -> ``(y0, y1, x0, x1)`` with ``0 <= y0 < y1`` and ``0 <= x0 < x1``; one line naming
    ``align_region`` otherwise. Whether the rectangle lies inside the stack's image region is checked once the stack
    is read (:func:`fibsynth.reconstruct.workflow.region_in_crop`)."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, str):
        from fibsynth.microscope import parse_region

        y0, y1, x0, x1 = parse_region(value, param="align_region", expected="auto or Y0:Y1,X0:X1")
    else:
        try:
            y0, y1, x0, x1 = (int(v) for v in value)
            if any(float(v) != int(v) for v in value):
                raise ValueError
        except (TypeError, ValueError):
            raise FibsynthError(f"expected auto, Y0:Y1,X0:X1 or four whole numbers (y0, y1, x0, x1), got {value!r}",
                                param="align_region") from None
    if not (0 <= y0 < y1 and 0 <= x0 < x1):
        raise FibsynthError(f"rows {y0}:{y1}, columns {x0}:{x1}: need 0 <= Y0 < Y1 and 0 <= X0 < X1",
                            param="align_region")
    return y0, y1, x0, x1


def check_imaging(s: ReconstructSettings, energy_kev: float) -> None:
    """Refuse, in one line and before any step runs or any folder is made, an imaging the workflow could not do at
    this beam energy (known only once the stack's metadata is read): the materials, and the translation asked for
    (``paired``: the paired translator's energy range and materials -- for an SE detector the SE translator's,
    :func:`fibsynth.reconstruct.generate.se_translation`; ``cyclegan``: a shipped model for the energy and
    materials), and for an SE detector materials without secondary-electron parameters."""
    from fibsynth.physics.materials import get_material

    for name in ("solid", "pore"):
        try:
            get_material(getattr(s, name), allow_vacuum=(name == "pore"))  # open pores: vacuum
        except FibsynthError as exc:
            raise FibsynthError(exc.message, param=name) from None
    from fibsynth.reconstruct.generate import check_translation

    if s.detector != "bse":  # secondary electrons: the materials need SE parameters (as mc stack --detector)
        from fibsynth.physics.montecarlo.secondary import se_table

        try:
            se_table([get_material(s.solid), get_material(s.pore, allow_vacuum=True)])
        except FibsynthError as exc:
            raise FibsynthError(f"{s.detector} detector: {exc.message}", param="solid") from None
        if s.engine == "fast":  # paired where the shipped SE translator does not apply: refused here
            from fibsynth.reconstruct.generate import se_translation

            se_translation(s.translation, energy_kev, (s.solid, s.pore), s.detector)
    elif s.engine == "fast":
        check_translation(s.translation, energy_kev, (s.solid, s.pore))
