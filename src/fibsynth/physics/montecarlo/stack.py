"""FIB-SEM image stacks: slice-by-slice backscatter simulation of a voxel structure, slice-parallel on dask.

For slice k the material at z < k (in voxels) has been milled away; the beam rasters the freshly exposed face
at the pixel (voxel) centres. The transport sees the full volume behind the face, so electrons crossing
epoxy-filled pores and backscattering from gold behind them (shine-through) come out of the transport.

* Lateral boundaries are periodic in x and y (the face is an infinite plane; the structure is tiled).
* Beyond the last slice lies ``backing``: the pore material (default), the solid, another material, or the
  last slice repeated (``repeat``).
* Probe: Gaussian with the given FWHM (sigma = FWHM / 2.3548) in the plane normal to the beam; on the face its
  y-extent is stretched by 1 / cos(incidence).
* Beam tilted within the y-z plane, direction (0, sin a, cos a); a = 38 degrees for the usual 52-degree stage tilt.
* Image value per pixel: fraction of primaries detected as BSE (detector model applied in the kernel); its
  statistical uncertainty is the binomial standard error sqrt(p (1 - p) / N), written as a second stack
  (``<OUT>_std``). With ``shot_noise_dose`` D > 0 the image is Poisson(D p) / D instead (a real dose).
* Slices are independent and seeded by (seed, slice, pixel, electron): any partition over threads, processes
  or machines gives the same stack. Results go slice by slice into a work store ``<OUT>.mcwork.zarr``;
  ``resume`` skips slices already there. OUT itself is written atomically at the end.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from fibsynth.config import StrictModel, VoxelSize
from fibsynth.errors import FibsynthError

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


class StackSettings(StrictModel):
    energy_kev: float = Field(ge=0.2, le=30.0)
    electrons_per_pixel: int = Field(ge=1, le=10**8)
    solid: str = "gold"
    pore: str = "epoxy"
    backing: str = "pore"
    incidence_deg: float = Field(38.0, ge=0.0, le=85.0)
    probe_fwhm_nm: float = Field(0.0, ge=0.0, le=1e4)
    seed: int = Field(0, ge=0, lt=2**63)
    elastic: str = Field("mott", pattern="^(mott|browning|rutherford|mott-pwa)$")
    cutoff_kev: float = Field(0.05, ge=0.02, le=1.0)
    inelastic_deflection: bool = True
    detector_emin_kev: float = Field(0.0, ge=0.0, le=30.0)
    detector_theta_min_deg: float = Field(0.0, ge=0.0, le=180.0)
    detector_theta_max_deg: float = Field(180.0, ge=0.0, le=180.0)
    shot_noise_dose: float = Field(0.0, ge=0.0)


def _materials(settings: StackSettings):
    from fibsynth.physics.materials import get_material

    mats = [get_material(settings.pore, "--pore"), get_material(settings.solid, "--solid")]
    repeat = False
    if settings.backing == "pore":
        backing = 0
    elif settings.backing == "solid":
        backing = 1
    elif settings.backing == "repeat":
        backing, repeat = 0, True
    else:
        mats.append(get_material(settings.backing, "--backing"))
        backing = 2
    return mats, backing, repeat


def slice_tables(settings: StackSettings, mats: list):
    """Transport tables for the stack's materials ``mats`` (from :func:`_materials`) with its physics settings;
    the numba kernel takes ``.as_tuple()``, the torch path ``gpu.TorchTables``."""
    from fibsynth.physics.montecarlo.tables import build_tables

    return build_tables(mats, settings.elastic, settings.cutoff_kev, inelastic=settings.inelastic_deflection)


def slice_beam(settings: StackSettings) -> tuple[float, float, float, float, float, float]:
    """(by, bz, sigma_x, sigma_y, cmin, cmax): beam direction, Gaussian probe widths on the face (the y width
    stretched by the tilt) and the detector's bounds on the cosine to the column axis."""
    from fibsynth.physics.montecarlo.engine import Detector, beam_direction

    det = Detector(e_min_kev=settings.detector_emin_kev, theta_min_deg=settings.detector_theta_min_deg,
                   theta_max_deg=settings.detector_theta_max_deg)
    cmin, cmax = det.cos_bounds()
    by, bz = beam_direction(settings.incidence_deg)
    sig = settings.probe_fwhm_nm * FWHM_TO_SIGMA
    return by, bz, sig, sig / bz, cmin, cmax


