"""``fibsynth synth``: the command over :func:`fibsynth.pipeline.fast_stack` (reads the structure, writes the
stack and, optionally, the projection, each with its metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from fibsynth.errors import FibsynthError


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
    solid: str = typer.Option("gold", "--solid", help="Solid material (label 1)."),
    pore: str = typer.Option("epoxy", "--pore", help="Pore material (label 0): epoxy, another material, or vacuum (open pores)."),
    translation: str = typer.Option("best", "--translation", help="best (default: the paired translator for gold/epoxy at the energies it was trained on, 1-4 keV; elsewhere as gan, with a note saying why), paired (the paired translator: the Monte Carlo's mean image plus shot noise at --electrons-per-pixel; measured closer to the Monte Carlo, docs/fastsim.md), gan (the projection -> Monte Carlo CycleGAN: --model, else the shipped one; an error where none is shipped), auto (the CycleGAN, else the projection alone) or projection (no translation)."),
    electrons_per_pixel: int = typer.Option(100, "--electrons-per-pixel", help="Dose of the paired translator's shot noise (electrons per pixel; match the Monte Carlo you compare with)."),
    detector: str = typer.Option("bse", "--detector", help="bse (default), or a secondary-electron detector for open pores (--pore vacuum): inlens (default translation: the paired SE translator where it was trained -- silicon, 2 keV --, else the SE projection alone) or se (the SE projection, every escaping SE). docs/fastsim.md section 9."),
    materials: Optional[str] = typer.Option(None, "--materials", help="One material per label, comma-separated (label 0 = the filling, e.g. epoxy,Ni,YSZ): STRUCTURE is a label volume 0..n-1 (default for a label volume: the materials its metadata records). No model is shipped for n phases: --translation auto or projection gives the n-phase projection."),
) -> None:
    """Monte-Carlo-like image stack of STRUCTURE in seconds: projection + translation (the paired translator by default)."""
    import numpy as np

    from fibsynth.io import read_labels, read_structure, resolve_voxel_size
    from fibsynth.pipeline import fast_stack

    from fibsynth.errors import register_flag_names
    from fibsynth.io.outputs import check_output

    register_flag_names(out="OUT")  # a positional argument

    inputs = [structure] + ([model] if model is not None else [])
    check_output(out, inputs=inputs, param="out")  # before any work: never the input, never a foreign file
    if projection_out is not None:
        check_output(projection_out, inputs=[*inputs, out], param="projection_out")
    mats = None
    if materials is not None:
        mats = [m.strip() for m in materials.split(",")]
        vol = read_labels(structure, n=len(mats))
    else:
        try:
            vol = read_structure(structure)  # binary, as before
        except FibsynthError as binary_error:
            try:
                vol = read_labels(structure)
            except FibsynthError:
                raise binary_error from None
            recorded = vol.meta.materials or {}
            top = int(np.asarray(vol.data).max())
            named = [recorded.get(str(i)) for i in range(top + 1)]
            if not all(named):  # a label volume: the materials its metadata records, else ask for them
                raise FibsynthError(f"has labels 0..{top}, not binary: give one material per label (materials)",
                                    structure, param="materials") from None
            mats = [str(m) for m in named]
    voxel = resolve_voxel_size(vol.meta.voxel_size_nm, voxel_nm, slice_nm, structure)
    if model is not None and not Path(model).is_dir():
        raise FibsynthError("not a model directory", model, param="model")
    if seed is None:
        seed = int(vol.meta.seed or 0)
    prod = fast_stack(np.asarray(vol.data), voxel, energy_kev, model=model, incidence_deg=incidence_deg, seed=seed,
                      keep_projection=projection_out is not None, solid=solid, pore=pore,
                      translation=translation, electrons_per_pixel=electrons_per_pixel,  # type: ignore[arg-type]
                      materials=mats, detector=detector.strip().lower())
    dt = prod.record["seconds"]
    prod.meta = prod.meta.model_copy(update={"parameters": {**prod.meta.parameters, "structure": str(structure),
                                                            "seconds": round(dt, 3)}})
    if projection_out is not None:
        proj = prod.record.get("projection_product", prod)  # projection only: the product is the projection
        proj.write(projection_out)
    prod.write(out)
    used = prod.record.get("translation_model") or prod.record.get("translation", "none")
    why = f"; {prod.record['translation_choice']}" if "translation_choice" in prod.record else ""
    typer.echo(f"wrote {out}: {prod.data.shape[0]} images in {dt:.1f} s (model {used}{why})", err=True)
