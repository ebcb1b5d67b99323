"""``mc stack`` as one library call: read a structure file, simulate its stack with a work store, write the image
and its ``_std`` companion with the pipeline's metadata record. Kept apart from :mod:`.stack` because it uses the
pipeline layer (:func:`fibsynth.pipeline.montecarlo_meta`), which itself calls :mod:`.stack`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.physics.montecarlo.settings import StackGeometry, StackSettings
from fibsynth.physics.montecarlo.setup import check_backend, slice_record
from fibsynth.physics.montecarlo.stack import (
    Progress,
    WorkLock,
    check_stack_output,
    parse_slices,
    simulate_stack,
    std_path,
    structure_digest,
    work_path,
)


def read_stack_structure(path: Path, settings: StackSettings):
    """(structure, settings) for a stack of the file ``path``: binary ({0, 1}, bool, {0, 255}) with ``solid`` /
    ``pore``, or labels 0..n-1 with one material per label -- ``settings.geometry.materials``, or, when neither
    they nor ``solid`` / ``pore`` were given, the materials the file's metadata records for its labels (what
    ``fibsynth structure multiphase`` and ``structure import --labels --phases`` write). A label volume without
    materials is a one-line error naming ``materials``."""
    from fibsynth.io import Volume, as_binary, as_labels, read_volume
    from fibsynth.io.volume import check_volume

    vol = read_volume(path)
    data = check_volume(vol.data, path)
    g = settings.geometry
    if g.materials is None:
        top = int(np.max(data)) if data.size else 0
        binary = data.dtype == bool or top <= 1 or set(np.unique(data).tolist()) <= {0, 255}
        if binary:
            return Volume(as_binary(data, path), vol.meta), settings
        recorded = vol.meta.materials or {}
        named = [recorded.get(str(i)) for i in range(top + 1)]
        if not ({"solid", "pore"} & g.model_fields_set) and all(named):
            geometry = g.model_copy(update={"materials": tuple(named)})
            settings = settings.model_copy(update={"geometry": StackGeometry.model_validate(geometry.model_dump(
                exclude={"solid", "pore"}))})
            g = settings.geometry
        else:
            as_labels(data, path)  # gray values, negative labels: that error first
            raise FibsynthError(f"has labels 0..{top}, not binary: give one material per label (materials)"
                                + (" or drop solid/pore to use the ones its metadata records" if all(named) else ""),
                                path, param="materials")
    return Volume(as_labels(data, path, n=g.n_labels), vol.meta), settings


def simulate_stack_file(structure_path: Path, out: Path, settings: StackSettings, *, slices: str | None = None,
                        voxel_nm: float | None = None, slice_nm: float | None = None,
                        scheduler: str | None = None, workers: int = 1, resume: bool = False,
                        backend: str = "numba", device: str | None = None,
                        progress: bool | Progress = False) -> dict[str, Any]:
    """Read a structure file, simulate its stack (work store ``<OUT>.mcwork.zarr``) and write ``out`` and its
    ``_std`` companion with their metadata. Returns a summary (slices, simulated, seconds, paths)."""
    from fibsynth.io import resolve_voxel_size, write_volume
    from fibsynth.pipeline import montecarlo_meta

    structure_path, out = Path(structure_path), Path(out)
    check_backend(backend, device)
    check_stack_output(structure_path, out)
    vol, settings = read_stack_structure(structure_path, settings)
    data = np.asarray(vol.data)
    voxel = resolve_voxel_size(vol.meta.voxel_size_nm, voxel_nm, slice_nm, structure_path)
    k0, k1 = parse_slices(slices, data.shape[0])
    work = work_path(out)
    res = simulate_stack(data, voxel, settings, slices=(k0, k1), work=work, resume=resume, scheduler=scheduler,
                         workers=workers, backend=backend, device=device, progress=progress)
    params = slice_record(settings)
    params.update({
        "structure": str(structure_path),
        "structure_sha256": structure_digest(np.ascontiguousarray(data, dtype=np.uint8)),
        "slices": [k0, k1],
        "backend": backend,
        "detector": settings.detector_kind,
        "image": ("fraction of primary electrons detected as BSE per pixel" if settings.signal is None else
                  f"{settings.detector_kind} detector signal per primary electron (collected SE + BSE share, "
                  "see docs/montecarlo.md 'SE image stacks')"),
        "uncertainty": (f"binomial standard error sqrt(p(1-p)/N) in {std_path(out).name}" if settings.signal is None
                        else f"standard error of the per-electron signal in {std_path(out).name}"),
        "lateral_boundary": "periodic in x and y",
        "probe": "Gaussian, probe_fwhm_nm is the FWHM (sigma = FWHM/2.3548) normal to the beam",
        "beam_direction": "tilted in the y-z plane: (0, sin a, cos a), a = incidence_deg",
        "energy_histogram_E_over_E0_100bins": res["energy_hist"].tolist(),
        "exit_angle_histogram_deg_90bins": res["angle_hist"].tolist(),
    })
    meta = montecarlo_meta(voxel, settings, (k0, k1), params)  # the pipeline's one record (z offset k0)
    write_volume(out, res["eta"], meta)
    write_volume(std_path(out), res["std"], meta.with_updates(parameters={**params, "quantity": "standard error"}))
    with WorkLock(work):
        shutil.rmtree(work, ignore_errors=True)
    return {"out": out, "std": std_path(out), "slices": (k0, k1), "simulated": res["simulated"],
            "seconds": res["seconds"]}
