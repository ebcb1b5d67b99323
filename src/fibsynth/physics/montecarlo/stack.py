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
  With an SE detector (``settings.signal``: ``se``, ``inlens``, ``et``; :mod:`.detectors`) the image is the
  detector's signal per primary electron (escaping SE, collected, plus its BSE share) and its standard error from
  the per-electron second moments; BSE stacks (``signal=None``) are computed exactly as before.
* Slices are independent and seeded by (seed, slice, pixel, electron): any partition over threads, processes
  or machines gives the same stack. Results go slice by slice into a work store ``<OUT>.mcwork.zarr``;
  ``resume`` skips slices already there (the store is keyed on the settings, the slices and a hash of the
  structure's content, so a store made from another structure is refused). A lock file ``<OUT>.mcwork.lock``
  keeps a second run on the same output from touching the first one's store. OUT itself is written atomically
  at the end.

Settings: :class:`~fibsynth.physics.montecarlo.settings.StackSettings` (beam, physics, detector, geometry).
Set-up and tables: :mod:`~fibsynth.physics.montecarlo.setup`, shared by the numba kernel (here) and the torch
backend (``backend_torch.simulate_slice_torch``). No output to the terminal: progress goes to a callback.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.physics.montecarlo.settings import FWHM_TO_SIGMA, StackSettings  # noqa: F401 (re-exported)
from fibsynth.physics.montecarlo.setup import (
    check_backend,
    check_labels,
    slice_beam,
    slice_tables,
    stack_materials,
)

# old private name, kept for one release (``stack._materials`` was imported by the torch path and tests)
_materials = stack_materials

Progress = Callable[[int, int], None]  # progress(done, total) after every finished slice


SKIP_CAP = 16  # largest same-material radius (in voxels) stored in the distance map
BLOCK_LEVELS = 3  # largest uniform block: 2^3 = 8 voxels on a side
TRACKINGS = ("block", "skip", "voxel")


def block_levels(vol: np.ndarray, max_level: int = BLOCK_LEVELS) -> np.ndarray:
    """Voxel codes for block tracking in ``kernel.transport_one``: ``material | (L << kernel.LEVEL_SHIFT)``
    with L the largest level <= ``max_level`` such that the aligned block of 2^L x 2^L x 2^L voxels holding the
    voxel (origin at multiples of 2^L) lies wholly inside the volume and holds one material. A flight inside
    such a block stops only on the block's faces (the material cannot change inside it). Uniform at L implies
    uniform at every lower level, so L counts the uniform levels."""
    from fibsynth.physics.montecarlo.kernel import LEVEL_SHIFT, MAT_MASK

    vol = np.ascontiguousarray(vol, dtype=np.uint8)
    if vol.size and int(vol.max()) > MAT_MASK:
        raise FibsynthError(f"material indices must be <= {MAT_MASK} for block tracking", param="vol")
    lev = np.zeros(vol.shape, np.uint8)
    nz, ny, nx = vol.shape
    for level in range(1, max_level + 1):
        n = 1 << level
        mz, my, mx = nz // n, ny // n, nx // n
        if min(mz, my, mx) == 0:
            break
        v = vol[: mz * n, : my * n, : mx * n].reshape(mz, n, my, n, mx, n)
        uni = v.min(axis=(1, 3, 5)) == v.max(axis=(1, 3, 5))
        full = np.repeat(np.repeat(np.repeat(uni, n, 0), n, 1), n, 2)
        lev[: mz * n, : my * n, : mx * n] += full
    return vol | (lev << LEVEL_SHIFT).astype(np.uint8)


def distance_map(vol: np.ndarray, backing: int, repeat_last: bool, cap: int = SKIP_CAP) -> np.ndarray:
    """Same-material radius of every voxel for free-flight skipping in ``kernel.transport_one``.

    ``d[z, y, x]`` (uint8, shape ``(nz + cap + 2, ny, nx)``) = the largest r <= ``cap`` such that every voxel
    within Chebyshev distance r (periodic in x and y) holds the material of voxel (z, y, x); the layers from
    ``nz`` on describe what lies beyond the last slice (``backing`` or the last slice repeated), the last of them
    stands for all deeper ones (exact: at that depth the r-ball lies wholly in the uniform or z-invariant
    region). The face (milled material above slice k) is not in the map: the kernel clamps r to ``iz - k``.
    A flight of length <= r * (smallest voxel edge) from anywhere in the voxel cannot leave that ball
    (each coordinate moves by at most r voxel edges), so it needs no voxel-boundary stops.
    """
    from scipy import ndimage

    nz, ny, nx = vol.shape
    p = cap + 1
    deep = cap + 2  # layers beyond the last slice kept in the map
    below = np.repeat(vol[-1:] if repeat_last else np.full((1, ny, nx), backing, np.uint8), deep + p, axis=0)
    ext = np.concatenate([vol.astype(np.uint8), below], axis=0)
    # pad: wrap laterally (periodic), edge above (the kernel's face clamp covers everything above slice k)
    ext = np.pad(ext, ((p, 0), (p, p), (p, p)), mode="wrap")
    ext[:p] = ext[p]
    boundary = ndimage.maximum_filter(ext, size=3, mode="nearest") != ndimage.minimum_filter(ext, size=3,
                                                                                             mode="nearest")
    d = ndimage.distance_transform_cdt(~boundary, metric="chessboard")
    d = d[p : p + nz + deep, p : p + ny, p : p + nx]
    return np.minimum(d, cap).astype(np.uint8)


def simulate_slice(vol: np.ndarray, voxel_zyx: tuple[float, float, float], k: int, settings: StackSettings,
                   tables: tuple | None = None, *, tracking: str = "voxel",
                   dist: np.ndarray | None = None, range_rejection: bool = True,
                   blocks: np.ndarray | None = None) -> dict[str, Any]:
    """Simulate slice ``k`` of the material-index volume ``vol`` (uint8; label i = material i of
    ``setup.stack_materials``: 0 = pore, 1 = solid in the binary form; a backing material after the labels') on
    the numba backend. Returns counts of all and detected BSE per pixel and the slice's histograms.

    ``tracking="voxel"`` (default here) stops at every voxel plane; ``"block"`` stops only on the faces of
    uniform aligned blocks of 2^L voxels (:func:`block_levels`; ``blocks`` is that code volume if already computed
    for this volume: :func:`simulate_stack` does so once and uses it by default); ``"skip"`` flies through runs of
    one material without stopping at the voxel planes (:func:`distance_map`; ``dist`` is that map if already
    computed for this volume and geometry). Same tallies (tests/physics/test_mc_speed.py); block tracking halves
    the stops on leveled-wave structures at 4 nm voxels (0-12 % faster at 1-4 keV), skipping gave no measurable
    gain (docs/montecarlo.md, "Stack speed").
    ``range_rejection`` ends an electron as soon as it is deeper below the face than the longest path its
    energy allows in any mix of the materials (``kernel.max_range``): it could never come back, so the tallies
    are unchanged (each electron has its own random stream)."""
    from fibsynth.physics.montecarlo import kernel

    if tracking not in TRACKINGS:
        raise FibsynthError(f"must be one of {', '.join(TRACKINGS)} (got {tracking!r})", param="tracking")
    mats, backing, repeat = stack_materials(settings)
    if tables is None:
        tables = slice_tables(settings, mats).as_tuple()
    by, bz, sig_x, sig_y, cmin, cmax = slice_beam(settings)
    if settings.signal is not None:  # an SE detector: the SE kernel (same transport; voxel or block tracking)
        from fibsynth.physics.montecarlo.secondary import simulate_slice_se

        if tracking == "block" and blocks is None:
            blocks = block_levels(vol)
        return simulate_slice_se(vol, voxel_zyx, k, settings, tables=tables, cone=settings.signal.cone(by, bz),
                                 blocks=blocks if tracking == "block" else None, range_rejection=range_rejection,
                                 pore_view=settings.signal.pore_view_mode)
    dz, dy, dx = (float(v) for v in voxel_zyx)
    vol = np.ascontiguousarray(vol, dtype=np.uint8)
    if tracking == "block":
        vol = block_levels(vol) if blocks is None else np.ascontiguousarray(blocks, dtype=np.uint8)
    if tracking == "skip":
        if dist is None:
            dist = distance_map(vol, backing, repeat)
        safe = min(dz, dy, dx)
    else:
        dist, safe = np.zeros((1, 1, 1), np.uint8), 0.0
    allc, detc, he, ha = kernel.run_slice(
        int(k), int(settings.electrons_per_pixel), int(settings.seed), float(settings.beam.energy_kev), by, bz,
        sig_x, sig_y, vol, dz, dy, dx, backing, repeat, np.ascontiguousarray(dist, dtype=np.uint8), safe,
        bool(range_rejection),
        float(settings.detector.e_min_kev), cmin, cmax, *tables,
    )
    return {"k": int(k), "all": allc, "detected": detc, "energy_hist": he, "angle_hist": ha}


def _slice_image(res: dict, settings: StackSettings, voxel_zyx=(1.0, 1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    n = settings.electrons_per_pixel
    if settings.signal is not None:  # SE detector: signal per primary (detectors.signal_image), Poisson dose noise
        from fibsynth.physics.montecarlo.detectors import signal_image

        p, std = signal_image(settings.signal, res, n, float(voxel_zyx[1]), float(voxel_zyx[2]))
        if settings.shot_noise_dose > 0:
            rng = np.random.default_rng([settings.seed, res["k"], 0x5407])
            d = settings.shot_noise_dose
            mean = p
            p = rng.poisson(mean * d) / d
            std = np.sqrt(std**2 + mean / d)
        return p.astype(np.float32), std.astype(np.float32)
    p = res["detected"] / n
    std = np.sqrt(p * (1.0 - p) / n)
    if settings.shot_noise_dose > 0:
        rng = np.random.default_rng([settings.seed, res["k"], 0x5407])
        d = settings.shot_noise_dose
        p = rng.poisson(p * d) / d
        std = np.sqrt(std**2 + res["detected"] / n / d)
    return p.astype(np.float32), std.astype(np.float32)


def _task(vol, voxel_zyx, k, settings_json, tracking="voxel"):
    """One slice on a dask worker; with ``tracking="block"`` ``vol`` holds the block codes (``block_levels``)."""
    settings = StackSettings.model_validate_json(settings_json)
    if tracking == "block":
        return simulate_slice(vol, voxel_zyx, k, settings, tracking="block", blocks=vol)
    return simulate_slice(vol, voxel_zyx, k, settings, tracking=tracking)


def structure_digest(vol: np.ndarray) -> str:
    """SHA-256 of a structure's content (shape, dtype and bytes): the resume key holds it."""
    a = np.ascontiguousarray(vol)
    h = hashlib.sha256(json.dumps([list(a.shape), str(a.dtype)]).encode())
    flat = a.reshape(-1)
    step = 1 << 24
    for i in range(0, flat.size, step):
        h.update(flat[i : i + step].tobytes())
    return h.hexdigest()


def _settings_key(settings: StackSettings, vol: np.ndarray, voxel_zyx, k0, k1) -> str:
    blob = json.dumps([settings.model_dump(mode="json"), structure_digest(vol), list(voxel_zyx), k0, k1],
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def work_path(out: Path) -> Path:
    """The work store of output ``out``: ``<OUT>.mcwork.zarr``."""
    return Path(str(out) + ".mcwork.zarr")


def _lock_path(work: Path) -> Path:
    w = Path(work)
    return w.with_name(w.name.removesuffix(".zarr") + ".lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkLock:
    """An exclusive lock on a work store (a file created with O_EXCL holding host and pid). A lock left by a
    dead process on this host is taken over; a live one (or one from another host) refuses the second run."""

    def __init__(self, work: Path):
        self.path = _lock_path(work)
        self.held = False

    def __enter__(self) -> "WorkLock":
        me = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    host, pid = self.path.read_text().split()
                    stale = host == socket.gethostname() and not _pid_alive(int(pid))
                except (OSError, ValueError):
                    stale = False
                if not stale:
                    raise FibsynthError(
                        f"another mc stack run is writing this output ({self.path} is held); wait for it, or "
                        "remove the lock file if that run is gone", param="out") from None
                self.path.unlink(missing_ok=True)
                continue
            except OSError as exc:
                raise FibsynthError(f"cannot create the work-store lock {self.path}: {exc.strerror}",
                                    param="out") from None
            with os.fdopen(fd, "w") as f:
                f.write(me)
            self.held = True
            return self
        raise FibsynthError(f"cannot take the work-store lock {self.path}", param="out")

    def __exit__(self, *exc) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def _is_work_store(path: Path) -> bool:
    """A folder that fibsynth wrote as a work store (a Zarr group with our key), safe to replace."""
    try:
        import zarr

        g = zarr.open_group(str(path), mode="r")
        return "key" in g.attrs and "done" in g
    except Exception:  # noqa: BLE001 - anything unreadable is not ours
        return False


def terminal_progress(description: str) -> tuple[Progress, Callable[[], None]]:
    """(progress(done, total), stop): a transient rich progress bar on stderr, shown only when stderr is a
    terminal (in a log or a pipe it would print nothing useful but a blank line)."""
    from rich.console import Console
    from rich.progress import Progress as RichProgress

    console = Console(stderr=True)
    if not console.is_terminal:
        return (lambda done, total: None), (lambda: None)
    bar = RichProgress(console=console, transient=True)
    bar.start()
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = bar.add_task(description, total=total)
        bar.update(task, completed=done)

    return update, bar.stop


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
    progress: bool | Progress = True,
    backend: str = "numba",
    device: str | None = None,
    tracking: str = "block",
) -> dict[str, Any]:
    """Simulate slices ``k0..k1-1`` of a ``structure`` (z, y, x): binary (1 = solid) with ``settings.geometry``'s
    ``solid`` / ``pore``, or labels 0..n-1 with one material per label (``geometry.materials``).

    ``workers == 1`` and no ``scheduler``: in-process, numba threads over the pixels of each slice. Otherwise a
    dask cluster (``scheduler`` address, or a local cluster of ``workers`` single-threaded processes; 0 = one
    per CPU) runs one task per slice. With ``work`` the slices are stored as they finish (Zarr), and ``resume``
    skips those already stored; the store is locked for the run (a second run on it is refused) and keyed on
    the settings, the slices and the structure's content. Returns the image and std stacks and the summed
    histograms.

    ``progress``: a callable ``progress(done, total)`` called after every slice, ``True`` for a transient rich
    progress bar on the terminal, ``False`` for nothing.

    ``backend="torch"`` runs the vectorised PyTorch transport (``montecarlo/backend_torch.py``, same physics,
    set-up and tables) in this process on ``device`` (``None``/``"auto"``: CUDA when available, else the CPU);
    it does not combine with dask workers (one GPU serves the whole stack).

    ``tracking`` (numba backend): ``"block"`` (default; the block codes are computed once for the stack),
    ``"voxel"`` or ``"skip"`` -- the same images (see :func:`simulate_slice`), different speed.
    """
    check_backend(backend, device)
    if tracking not in TRACKINGS:
        raise FibsynthError(f"must be one of {', '.join(TRACKINGS)} (got {tracking!r})", param="tracking")
    if workers < 0:
        raise FibsynthError(f"must be >= 0 (got {workers})", param="workers")
    if backend == "torch" and (scheduler is not None or workers != 1):
        raise FibsynthError("the torch backend runs in one process: workers must be 1 and no scheduler",
                            param=("backend", "workers"))
    vol = np.ascontiguousarray(structure, dtype=np.uint8)
    if tracking == "block":
        from fibsynth.physics.montecarlo.kernel import MAT_MASK

        if vol.size and int(vol.max()) > MAT_MASK:
            tracking = "voxel"  # more labels than a block code holds: voxel tracking, the same tallies
    if vol.ndim != 3:
        raise FibsynthError(f"must be 3-D (z, y, x), got shape {vol.shape}", param="structure")
    check_labels(vol, settings)  # binary (0 = pore, 1 = solid), or labels 0..n-1 with one material each
    nz, ny, nx = vol.shape
    k0, k1 = slices if slices is not None else (0, nz)
    if not (0 <= k0 < k1 <= nz):
        raise FibsynthError(f"need 0 <= K0 < K1 <= {nz} (got {k0}:{k1})", param="slices")
    stack_materials(settings)  # validate material strings early (vacuum runs on both backends: BSE)
    if settings.signal is not None:
        if backend == "torch":
            raise FibsynthError(f"the {settings.signal.kind} detector (secondary electrons) runs on the numba "
                                "backend only", param="backend")
        from fibsynth.physics.montecarlo.secondary import se_table

        se_table(stack_materials(settings)[0])  # a material without SE parameters: refused before any work
    if backend == "torch":
        from fibsynth.physics.montecarlo.backend_torch import pick_device

        pick_device(device)  # an unknown or absent device: refused before the work store is touched
    voxel_zyx = voxel.zyx()
    key = _settings_key(settings, vol, voxel_zyx, k0, k1)
    if callable(progress):
        report, stop = progress, (lambda: None)
    elif progress:
        report, stop = terminal_progress("mc stack")
    else:
        report, stop = (lambda done, total: None), (lambda: None)
    try:
        if work is None:
            return _run(vol, voxel_zyx, settings, k0, k1, key, None, resume, scheduler, workers, report,
                        backend, device, tracking)
        with WorkLock(Path(work)):
            return _run(vol, voxel_zyx, settings, k0, k1, key, Path(work), resume, scheduler, workers, report,
                        backend, device, tracking)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        # Ctrl-C that landed inside numba's compiler or a dask worker arrives wrapped in another error: it is
        # still an interruption (the work store keeps the finished slices)
        if _caused_by_interrupt(exc):
            raise KeyboardInterrupt from None
        raise
    finally:
        stop()


def _caused_by_interrupt(exc: BaseException) -> bool:
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt) or "KeyboardInterrupt" in type(e).__name__:
            return True
        if "KeyboardInterrupt" in str(e).splitlines()[0] if str(e) else False:
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _open_store(work: Path, key: str, resume: bool, n: int, ny: int, nx: int):
    import zarr

    from fibsynth.physics.montecarlo.kernel import NA_BINS, NE_BINS

    if resume and work.exists():
        if not _is_work_store(work):
            raise FibsynthError(f"{work} is not an mc stack work store; remove it or drop resume", param="resume")
        store = zarr.open_group(str(work), mode="r+")
        if store.attrs.get("key") != key:
            raise FibsynthError(
                "the work store was made with other settings, structure or slices; remove it or drop resume",
                work, param="resume")
        return store
    if work.exists():
        if not _is_work_store(work):
            raise FibsynthError(f"{work} exists and is not an mc stack work store: it is left alone; move it away",
                                param="out")
        shutil.rmtree(work)
    store = zarr.open_group(str(work), mode="w", zarr_format=2)
    store.create_array("eta", shape=(n, ny, nx), chunks=(1, ny, nx), dtype="f4", fill_value=0)
    store.create_array("std", shape=(n, ny, nx), chunks=(1, ny, nx), dtype="f4", fill_value=0)
    store.create_array("ehist", shape=(n, NE_BINS), chunks=(1, NE_BINS), dtype="i8", fill_value=0)
    store.create_array("ahist", shape=(n, NA_BINS), chunks=(1, NA_BINS), dtype="i8", fill_value=0)
    store.create_array("done", shape=(n,), chunks=(n,), dtype="u1", fill_value=0)
    store.attrs["key"] = key  # last: a store without its key is incomplete and is replaced, never resumed
    return store


def _run(vol, voxel_zyx, settings, k0, k1, key, work, resume, scheduler, workers, report, backend, device,
         tracking="voxel"):
    _, ny, nx = vol.shape
    n = k1 - k0
    fresh = work is not None and not (resume and work.exists())
    store = _open_store(work, key, resume, n, ny, nx) if work is not None else None
    try:
        return _run_slices(vol, voxel_zyx, settings, k0, k1, key, store, resume, scheduler, workers, report,
                           backend, device, tracking)
    except Exception as exc:
        # an error (not an interruption) before any slice was stored: remove the empty store this run made
        if fresh and store is not None and not _caused_by_interrupt(exc) and not store["done"][:].any():
            shutil.rmtree(work, ignore_errors=True)
        raise


def _run_slices(vol, voxel_zyx, settings, k0, k1, key, store, resume, scheduler, workers, report, backend, device,
                tracking="voxel"):
    from fibsynth.physics.montecarlo.kernel import NA_BINS, NE_BINS

    nz, ny, nx = vol.shape
    n = k1 - k0
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
    finished = n - len(todo)

    def finish(res):
        nonlocal finished
        i = res["k"] - k0
        eta[i], std[i] = _slice_image(res, settings, voxel_zyx)
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
        finished += 1
        report(finished, n)

    t0 = time.perf_counter()
    report(finished, n)
    if todo and scheduler is None and workers == 1:
        mats, _, _ = stack_materials(settings)
        tabs = slice_tables(settings, mats)
        if backend == "torch":
            import torch

            from fibsynth.physics.montecarlo import backend_torch as bt

            dev = bt.pick_device(device)
            vol_t = torch.as_tensor(vol, device=dev)
            tt = bt.TorchTables(tabs, dev, torch.float32)
            for k in todo:
                finish(bt.simulate_slice_torch(vol_t, voxel_zyx, k, settings, device=dev, tables=tt))
        else:
            tables = tabs.as_tuple()
            blocks = block_levels(vol) if tracking == "block" else None
            for k in todo:
                finish(simulate_slice(vol, voxel_zyx, k, settings, tables, tracking=tracking, blocks=blocks))
    elif todo:
        _run_dask(block_levels(vol) if tracking == "block" else vol, voxel_zyx, settings, todo, key, scheduler,
                  workers, finish, tracking)
    return {
        "eta": eta,
        "std": std,
        "energy_hist": ehist.sum(axis=0),
        "angle_hist": ahist.sum(axis=0),
        "slices": (k0, k1),
        "seconds": time.perf_counter() - t0,
        "simulated": len(todo),
    }


def _run_dask(vol, voxel_zyx, settings, todo, key, scheduler, workers, finish, tracking="voxel") -> None:
    """One task per slice on dask: ``scheduler`` (an address) or a local cluster of ``workers`` processes (0 = one
    per CPU), through :func:`fibsynth.distributed.dask_client` (its workers ignore the terminal's Ctrl-C, so an
    interrupt stops this process, which closes them: one line, no worker tracebacks)."""
    from dask.distributed import as_completed

    from fibsynth.distributed import dask_client

    nw = None if scheduler is not None else min(workers if workers > 0 else (os.cpu_count() or 1), len(todo))
    with dask_client(scheduler, nw) as client:
        [fvol] = client.scatter([vol], broadcast=True)
        sj = settings.model_dump_json()
        futs = [client.submit(_task, fvol, voxel_zyx, k, sj, tracking, key=f"mc-slice-{key}-{k}", pure=False)
                for k in todo]
        for fut in as_completed(futs):
            finish(fut.result())


def std_path(out: Path) -> Path:
    out = Path(out)
    suffix = "".join(out.suffixes[-1:]) if out.suffix else ""
    stem = out.name[: len(out.name) - len(suffix)] if suffix else out.name
    return out.with_name(f"{stem}_std{suffix}")


def parse_slices(text: str | None, nz: int) -> tuple[int, int]:
    """``"K0:K1"`` -> (K0, K1); ``None`` -> the whole stack."""
    if not text:
        return 0, nz
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return int(parts[0]), int(parts[1])
    except ValueError:
        raise FibsynthError(f"expected K0:K1, got {text!r}", param="slices") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_stack_output(structure_path: Path, out: Path) -> None:
    """What can be checked about a stack's output before any work: format (suffix), output (or its ``_std``
    companion) equal to the input, output folder present."""
    from fibsynth.io import volume_format

    structure_path, out = Path(structure_path), Path(out)
    volume_format(out)  # unknown suffix: one line, before the simulation
    for o in (out, std_path(out)):
        if _same_file(o, structure_path):
            raise FibsynthError(f"{o} is the input structure: choose another output", param="out")
    from fibsynth.io.outputs import check_output

    for o in (out, std_path(out)):  # the io rule: writable folder, never replace what fibsynth did not write
        check_output(o, inputs=[structure_path], param="out")