def simulate_slice(vol: np.ndarray, voxel_zyx: tuple[float, float, float], k: int, settings: StackSettings,
                   tables: tuple | None = None) -> dict[str, Any]:
    """Simulate slice ``k`` of the material-index volume ``vol`` (uint8; 0 = pore, 1 = solid, 2 = backing
    material if given). Returns counts of all and detected BSE per pixel and the slice's histograms."""
    from fibsynth.physics.montecarlo import kernel

    mats, backing, repeat = _materials(settings)
    if tables is None:
        tables = slice_tables(settings, mats).as_tuple()
    by, bz, sig_x, sig_y, cmin, cmax = slice_beam(settings)
    dz, dy, dx = (float(v) for v in voxel_zyx)
    allc, detc, he, ha = kernel.run_slice(
        int(k), int(settings.electrons_per_pixel), int(settings.seed), float(settings.energy_kev), by, bz,
        sig_x, sig_y, np.ascontiguousarray(vol, dtype=np.uint8), dz, dy, dx, backing, repeat,
        float(settings.detector_emin_kev), cmin, cmax, *tables,
    )
    return {"k": int(k), "all": allc, "detected": detc, "energy_hist": he, "angle_hist": ha}


def _slice_image(res: dict, settings: StackSettings) -> tuple[np.ndarray, np.ndarray]:
    n = settings.electrons_per_pixel
    p = res["detected"] / n
    std = np.sqrt(p * (1.0 - p) / n)
    if settings.shot_noise_dose > 0:
        rng = np.random.default_rng([settings.seed, res["k"], 0x5407])
        d = settings.shot_noise_dose
        p = rng.poisson(p * d) / d
        std = np.sqrt(std**2 + res["detected"] / n / d)
    return p.astype(np.float32), std.astype(np.float32)


def _task(vol, voxel_zyx, k, settings_json):
    settings = StackSettings.model_validate_json(settings_json)
    return simulate_slice(vol, voxel_zyx, k, settings)


