"""``fibsynth reconstruct REAL_STACK OUT_DIR``: the command over :func:`fibsynth.reconstruct.reconstruct`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fibsynth.errors import FibsynthError


def reconstruct_cmd(
    real_stack: Path = typer.Argument(..., help="Your FIB-SEM image stack: TIFF, folder of slices, Zarr or .npy (any bit depth)."),
    out_dir: Path = typer.Argument(..., help="Output folder: segmentation.tif, probability.tif, confidence.tif, otsu.tif, kmeans.tif, summary.json, report.html (and work/, the cache)."),
    voxel_nm: Optional[float] = typer.Option(None, "--voxel-nm", help="Pixel size in nm (default: the file's metadata)."),
    slice_nm: Optional[float] = typer.Option(None, "--slice-nm", help="Slice thickness in nm (default: the file's, else the pixel size)."),
    energy_kev: Optional[float] = typer.Option(None, "--energy-kev", help="Beam energy in keV (default: the file's, else 2)."),
    solid: str = typer.Option("gold", "--solid", help="Solid material (bright phase)."),
    pore: str = typer.Option("epoxy", "--pore", help="Pore filling (dark phase), or vacuum for open (not infiltrated) pores."),
    engine: str = typer.Option("fast", "--engine", help="Imaging of the training structures: fast (seconds) or mc (Monte Carlo, slow)."),
    translation: str = typer.Option("auto", "--translation", help="Fast engine: auto (the paired translator where it applies: gold/epoxy at 1-4 keV, or with --detector inlens silicon/vacuum at 2 keV; else the shipped CycleGAN (BSE), else the projection alone), paired, cyclegan or projection."),
    detector: str = typer.Option("bse", "--detector", help="The detector your stack was imaged with: bse (default), inlens (in-lens SE), se (every escaping SE) or et (Everhart-Thornley, --engine mc only). SE on the fast engine needs open pores (--pore vacuum): the paired SE translator where it applies (inlens, silicon, 2 keV), else the SE projection."),
    electrons_per_pixel: int = typer.Option(20, "--electrons-per-pixel", help="Monte Carlo only."),
    structures: int = typer.Option(3, "--structures", help="Training structures drawn around the estimate."),
    val_structures: int = typer.Option(1, "--val-structures", help="Held-out synthetic structures for validation."),
    synth_slices: Optional[int] = typer.Option(None, "--synth-slices", help="Slices per synthetic stack (default: min(yours, 48))."),
    synth_side: Optional[int] = typer.Option(None, "--synth-side", help="y/x size of the synthetic stacks (default: yours, within 64..128)."),
    adapt: bool = typer.Option(True, "--adapt/--no-adapt", help="Adapt the synthetic images to your stack (see --adapt-method)."),
    adapt_method: str = typer.Option("histogram", "--adapt-method", help="histogram (default: gray values mapped onto your stack's histogram, seconds), linear (only the gray range) or cyclegan (a small CycleGAN trained on your stack, minutes)."),
    gan_epochs: Optional[int] = typer.Option(None, "--gan-epochs", help="CycleGAN epochs (default: chosen from the stack size and budget)."),
    gan_patches: Optional[int] = typer.Option(None, "--gan-patches", help="CycleGAN patches per epoch (default: chosen)."),
    gan_channels: Optional[int] = typer.Option(None, "--gan-channels", help="CycleGAN generator width (default 16)."),
    mode: str = typer.Option("2.5d", "--mode", help="Segmentation network: 2.5d (default), 2d or 3d."),
    seg_steps: Optional[int] = typer.Option(None, "--seg-steps", help="Optimizer steps of the segmentation training (default: from --budget-min)."),
    seg_seeds: Optional[int] = typer.Option(None, "--seg-seeds", help="U-Nets trained per round with different seeds, combined as --seg-combine says (their mean, or the one whose reconstruction, imaged again, correlates best with your stack; label-free). N costs N trainings (default: see docs/reconstruct.md)."),
    seg_k: Optional[int] = typer.Option(None, "--seg-k", help="2.5D U-Net: neighbouring slices on each side of the slice it segments (1-8; 2 k + 1 slices in all; --mode 2.5d only) (default: see docs/reconstruct.md)."),
    seg_combine: Optional[str] = typer.Option(None, "--seg-combine", help="With --seg-seeds above 1: choose (keep the network chosen by forward consistency) or mean (average the networks' P(solid), an ensemble; no extra training) (default: see docs/reconstruct.md)."),
    round2_init: Optional[str] = typer.Option(None, "--round2-init", help="Where round 2's U-Nets start when the re-estimate moved: round1 (round 1's network of the same seed, fine-tuned on round 2's structures) or scratch (random weights, as round 1) (default: see docs/reconstruct.md, round16)."),
    round2_steps: Optional[float] = typer.Option(None, "--round2-steps", help="Round 2's optimizer steps as a fraction of round 1's (0-1] (default: see docs/reconstruct.md, round16)."),
    correct: str = typer.Option("", "--correct", help="Corrections of your stack, comma-separated: align, destripe, flatten."),
    align_region: Optional[str] = typer.Option(None, "--align-region", help="Register the slices on this rectangle only, Y0:Y1,X0:X1 (pixels, half-open, of your stack as given): a band that does not change from slice to slice, e.g. fiducial marks milled into the protective cap, measures the stage drift without the apparent motion of slanted features; the whole slices are moved. auto: the band found in the first 48 slices (fibsynth.microscope.find_fiducial_region), printed and recorded with its confidence; a stack without one is refused in one line. Needs --correct align."),
    reestimate: bool = typer.Option(True, "--reestimate/--no-reestimate", help="Re-estimate the structure from the first reconstruction and regenerate once if it moved."),
    reestimate_bias: Optional[bool] = typer.Option(None, "--reestimate-bias/--no-reestimate-bias", help="Remove the network's own bias, measured on held-out synthetic stacks, from the re-estimate (default: off; see docs/reconstruct.md, bias18; two phases only)."),
    block: int = typer.Option(32, "--block", help="Slices per block when segmenting your stack."),
    tta: int = typer.Option(1, "--tta", help="Test-time augmentation: average the network's output over this many in-plane rotations/flips of your stack (1-8; 1 = none, the default; N costs N predictions; two-phase reconstructions only)."),
    budget_min: float = typer.Option(20.0, "--budget-min", help="Time budget (minutes) that guides the automatic choices."),
    truth: Optional[Path] = typer.Option(None, "--truth", help="Ground truth of the same stack (benchmarks): adds MDS of every method."),
    threads: str = typer.Option("auto", "--threads", help="torch and numba CPU threads: auto (default: the usable CPUs less the current 1-minute load average, 1..16; printed and recorded in summary.json) or a number."),
    seed: int = typer.Option(0, "--seed", help="Random seed of every random step."),
    device: str = typer.Option("auto", "--device", help="Where the networks train and run: auto (a CUDA GPU if this machine has one, else the CPU), cpu, cuda or cuda:N."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress output."),
    phases: Optional[int] = typer.Option(None, "--phases", help="Three or more phases (3-5): labels 0..N-1, darkest first unless --materials names them."),
    materials: Optional[str] = typer.Option(None, "--materials", help="One material per label, comma-separated, label 0 the filling (e.g. epoxy,Ni,Zr0.852Y0.148O1.926:5.9): an n-phase reconstruction (docs/reconstruct.md)."),
) -> None:
    """Segment a real FIB-SEM stack with networks trained on matched synthetic data; writes a report."""
    from fibsynth.errors import flag_names

    with flag_names(out_dir="OUT_DIR", real_stack="REAL_STACK", adapt="--adapt/--no-adapt"):
        _run(real_stack, out_dir, voxel_nm, slice_nm, energy_kev, solid, pore, engine, electrons_per_pixel, structures,
             val_structures, synth_slices, synth_side, adapt, adapt_method, gan_epochs, gan_patches, gan_channels, mode, seg_steps,
             correct, reestimate, block, budget_min, truth, threads, seed, quiet, phases=phases, materials=materials,
             translation=translation, detector=detector, tta=tta, device=device, seg_seeds=seg_seeds,
             seg_combine=seg_combine, align_region=align_region, seg_k=seg_k, round2_init=round2_init,
             round2_steps=round2_steps, reestimate_bias=reestimate_bias)


def _run(real_stack, out_dir, voxel_nm, slice_nm, energy_kev, solid, pore, engine, electrons_per_pixel, structures,
         val_structures, synth_slices, synth_side, adapt, adapt_method, gan_epochs, gan_patches, gan_channels, mode, seg_steps,
         correct, reestimate, block, budget_min, truth, threads, seed, quiet, *, phases=None, materials=None,
         translation="auto", detector="bse", tta=1, device="auto", seg_seeds=None, seg_combine=None,
         align_region=None, seg_k=None, round2_init=None, round2_steps=None, reestimate_bias=None) -> None:
    from fibsynth.reconstruct.settings import ReconstructSettings
    from fibsynth.reconstruct.run import reconstruct  # binary workflow, or n phases (MultiphaseSettings)

    fixes = tuple(c.strip() for c in correct.split(",") if c.strip())
    cls, extra = ReconstructSettings, {}
    if phases is not None or materials is not None:  # three or more phases (reconstruct/multiphase.py)
        from fibsynth.reconstruct.multiphase import MultiphaseSettings

        cls = MultiphaseSettings
        extra = {"phases": phases,
                 "materials": None if materials is None else tuple(m.strip() for m in materials.split(","))}
    s = cls.build(None, **extra, voxel_nm=voxel_nm, slice_nm=slice_nm, energy_kev=energy_kev, solid=solid,
                                  pore=pore, engine=engine, translation=translation.lower(),
                                  detector=detector.lower(),
                                  electrons_per_pixel=electrons_per_pixel,
                                  structures=structures, val_structures=val_structures, adapt=adapt,
                                  adapt_method=adapt_method.lower(),
                                  synth_slices=synth_slices, synth_side=synth_side,
                                  gan_epochs=gan_epochs, gan_patches=gan_patches, gan_channels=gan_channels,
                                  mode=mode.lower(), seg_steps=seg_steps, correct=fixes, align_region=align_region,
                                  reestimate=reestimate,
                                  block=block, budget_min=budget_min, threads=threads, seed=seed, tta=tta,
                                  device=device.lower(),
                                  **({"seg_seeds": seg_seeds} if seg_seeds is not None else {}),
                                  **({"seg_k": seg_k} if seg_k is not None else {}),
                                  **({"round2_init": round2_init.lower()} if round2_init is not None else {}),
                                  **({"round2_steps": round2_steps} if round2_steps is not None else {}),
                                  **({"reestimate_bias": reestimate_bias} if reestimate_bias is not None else {}),
                                  **({"seg_combine": seg_combine.lower()} if seg_combine is not None else {}))
    if truth is not None and not truth.exists():
        raise FibsynthError("file not found", truth, param="truth")
    reconstruct(real_stack, out_dir, s, truth=truth, quiet=quiet)
