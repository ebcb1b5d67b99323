"""``fibsynth gan``: train an unpaired CycleGAN between two image stacks, translate stacks with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np
import typer

from fibsynth.cliutil import emit_json
from fibsynth.errors import FibsynthError, register_flag_names

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def _read_stacks(paths: list[Path], option: str) -> tuple[list[np.ndarray], object]:
    from fibsynth.io import read_volume

    if not paths:
        raise FibsynthError(f"{option}: give at least one image stack")
    vols = [read_volume(p) for p in paths]
    stacks = [np.asarray(v.data) for v in vols]
    for p, s in zip(paths, stacks):
        if s.dtype == bool or not (np.issubdtype(s.dtype, np.integer) or np.issubdtype(s.dtype, np.floating)):
            raise FibsynthError(f"unsupported data type {s.dtype}", p)
        if s.shape != stacks[0].shape:
            raise FibsynthError(f"{option}: channels must have one shape ({stacks[0].shape} vs {s.shape})", p)
    return stacks, vols[0].meta


@app.command("train")
def train_cmd(
    source: List[Path] = typer.Option(..., "--source", help="Source-domain image stack (repeat for several channels, e.g. beam energies)."),
    target: List[Path] = typer.Option(..., "--target", help="Target-domain image stack (repeat for several channels)."),
    out: Path = typer.Option(..., "--out", help="Model directory to write (config.json, generator_*.pt, checkpoints/, samples/)."),
    epochs: int = typer.Option(100, "--epochs", help="Maximum epochs (early stopping after 25 without improvement)."),
    patch: int = typer.Option(128, "--patch", help="Training patch size (pixels)."),
    stride: int = typer.Option(64, "--stride", help="Patch stride (pixels)."),
    batch: int = typer.Option(1, "--batch", help="Patches per batch."),
    seed: int = typer.Option(0, "--seed", help="Random seed (lightning.seed_everything)."),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate (x0.1 after 10 epochs without improvement)."),
    max_patches: Optional[int] = typer.Option(None, "--max-patches", help="Patches per epoch (default: all)."),
    channels: int = typer.Option(32, "--channels", help="Generator base width."),
    depth: int = typer.Option(3, "--depth", help="Generator U-Net levels."),
    blocks: int = typer.Option(1, "--blocks", help="Residual blocks per level."),
    disc_channels: int = typer.Option(64, "--disc-channels", help="Discriminator base width."),
    norm: str = typer.Option("none", "--norm", help="Generator normalisation: none (default; tile-consistent), batch or instance."),
    noise_channels: int = typer.Option(1, "--noise-channels", help="N(0,1) input channels of the generators (stochastic texture such as shot noise; 0 = deterministic generators)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out from checkpoints/last.ckpt."),
    accelerator: str = typer.Option("auto", "--accelerator", help="Lightning accelerator: auto, cpu, gpu."),
    devices: str = typer.Option("auto", "--devices", help="Lightning devices: auto, a count, or a list like 0,1."),
    strategy: str = typer.Option("auto", "--strategy", help="Lightning strategy (auto, ddp, ...)."),
    no_augment: bool = typer.Option(False, "--no-augment", help="No random flips/rotations of the patches."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (small models on shared cores: 1 is often fastest)."),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Train a CycleGAN SOURCE <-> TARGET (unpaired); the model is MODEL_DIR (--out)."""
    from fibsynth.gan.model import Architecture
    from fibsynth.gan.train import TrainSettings, check_settings, train
    from fibsynth.ml.runtime import check_threads

    register_flag_names(gen_channels="--channels", gen_depth="--depth", gen_blocks="--blocks", gen_norm="--norm",
                        augment="--no-augment")

    if norm not in ("none", "batch", "instance"):
        raise FibsynthError(f"must be none, batch or instance (got {norm!r})", param="norm")
    if accelerator not in ("auto", "cpu", "gpu", "cuda", "mps", "tpu"):
        raise FibsynthError(f"must be auto, cpu, gpu, cuda or mps (got {accelerator!r})", param="accelerator")
    dev: object = devices
    if devices != "auto":
        try:
            dev = [int(d) for d in devices.split(",")] if "," in devices else int(devices)
        except ValueError:
            raise FibsynthError(f"must be auto, a count or a comma-separated list (got {devices!r})",
                                param="devices") from None
    settings = TrainSettings.build(None, epochs=epochs, patch=patch, stride=stride, batch=batch, seed=seed, lr=lr,
                                   max_patches=max_patches, augment=not no_augment)
    arch = Architecture.build(None, gen_channels=channels, gen_depth=depth, gen_blocks=blocks, gen_norm=norm,
                              disc_channels=disc_channels, noise_channels=noise_channels)
    check_settings(settings, arch)  # before the stacks are read
    check_threads(threads)
    src, src_meta = _read_stacks(source, "--source")
    tgt, _ = _read_stacks(target, "--target")
    extra = {"source_files": [str(p) for p in source], "target_files": [str(p) for p in target]}
    if src_meta.energy_kev is not None:
        extra["source_energy_kev"] = src_meta.energy_kev
    res = train(src, tgt, out, settings, arch, resume=resume, accelerator=accelerator, devices=dev,
                strategy=strategy, progress=progress, extra=extra, threads=threads)
    if not res:
        return
    last = res["history"][-1] if res["history"] else {}
    if json_out:
        emit_json({k: v for k, v in res.items()})
    typer.echo(f"wrote {out}: {res['epochs']} epochs in {res['seconds']:.1f} s"
               + (f", cycle L1 {last['cycle']:.4f}" if last else "")
               + (" (early stop)" if res["early_stopped"] else ""), err=True)


