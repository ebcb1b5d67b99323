"""Small top-level commands: ``info`` and ``demo``."""

from __future__ import annotations

from pathlib import Path

import typer


def info(volume: Path = typer.Argument(..., help="A volume file (.tif, .zarr, .npy or a slice folder).")) -> None:
    """Print shape, data type, value range and metadata of a volume."""
    from fibsynth.io import read_volume

    vol = read_volume(volume, lazy=True)
    data = vol.data
    typer.echo(f"{volume}: shape (z, y, x) = {tuple(data.shape)}, dtype = {data.dtype}")
    typer.echo(vol.meta.model_dump_json(indent=2))


def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", help="Folder for the demo's outputs."),
    size: int = typer.Option(128, "--size", min=32, max=512, help="Edge length of the demo volume in voxels."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    real: Path = typer.Option(None, "--real", help="Your own FIB-SEM image stack, shown next to the simulated images."),
    translation: str = typer.Option("best", "--translation", help="Fast-path translation: best (the paired translator at 1-4 keV), paired or gan (the shipped 2 keV CycleGAN, the demo's engine before)."),
) -> None:
    """Run the end-to-end demo (structure -> measurements -> report)."""
    from fibsynth.demo import run_demo
    from fibsynth.io import check_workdir

    check_workdir(out, inputs=[real], param="out")
    run_demo(out, size=size, seed=seed, real=real, translation=translation)