def _settings_key(settings: StackSettings, shape, voxel_zyx, k0, k1) -> str:
    blob = json.dumps([settings.model_dump(mode="json"), list(shape), list(voxel_zyx), k0, k1], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def simulate_stack(
    structure: np.ndarray,
    voxel: VoxelSize,
    settings: StackSettings,
    *,
    slices: tuple[int, int] | None = None,
    work: Path | None = None,
    resume: bool = False,
    scheduler: str | None = None,
    workers: int = 1,
    progress: bool = True,
    backend: str = "numba",
    device: str | None = None,
) -> dict[str, Any]:
    """Simulate slices ``k0..k1-1`` of a binary ``structure`` (z, y, x; 1 = solid).

    ``workers == 1`` and no ``scheduler``: in-process, numba threads over the pixels of each slice. Otherwise a
    dask cluster (``scheduler`` address, or a local cluster of ``workers`` single-threaded processes; 0 = one
    per CPU) runs one task per slice. With ``work`` the slices are stored as they finish (Zarr), and ``resume``
    skips those already stored. Returns the image and std stacks and the summed histograms.

    ``backend="torch"`` runs the vectorised PyTorch transport (``montecarlo/gpu.py``, same physics and tables) in
    this process on ``device`` (``None``/``"auto"``: CUDA when available, else the CPU); it does not combine with
    dask workers (one GPU serves the whole stack).
    """
    import zarr
    from rich.progress import Progress

    if backend not in ("numba", "torch"):
        raise FibsynthError(f"--backend must be numba or torch (got {backend!r})")
    if backend == "torch" and (scheduler is not None or workers != 1):
        raise FibsynthError("--backend torch runs in one process: use --workers 1 and no --scheduler")
    if backend == "numba" and device not in (None, "auto"):
        raise FibsynthError("--device applies to --backend torch only")
    vol = np.ascontiguousarray(structure, dtype=np.uint8)
    if vol.ndim != 3:
        raise FibsynthError(f"structure must be 3-D (z, y, x), got shape {vol.shape}")
    if vol.size and vol.max() > 1:
        raise FibsynthError("structure must be binary (0 = pore, 1 = solid)")
    nz, ny, nx = vol.shape
    k0, k1 = slices if slices is not None else (0, nz)
    if not (0 <= k0 < k1 <= nz):
        raise FibsynthError(f"--slices: need 0 <= K0 < K1 <= {nz} (got {k0}:{k1})")
    _materials(settings)  # validate material strings early
    if settings.backing not in ("pore", "solid", "repeat"):
        vol = vol.copy()  # ids 0/1 only; backing is index 2 in the tables
    voxel_zyx = voxel.zyx()
    n = k1 - k0
    from fibsynth.physics.montecarlo.kernel import NA_BINS, NE_BINS

    key = _settings_key(settings, vol.shape, voxel_zyx, k0, k1)
    store = None
    if work is not None:
        if resume and Path(work).exists():
            store = zarr.open_group(str(work), mode="r+")
            if store.attrs.get("key") != key:
                raise FibsynthError(
                    "--resume: the work store was made with other settings, structure or slices; "
                    "remove it or drop --resume", work)
        else:
            if Path(work).exists():
                shutil.rmtree(work)
            store = zarr.open_group(str(work), mode="w", zarr_format=2)
            store.attrs["key"] = key
            store.create_array("eta", shape=(n, ny, nx), chunks=(1, ny, nx), dtype="f4", fill_value=0)
            store.create_array("std", shape=(n, ny, nx), chunks=(1, ny, nx), dtype="f4", fill_value=0)
            store.create_array("ehist", shape=(n, NE_BINS), chunks=(1, NE_BINS), dtype="i8", fill_value=0)
            store.create_array("ahist", shape=(n, NA_BINS), chunks=(1, NA_BINS), dtype="i8", fill_value=0)
            store.create_array("done", shape=(n,), chunks=(n,), dtype="u1", fill_value=0)
    eta = np.zeros((n, ny, nx), np.float32)
    std = np.zeros((n, ny, nx), np.float32)
    ehist = np.zeros((n, NE_BINS), np.int64)
    ahist = np.zeros((n, NA_BINS), np.int64)
    todo = list(range(k0, k1))
    if store is not None and resume:
        done = store["done"][:]
        for i in np.flatnonzero(done):
            eta[i] = store["eta"][i]
            std[i] = store["std"][i]
            ehist[i] = store["ehist"][i]
            ahist[i] = store["ahist"][i]
        todo = [k for k in todo if not done[k - k0]]

    def finish(res):
        i = res["k"] - k0
        eta[i], std[i] = _slice_image(res, settings)
        ehist[i] = res["energy_hist"]
        ahist[i] = res["angle_hist"]
        if store is not None:
            store["eta"][i] = eta[i]
            store["std"][i] = std[i]
            store["ehist"][i] = ehist[i]
            store["ahist"][i] = ahist[i]
            d = store["done"][:]
            d[i] = 1
            store["done"][:] = d

    t0 = time.perf_counter()
    with Progress(disable=not progress, transient=True) as prog:
        task = prog.add_task(f"mc stack ({len(todo)} slices to do)", total=n, completed=n - len(todo))
        if todo and scheduler is None and workers == 1:
            mats, _, _ = _materials(settings)
            tabs = slice_tables(settings, mats)
            if backend == "torch":
                import torch

                from fibsynth.physics.montecarlo import gpu

                dev = gpu.pick_device(device)
                vol_t = torch.as_tensor(vol, device=dev)
                tt = gpu.TorchTables(tabs, dev, torch.float32)
                for k in todo:
                    finish(gpu.simulate_slice_torch(vol_t, voxel_zyx, k, settings, device=dev, tables=tt))
                    prog.advance(task)
            else:
                tables = tabs.as_tuple()
                for k in todo:
                    finish(simulate_slice(vol, voxel_zyx, k, settings, tables))
                    prog.advance(task)
        elif todo:
            from dask.distributed import Client, LocalCluster, as_completed

            cluster = None
            if scheduler is not None:
                client = Client(scheduler)
            else:
                nw = workers if workers > 0 else (os.cpu_count() or 1)
                cluster = LocalCluster(n_workers=min(nw, len(todo)), processes=True, threads_per_worker=1,
                                       dashboard_address=None)
                client = Client(cluster)
            try:
                [fvol] = client.scatter([vol], broadcast=True)
                sj = settings.model_dump_json()
                futs = [client.submit(_task, fvol, voxel_zyx, k, sj, key=f"mc-slice-{key}-{k}", pure=False)
                        for k in todo]
                for fut in as_completed(futs):
                    finish(fut.result())
                    prog.advance(task)
            finally:
                client.close()
                if cluster is not None:
                    cluster.close()
    return {
        "eta": eta,
        "std": std,
        "energy_hist": ehist.sum(axis=0),
        "angle_hist": ahist.sum(axis=0),
        "slices": (k0, k1),
        "seconds": time.perf_counter() - t0,
        "simulated": len(todo),
    }


def std_path(out: Path) -> Path:
    out = Path(out)
    suffix = "".join(out.suffixes[-1:]) if out.suffix else ""
    stem = out.name[: len(out.name) - len(suffix)] if suffix else out.name
    return out.with_name(f"{stem}_std{suffix}")


def simulate_stack_cli(structure_path: Path, out: Path, settings: StackSettings, *, slices: str | None,
                       voxel_nm: float | None, slice_nm: float | None, scheduler: str | None, workers: int,
                       resume: bool, backend: str = "numba", device: str | None = None) -> None:
    from fibsynth.io import read_structure, resolve_voxel_size, write_volume
    from fibsynth.pipeline import montecarlo_meta

    vol = read_structure(structure_path)
    data = np.asarray(vol.data)
    voxel = resolve_voxel_size(vol.meta.voxel_size_nm, voxel_nm, slice_nm, structure_path)
    if workers < 0:
        raise FibsynthError(f"--workers must be >= 0 (got {workers})")
    k0, k1 = 0, data.shape[0]
    if slices:
        parts = slices.split(":")
        try:
            k0, k1 = int(parts[0]), int(parts[1])
            if len(parts) != 2:
                raise ValueError
        except (ValueError, IndexError):
            raise FibsynthError(f"--slices: expected K0:K1, got {slices!r}") from None
    work = Path(str(out) + ".mcwork.zarr")
    res = simulate_stack(data, voxel, settings, slices=(k0, k1), work=work, resume=resume, scheduler=scheduler,
                         workers=workers, backend=backend, device=device)
    params = settings.model_dump(mode="json")
    params.update({
        "structure": str(structure_path),
        "slices": [k0, k1],
        "image": "fraction of primary electrons detected as BSE per pixel",
        "uncertainty": f"binomial standard error sqrt(p(1-p)/N) in {std_path(out).name}",
        "lateral_boundary": "periodic in x and y",
        "probe": "Gaussian, probe_fwhm_nm is the FWHM (sigma = FWHM/2.3548) normal to the beam",
        "beam_direction": "tilted in the y-z plane: (0, sin a, cos a), a = incidence_deg",
        "energy_histogram_E_over_E0_100bins": res["energy_hist"].tolist(),
        "exit_angle_histogram_deg_90bins": res["angle_hist"].tolist(),
    })
    mats, _, _ = _materials(settings)
    meta = montecarlo_meta(voxel, settings, (k0, k1), params)  # the pipeline's one record (z offset k0)
    write_volume(out, res["eta"], meta)
    write_volume(std_path(out), res["std"], meta.with_updates(parameters={**params, "quantity": "standard error"}))
    shutil.rmtree(work, ignore_errors=True)
    import typer

    typer.echo(f"wrote {out} and {std_path(out)} (slices {k0}:{k1}, {res['simulated']} simulated in "
               f"{res['seconds']:.1f} s)", err=True)
