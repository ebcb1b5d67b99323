"""``fibsynth synth``: the fast path in one step — shine-through projection of a structure, then the shipped (or a
user-trained) CycleGAN that gives it the look of the Monte Carlo images at that beam energy."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from fibsynth.errors import FibsynthError


def shipped_model_for(energy_kev: float, solid: str = "gold", pore: str = "epoxy") -> str:
    """Name of the shipped projection -> Monte Carlo model for this energy and material pair, or a one-line error
    naming what is shipped and how to train another."""
    from fibsynth.gan.model import shipped_models

    pair = {("gold", "epoxy"): "au-epoxy", ("Au", "epoxy"): "au-epoxy"}.get((solid, pore))
    name = f"proj2mc-{energy_kev:g}kev-{pair}" if pair else None
    have = [m for m in shipped_models() if m.startswith("proj2mc-")]
    if name in have:
        return name
    raise FibsynthError(
        f"--energy-kev {energy_kev:g} with {solid}/{pore}: no shipped translation model (shipped: {', '.join(have) or 'none'}); "
        "train one with 'fibsynth gan train --source PROJECTION --target MONTECARLO --out DIR' and pass --model DIR"
    )


def synthesize(structure: np.ndarray, voxel_zyx: tuple[float, float, float], energy_kev: float, *,
               model: str | Path | None = None, incidence_deg: float = 38.0, solid: str = "gold",
               pore: str = "epoxy", seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Projection and translated (Monte-Carlo-like) stacks of a binary structure, and a record of both steps.
    ``seed`` seeds the translation model's noise input (its stochastic texture)."""
    from fibsynth.fastsim.projection import project
    from fibsynth.gan import Translator

    name = str(model) if model is not None else shipped_model_for(energy_kev, solid, pore)
    proj, rec = project(structure, voxel_zyx, energy_kev, incidence_deg=incidence_deg, solid=solid, pore=pore)
    translated = Translator(name, seed=seed)(proj.astype(np.float32))[0]
    record = {"projection": {k: v for k, v in rec.items() if k not in ("cells", "weights")}, "translation_model": name,
              "translation_seed": int(seed)}
    return proj, np.asarray(translated, dtype=np.float32), record


def synth(
    structure: Path = typer.Argument(..., help="Binary structure (z, y, x; 1 = solid) with its voxel size."),
    out: Path = typer.Argument(..., help="Output image stack (format from the suffix)."),
    energy_kev: float = typer.Option(..., "--energy-kev", help="Beam energy in keV (a shipped model must exist, or use --model)."),
    model: Optional[Path] = typer.Option(None, "--model", help="A trained 'fibsynth gan train' model directory instead of the shipped one."),
    incidence_deg: float = typer.Option(38.0, "--incidence-deg", help="Beam angle to the face normal (as fibsynth mc)."),
    voxel_nm: Optional[float] = typer.Option(None, "--voxel-nm", help="Pixel size (nm) if the structure carries none."),
    slice_nm: Optional[float] = typer.Option(None, "--slice-nm", help="Slice thickness (nm) if the structure carries none."),
    projection_out: Optional[Path] = typer.Option(None, "--projection-out", help="Also write the raw projection here."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the translation's noise input (default: the structure's seed, else 0)."),
) -> None:
    """Monte-Carlo-like image stack of STRUCTURE in seconds: projection + translation model."""
    import time

    from fibsynth.io import VolumeMeta, read_structure, resolve_voxel_size, write_volume

    vol = read_structure(structure)
    voxel = resolve_voxel_size(vol.meta.voxel_size_nm, voxel_nm, slice_nm, structure)
    if model is not None and not Path(model).is_dir():
        raise FibsynthError("--model: not a model directory", model)
    if seed is None:
        seed = int(vol.meta.seed or 0)
    if not (0 <= seed < 2**63):
        raise FibsynthError(f"--seed must be in [0, 2^63) (got {seed})")
    t0 = time.perf_counter()
    proj, img, rec = synthesize(np.asarray(vol.data), voxel.zyx(), energy_kev, model=model,
                                incidence_deg=incidence_deg, seed=seed)
    dt = time.perf_counter() - t0
    params = {**rec, "structure": str(structure), "incidence_deg": incidence_deg, "seconds": round(dt, 3)}
    meta = VolumeMeta(kind="image", voxel_size_nm=voxel, generator="synth (projection + CycleGAN)", parameters=params,
                      seed=seed, energy_kev=energy_kev, materials={"0": "epoxy", "1": "gold"})
    if projection_out is not None:
        write_volume(projection_out, proj, meta.model_copy(update={"generator": "projection"}))
    write_volume(out, img, meta)
    typer.echo(f"wrote {out}: {img.shape[0]} images in {dt:.1f} s (model {rec['translation_model']})", err=True)