@app.command("translate")
def translate_cmd(
    model: str = typer.Argument(..., help="Trained model directory, or the name of a shipped model (see 'fibsynth gan models')."),
    inp: Path = typer.Argument(..., metavar="IN", help="Image stack to translate (first input channel)."),
    out: Path = typer.Argument(..., help="Output stack (format from the suffix)."),
    channel: List[Path] = typer.Option([], "--channel", help="Further input channels (stacks of IN's shape), in training order."),
    reverse: bool = typer.Option(False, "--reverse", help="Translate target -> source (needs generator_ba.pt)."),
    tile: int = typer.Option(512, "--tile", help="Tile size (pixels) for slices larger than one tile."),
    overlap: int = typer.Option(128, "--overlap", help="Tile overlap (pixels), blended with raised-cosine weights."),
    batch: int = typer.Option(4, "--batch", help="Tiles per forward pass."),
    device: Optional[str] = typer.Option(None, "--device", help="torch device (default: cuda if available, else cpu)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: torch's)."),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Output type uint8, uint16 or float32 (default: the output domain's, stored with the model)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the model's noise input (slice z uses (seed, z)); models without one ignore it."),
) -> None:
    """Translate IN with MODEL (tiled, seam-free) and write OUT in the output domain's intensity range."""
    import time

    from fibsynth.gan.infer import Translator
    from fibsynth.io import VolumeMeta, atomic_path, create_zarr, volume_format, write_volume

    if dtype is not None and dtype not in ("uint8", "uint16", "float32"):
        raise FibsynthError(f"must be uint8, uint16 or float32 (got {dtype!r})", param="dtype")
    from fibsynth.errors import register_flag_names
    from fibsynth.io.outputs import check_output

    register_flag_names(out="OUT")  # a positional argument

    check_output(out, inputs=[inp, *channel, *([Path(model)] if Path(model).exists() else [])], param="out")
    direction = "ba" if reverse else "ab"
    tr = Translator(model, direction, device, tile, overlap, batch, threads=threads, seed=seed)
    from fibsynth.io import read_volume

    vols = [read_volume(p, lazy=True) for p in [inp, *channel]]
    stacks = [v.data for v in vols]
    if len(stacks) != tr.in_channels:
        raise FibsynthError(f"the model expects {tr.in_channels} input channel(s), got {len(stacks)} (IN + --channel)")
    if tr.dst.lo and len(tr.dst.lo) != 1:
        raise FibsynthError("models with several output channels: use the Python API fibsynth.gan.translate")
    meta_in = vols[0].meta
    params = {"model": str(model), "direction": direction, "input": str(inp), "tile": tile, "overlap": overlap,
              "blending": "raised-cosine (Hann) ramps over the overlap", "noise_seed": seed,
              "noise_channels": tr.noise_channels}
    meta = VolumeMeta(kind="image", voxel_size_nm=meta_in.voxel_size_nm, generator="cyclegan", parameters=params,
                      seed=meta_in.seed, energy_kev=meta_in.energy_kev, materials=meta_in.materials)
    dt = dtype or tr.dst.dtype
    t0 = time.perf_counter()
    if volume_format(out) == "zarr":  # slice by slice into the store: bounded memory for any stack size
        with atomic_path(out) as tmp:
            arr = create_zarr(tmp, tuple(stacks[0].shape), dt, meta)
            tr(stacks, dt, progress=True, out=[arr])
    else:
        res = tr([np.asarray(s) for s in stacks], dt, progress=True)[0]
        write_volume(out, res, meta)
    typer.echo(f"wrote {out}: {stacks[0].shape[0]} slices {stacks[0].shape[1]}x{stacks[0].shape[2]} in "
               f"{time.perf_counter() - t0:.2f} s on {tr.device}", err=True)


@app.command("models")
def models_cmd(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the shipped models and what they were trained on."""
    from fibsynth.gan.model import SHIPPED, read_config, shipped_models

    rows = []
    for name in shipped_models():
        cfg = read_config(SHIPPED / name)
        rows.append({"name": name, "description": cfg.training.get("description", ""),
                     "in_channels": cfg.architecture.in_channels, "out_dtype": cfg.target.dtype})
    if json_out:
        emit_json(rows)
        return
    if not rows:
        typer.echo("no shipped models")
    for r in rows:
        typer.echo(f"{r['name']}: {r['description']}")
