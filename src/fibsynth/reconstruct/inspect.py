"""Step 1: read and inspect the user's real stack.

Reads any stack fibsynth reads (TIFF, folder of slices, Zarr, .npy; any integer or float type) and measures what the
later steps need: gray-value histogram and percentiles, noise level, curtain-stripe power and slice-to-slice drift.
The estimators and the corrections are the microscope stage's (:mod:`fibsynth.microscope`, docs/microscope.md):
noise by the wavelet MAD, stripe power by the row-pair covariance, drift by registering each slice onto the one
before; corrections ``align`` (sub-pixel registration), ``destripe`` (wavelet-FFT filter) and ``flatten`` (shading).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError

CORRECTIONS = ("align", "destripe", "flatten")


#: stacks larger than this (as float32) are inspected lazily (:func:`inspect_to_npy`): read block by block, the
#: histogram, noise and stripes measured on evenly spaced sample slices
LAZY_BYTES = 512 * 2**20
SAMPLE_SLICES = 32
#: sub-pixel precision of the drift registration (1/20 px: :func:`fibsynth.microscope.register_slices`' default)
REGISTRATION_UPSAMPLE = 20


def read_stack(path: str | Path, *, voxel_nm: float | None = None, slice_nm: float | None = None,
               energy_kev: float | None = None, lazy: bool = False
               ) -> tuple[Any, VoxelSize, float | None, dict[str, Any]]:
    """The real stack as float32 (z, y, x), its voxel size (options override the file's metadata) and beam energy
    (option, else the file's, else None), and a description. One-line errors for everything a user can get wrong.

    ``lazy=True``: a Zarr store comes back as a dask array and an uncompressed TIFF as a memory map, in the file's
    own type, not read into memory (the checks read the first slices; a Zarr's finiteness is checked chunk by
    chunk); other inputs are read as before. :func:`inspect_to_npy` takes either."""
    from fibsynth.io import read_volume

    path = Path(path)
    if not path.exists():
        raise FibsynthError("file or folder not found", path)
    try:
        vol = read_volume(path, lazy=lazy, mmap=lazy)
    except FibsynthError:
        raise
    except Exception as exc:  # an unreadable file of a known suffix
        raise FibsynthError(f"cannot read the stack ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})", path) from None
    data = vol.data  # lazy: a dask array (Zarr) or a memory map (TIFF) where possible
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise FibsynthError(f"expected a (z, y, x) image stack, got shape {tuple(data.shape)}", path)
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise FibsynthError(f"expected integer or float gray values, got {data.dtype}", path)
    if data.shape[0] < 3 or min(data.shape[1:]) < 16:
        raise FibsynthError(f"too small to reconstruct: need at least 3 slices of 16x16 pixels, got {tuple(data.shape)}", path)
    if data.dtype == np.bool_ or (data.size and np.unique(np.asarray(data[: min(4, data.shape[0])])).size <= 2):
        raise FibsynthError("holds only two gray values: this looks like a segmentation, not a microscope image", path)
    if not isinstance(data, np.ndarray) or isinstance(data, np.memmap):
        img = data  # read_volume checked its finiteness chunk by chunk (dask) or slab by slab (memory map)
    else:
        img = data.astype(np.float32)
        if not np.all(np.isfinite(img)):
            raise FibsynthError("the stack holds NaN or infinite values", path)
    meta_vox = vol.meta.voxel_size_nm
    if voxel_nm is None and meta_vox is None:
        raise FibsynthError("the stack carries no voxel size: give the pixel size", path, param="voxel_nm")
    xy = float(voxel_nm) if voxel_nm is not None else float(meta_vox.x)
    z = float(slice_nm) if slice_nm is not None else (float(meta_vox.z) if meta_vox is not None else xy)
    for name, v in (("voxel_nm", xy), ("slice_nm", z)):
        if not (0 < v <= 1e4):
            raise FibsynthError(f"must be in (0, 1e4] nm (got {v})", path, param=name)
    energy = energy_kev if energy_kev is not None else vol.meta.energy_kev
    desc = {"file": str(path), "shape (z, y, x)": str(tuple(img.shape)), "dtype": str(data.dtype),
            "voxel size nm (x, y, z)": f"{xy:g}, {xy:g}, {z:g}",
            "voxel size from": "options" if voxel_nm is not None else "the file's metadata",
            "beam energy keV": energy if energy is not None else "unknown",
            "generator (from the file)": vol.meta.generator or "unknown"}
    return img, VoxelSize.from_xy_z(xy, z), (None if energy is None else float(energy)), desc


# ------------------------------------------------------------------------------------------ alignment fill

#: rows/columns next to a detected fill that are also left out: an aligned slice was resampled, so the pixels next
#: to its fill mix fill and image
FILL_MARGIN_PX = 1


def _leading(flags: np.ndarray) -> int:
    """How many leading entries of the 1-D boolean ``flags`` are True."""
    return int(flags.size if flags.all() else np.argmin(flags))


def fill_borders(stack: Any, *, block: int = 32) -> dict[str, Any] | None:
    """The alignment fill of a stack and the largest box free of it, or None when there is none.

    Aligning a FIB-SEM stack (Fiji's SIFT or StackReg alignment, Atlas, Dragonfly) moves each slice and fills what
    moved in with one constant gray value (mostly 0), so whole rows and columns along the slices' edges hold that
    value and nothing else; blank slices (one gray value) at the start or end of the stack are the same. Such
    pixels are not microscope data: they would add a spike to the histogram, read as pore or solid, and pass for
    structure. This finds, per slice, the edge rows and columns that hold one value only (equal to the slice's
    corner) and the blank slices at either end, and returns the common box without them, ``FILL_MARGIN_PX`` further
    in where fill was found (resampled neighbours of the fill). A real image row of one constant value (a fully
    clipped row) is treated the same way: it is not data either.

    Returns ``{"box": [[z0, z1], [y0, y1], [x0, x1]], "removed": {...}, "fill_values": [...], "blank_slices": [...]}``
    (``blank_slices``: blank slices inside the box, which are kept and reported). Reads ``stack`` (array, memory map
    or dask array) block by block along z."""
    nz, ny, nx = (int(n) for n in stack.shape)
    top = np.zeros(nz, int)
    bottom = np.zeros(nz, int)
    left = np.zeros(nz, int)
    right = np.zeros(nz, int)
    blank = np.zeros(nz, bool)
    values: set[float] = set()
    b = max(1, int(block))
    for z0 in range(0, nz, b):
        blk = np.asarray(stack[z0:z0 + b])
        for j, img in enumerate(blk):
            k = z0 + j
            corners = (img[0, 0], img[0, -1], img[-1, 0], img[-1, -1])
            rows = np.zeros(ny, bool)
            cols = np.zeros(nx, bool)
            for c in set(v.item() for v in corners):
                eq = img == c
                rows |= eq.all(axis=1)
                cols |= eq.all(axis=0)
            if rows.all():
                blank[k] = True
                values.add(float(img[0, 0]))
                continue
            top[k], bottom[k] = _leading(rows), _leading(rows[::-1])
            left[k], right[k] = _leading(cols), _leading(cols[::-1])
            for found, v in ((top[k], img[0, 0]), (left[k], img[0, 0]), (bottom[k], img[-1, 0]),
                             (right[k], img[0, -1])):
                if found:
                    values.add(float(v))
    live = np.flatnonzero(~blank)
    if live.size == 0:
        return {"box": None, "blank_slices": list(range(nz)), "fill_values": sorted(values)}
    z0, z1 = int(live[0]), int(live[-1]) + 1

    def edge(counts: np.ndarray) -> int:
        m = int(counts[z0:z1][~blank[z0:z1]].max())
        return m + FILL_MARGIN_PX if m else 0

    y0, y1 = edge(top), ny - edge(bottom)
    x0, x1 = edge(left), nx - edge(right)
    if (z0, z1, y0, y1, x0, x1) == (0, nz, 0, ny, 0, nx):
        return None
    return {"box": [[z0, z1], [y0, y1], [x0, x1]],
            "removed": {"slices_at_start": z0, "slices_at_end": nz - z1, "rows_top": y0, "rows_bottom": ny - y1,
                        "columns_left": x0, "columns_right": nx - x1},
            "fill_values": sorted(values),
            "blank_slices": [int(k) for k in np.flatnonzero(blank[z0:z1]) + z0],
            "margin_px": FILL_MARGIN_PX}


def crop_fill(stack: Any, path: Any = None) -> tuple[Any, dict[str, Any] | None]:
    """``stack`` without its alignment fill (:func:`fill_borders`; a view, nothing copied) and the record, or the
    stack itself and None. One-line error when nothing usable is left."""
    return crop_to_fill(stack, fill_borders(stack), path)


def crop_to_fill(stack: Any, rec: dict[str, Any] | None, path: Any = None) -> tuple[Any, dict[str, Any] | None]:
    """:func:`crop_fill` with the record of :func:`fill_borders` already at hand (a cached one): reads nothing."""
    if rec is None:
        return stack, None
    if rec["box"] is None:
        raise FibsynthError("every slice is blank (one gray value): no image to reconstruct", path)
    rec["input_shape"] = [int(n) for n in stack.shape]
    (z0, z1), (y0, y1), (x0, x1) = rec["box"]
    if z1 - z0 < 3 or min(y1 - y0, x1 - x0) < 16:
        raise FibsynthError(
            f"after leaving out the alignment fill (rows/columns of one gray value at the slice edges, blank slices) "
            f"only {z1 - z0} slices of {y1 - y0}x{x1 - x0} pixels are left; need at least 3 of 16x16: crop the stack "
            f"to its common image region", path)
    return stack[z0:z1, y0:y1, x0:x1], rec


def fill_line(rec: dict[str, Any], shape: tuple[int, ...]) -> str:
    """The sentence that tells the user what was left out and where the reconstructed region lies."""
    r = rec["removed"]
    (z0, z1), (y0, y1), (x0, x1) = rec["box"]
    parts = [f"{v} {k.replace('_', ' ')}" for k, v in r.items() if v]
    vals = ", ".join(f"{v:g}" for v in rec["fill_values"]) or "-"
    return (f"alignment fill left out ({'; '.join(parts)}; fill value {vals}, plus a {rec['margin_px']}-px margin): "
            f"reconstructing the region z {z0}:{z1}, y {y0}:{y1}, x {x0}:{x1} of the {tuple(shape)} stack; the outputs "
            f"cover that region and carry its offset (z, y, x) = ({z0}, {y0}, {x0})")


# ------------------------------------------------------------------------------------------ inspection

ESTIMATORS = ("fibsynth.microscope: noise_sigma (wavelet MAD), stripe_profile_power (row-pair covariance), "
              "register_slices (phase correlation)")


def stripe_power(img: Any) -> float:
    """Curtain-stripe power: the variance of each slice's stripe profile
    (:func:`fibsynth.microscope.stripe_profile_power`, which reads one slice at a time) relative to the slice's
    variance, averaged over slices (0 = no vertical stripes)."""
    from fibsynth.microscope import stripe_profile_power

    var = img.reshape(img.shape[0], -1).var(axis=1) + 1e-12
    return float(np.mean(np.clip(stripe_profile_power(img), 0, None) / var))


def inspect_stack(img: np.ndarray, *, region: Any = None) -> dict[str, Any]:
    """Histogram, percentiles, noise, stripe power and drift of a (z, y, x) stack; ``region`` (y0, y1, x0, x1):
    the drift registered on that rectangle only (fiducial marks; :func:`fibsynth.microscope.register_slices`)."""
    lo, p1, p50, p99, hi = (float(v) for v in np.percentile(img, [0, 1, 50, 99, 100]))
    counts, edges = np.histogram(img, bins=128, range=(lo, hi if hi > lo else lo + 1))
    from fibsynth.microscope import noise_sigma, register_slices

    # the microscope's estimators read one slice at a time: no float64 copy of the stack
    sigma = noise_sigma(img)
    cum = register_slices(img, upsample=REGISTRATION_UPSAMPLE, region=region)  # cumulative (dy, dx) onto slice 0
    step = np.diff(cum, axis=0)
    rec: dict[str, Any] = {
        "min": lo, "p1": p1, "median": p50, "p99": p99, "max": hi,
        "noise_sigma": sigma, "noise_relative": sigma / max(p99 - p1, 1e-12),
        "stripe_power": stripe_power(img),
        "drift_px_per_slice": float(np.mean(np.hypot(step[:, 0], step[:, 1]))) if len(step) else 0.0,
        "drift_total_px": float(np.max(np.hypot(cum[:, 0], cum[:, 1]))),
        "clipped_fraction": float(np.mean((img == lo) | (img == hi))),
        "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
        "drift_shifts_px": cum.tolist(),
        "estimators": ESTIMATORS,
    }
    return rec


# ------------------------------------------------------------------------------------------ corrections

def _check_corrections(corrections: Any) -> None:
    bad = [c for c in corrections if c not in CORRECTIONS]
    if bad:
        raise FibsynthError(f"unknown correction(s) {', '.join(bad)} (choose from {', '.join(CORRECTIONS)})",
                            param="correct")


def apply_corrections(img: np.ndarray, corrections: tuple[str, ...] | list[str], drift_shifts: Any = None
                      ) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply the corrections the user asked for, in a fixed order (align, destripe, flatten), with the microscope
    stage's functions; returns the stack and a record. ``align``: move each slice by the cumulative drift
    (``drift_shifts``, else :func:`fibsynth.microscope.register_slices`); ``destripe``:
    :func:`fibsynth.microscope.destripe`; ``flatten``: :func:`fibsynth.microscope.correct_shading` (polynomial
    background of the mean slice, which needs no two-phase model). The whole stack in memory (float64); for a
    large stack :func:`correct_blocks` gives the same result block by block."""
    import fibsynth.microscope as M

    _check_corrections(corrections)
    out = np.asarray(img, np.float64)
    rec: dict[str, Any] = {"applied": [c for c in CORRECTIONS if c in corrections], "by": "fibsynth.microscope"}
    if "align" in corrections:
        sh = np.asarray(drift_shifts, np.float64) if drift_shifts is not None else M.register_slices(out)
        out = M.shift_slices(out, sh)
        rec["align_max_shift_px"] = float(np.abs(sh).max()) if sh.size else 0.0
    if "destripe" in corrections:
        out = M.destripe(out)
    if "flatten" in corrections:
        try:
            out, _, info = M.correct_shading(out, method="polynomial")
        except FibsynthError as exc:  # a stack whose mean is not positive
            raise FibsynthError(f"flatten: {exc.message}", param="correct") from None
        rec["flatten"] = {"method": info["method"]}
    return out.astype(np.float32), rec


class _SliceView:
    """A read-only (z, y, x) float64 array-like whose slice k is ``fn(k)``, computed when it is asked for: the
    microscope's functions read it one slice at a time."""

    dtype = np.dtype(np.float64)

    def __init__(self, shape: tuple[int, ...], fn):
        self.shape, self._fn = tuple(shape), fn

    def __getitem__(self, k: int) -> np.ndarray:
        return self._fn(int(k))


def correct_blocks(stack: Any, out: Any, corrections: tuple[str, ...] | list[str], drift_shifts: Any = None, *,
                   block: int = 32, scratch: Path | None = None) -> dict[str, Any]:
    """:func:`apply_corrections` block by block: writes the same float32 stack into ``out`` (an array or memory map
    of ``stack``'s shape) without holding the whole stack; returns the same record. ``stack``: array, memory map or
    dask array, read ``block`` slices at a time.

    ``align`` moves each block by its rows of ``drift_shifts`` (else :func:`fibsynth.microscope.register_slices`,
    which reads one slice at a time). ``destripe``: the method is decided on the whole aligned stack
    (:func:`fibsynth.microscope.destripe_method`, one slice at a time), then each block is destriped with it.
    ``flatten``: the polynomial field of the mean slice of the aligned, destriped stack
    (:func:`fibsynth.microscope.shading_background`, one slice at a time), then divided out block by block
    (:func:`fibsynth.microscope.correct_shading` with that ``field``). The aligned slices are computed again where a
    later pass needs them (a spline shift is cheap); the destriped ones, when ``flatten`` needs them a second time,
    are kept as float64 in ``scratch`` (a temporary memory-mapped .npy, 8 bytes per voxel on disk, deleted
    afterwards; default: beside ``out`` when it is a memory map)."""
    import fibsynth.microscope as M

    _check_corrections(corrections)
    shape = tuple(int(n) for n in stack.shape)
    nz = shape[0]
    b = max(1, int(block))
    rec: dict[str, Any] = {"applied": [c for c in CORRECTIONS if c in corrections], "by": "fibsynth.microscope"}
    sh = None
    if "align" in corrections:
        sh = np.asarray(drift_shifts, np.float64) if drift_shifts is not None else M.register_slices(stack)
        rec["align_max_shift_px"] = float(np.abs(sh).max()) if sh.size else 0.0

    def aligned(z0: int, z1: int) -> np.ndarray:
        blk = np.asarray(stack[z0:z1])
        return M.shift_slices(blk, sh[z0:z1]) if sh is not None else np.asarray(blk, np.float64)

    method = None
    if "destripe" in corrections:
        method = M.destripe_method(_SliceView(shape, lambda k: aligned(k, k + 1)[0]))

    def corrected(z0: int, z1: int) -> np.ndarray:  # aligned, destriped (float64)
        x = aligned(z0, z1)
        return M.destripe(x, method=method) if method is not None else x

    blocks = [(z0, min(z0 + b, nz)) for z0 in range(0, nz, b)]
    if "flatten" not in corrections:
        for z0, z1 in blocks:
            out[z0:z1] = corrected(z0, z1).astype(np.float32)
        return rec
    tmp = None
    if scratch is None and isinstance(out, np.memmap) and out.filename:
        scratch = Path(out.filename).with_suffix(".destriped.npy")
    try:
        if method is not None:  # the destriped slices are needed twice: on disk, not recomputed
            tmp = (np.empty(shape, np.float64) if scratch is None  # out is in memory: so may this be
                   else np.lib.format.open_memmap(scratch, mode="w+", dtype=np.float64, shape=shape))
            for z0, z1 in blocks:
                tmp[z0:z1] = corrected(z0, z1)
            if isinstance(tmp, np.memmap):
                tmp.flush()
            src = lambda z0, z1: np.asarray(tmp[z0:z1])  # noqa: E731
        else:
            src = corrected
        try:
            field = M.shading_background(tmp if tmp is not None else _SliceView(shape, lambda k: src(k, k + 1)[0]))
        except FibsynthError as exc:  # a stack whose mean is not positive
            raise FibsynthError(f"flatten: {exc.message}", param="correct") from None
        for z0, z1 in blocks:
            x, _, info = M.correct_shading(src(z0, z1), method="polynomial", field=field)
            out[z0:z1] = x.astype(np.float32)
        rec["flatten"] = {"method": info["method"]}
    finally:
        if tmp is not None:
            del tmp
            if scratch is not None:
                Path(scratch).unlink(missing_ok=True)
    return rec


# ------------------------------------------------------------------------------------------ lazy inspection

def inspect_to_npy(stack: Any, out_npy: Path, corrections=(), *, block: int = 32, max_bytes: int = LAZY_BYTES,
                   sample_slices: int = SAMPLE_SLICES, fill: dict[str, Any] | None = None,
                   align_region: Any = None) -> dict[str, Any]:
    """Inspect ``stack`` (array, memory map or dask array) and write it, corrected if asked, as float32 to
    ``out_npy``; returns the inspection record (:func:`inspect_stack`'s keys).

    Stacks of at most ``max_bytes`` (as float32) are read into memory and inspected exactly as before. Larger ones
    never are: they are copied block by block (``block`` slices, or the Zarr's chunks along z, whichever is larger:
    a chunk is the least that can be read) into a memory-mapped ``out_npy``; the drift is registered pair by pair
    across the blocks (:class:`~fibsynth.microscope.SliceChain`: the same shifts as
    :func:`~fibsynth.microscope.register_slices` over the whole stack), the minimum, maximum and clipped fraction
    are exact, and the histogram, percentiles, noise and stripe power come from ``sample_slices`` evenly spaced
    slices (``"sampled_slices"`` in the record). With ``corrections``, a large stack is copied so into a temporary
    ``.raw.npy`` beside ``out_npy``, corrected block by block into ``out_npy`` (:func:`correct_blocks`: the stack
    :func:`apply_corrections` gives in memory) and the corrected stack inspected the same way
    (``"after_correction"``). ``fill``: the record of :func:`crop_fill` when ``stack`` is the cropped view it
    returned (stored in the record as ``alignment_fill``, with the ``input_shape``). ``align_region`` (y0, y1, x0,
    x1 of ``stack``): the drift, and so the ``align`` correction, registered on that rectangle only."""
    extra = {"alignment_fill": fill, "input_shape": list(fill["input_shape"])} if fill else {}
    shape = tuple(int(n) for n in stack.shape)
    if int(np.prod(shape)) * 4 <= max_bytes:
        img = np.asarray(stack, np.float32)
        rec = inspect_stack(img, region=align_region)
        rec.update(extra)
        if corrections:
            img, crec = apply_corrections(img, corrections, rec["drift_shifts_px"])
            rec["corrections"] = crec
            rec["after_correction"] = {k: v for k, v in inspect_stack(img, region=align_region).items()
                                       if k not in ("histogram", "drift_shifts_px")}
        np.save(out_npy, np.ascontiguousarray(img, np.float32))
        return rec
    if not corrections:
        return {**_inspect_blocks(stack, out_npy, block, sample_slices, align_region), **extra}
    _check_corrections(corrections)
    out_npy = Path(out_npy)
    raw = out_npy.with_name(out_npy.stem + ".raw.npy")
    try:
        rec = {**_inspect_blocks(stack, raw, block, sample_slices, align_region), **extra}
        out = np.lib.format.open_memmap(out_npy, mode="w+", dtype=np.float32, shape=shape)
        rec["corrections"] = correct_blocks(np.load(raw, mmap_mode="r"), out, corrections, rec["drift_shifts_px"],
                                            block=block, scratch=out_npy.with_name(out_npy.stem + ".destriped.npy"))
        out.flush()
        del out
        after = _inspect_blocks(np.load(out_npy, mmap_mode="r"), None, block, sample_slices, align_region)
        rec["after_correction"] = {k: v for k, v in after.items() if k not in ("histogram", "drift_shifts_px")}
    finally:
        raw.unlink(missing_ok=True)
    return rec


def _inspect_blocks(stack: Any, out_npy: Path | None, block: int, sample_slices: int, region: Any = None
                    ) -> dict[str, Any]:
    """:func:`inspect_to_npy`'s lazy inspection, copying ``stack`` as float32 into ``out_npy`` on the way (None: a
    stack already stored, nothing copied)."""
    from fibsynth.microscope import SliceChain, noise_sigma

    shape = tuple(int(n) for n in stack.shape)
    nz = shape[0]
    out = None if out_npy is None else np.lib.format.open_memmap(out_npy, mode="w+", dtype=np.float32, shape=shape)
    cum = np.zeros((nz, 2))
    lo, hi = np.inf, -np.inf
    chain = SliceChain(upsample=REGISTRATION_UPSAMPLE, region=region)  # register_slices' chain, block to block
    b = max(1, int(block))
    chunks = getattr(stack, "chunksize", None)  # a dask array: whole chunks along z (each is read once)
    if chunks:
        b = max(1, int(chunks[0])) * max(1, b // max(1, int(chunks[0])))
    for z0 in range(0, nz, b):
        z1 = min(z0 + b, nz)
        blk = np.asarray(stack[z0:z1], np.float32)
        if out is not None:
            out[z0:z1] = blk
        lo, hi = min(lo, float(blk.min())), max(hi, float(blk.max()))
        # the drift: the cumulative shifts are those of registering the whole stack at once
        cum[z0:z1] = chain.add(blk)
    if out is not None:
        out.flush()
    else:
        out = stack
    clipped = 0
    for z0 in range(0, nz, b):
        blk = np.asarray(out[z0:z0 + b], np.float32)
        clipped += int(np.count_nonzero((blk == lo) | (blk == hi)))
    idx = np.unique(np.linspace(0, nz - 1, min(nz, int(sample_slices))).round().astype(int))
    sample = np.asarray(out[idx], np.float32)
    del out
    _, p1, p50, p99, _ = (float(v) for v in np.percentile(sample, [0, 1, 50, 99, 100]))
    counts, edges = np.histogram(sample, bins=128, range=(lo, hi if hi > lo else lo + 1))
    # noise and stripe power: the microscope's estimators read the sample one slice at a time
    sigma = noise_sigma(sample)
    stripes = stripe_power(sample)
    step = np.diff(cum, axis=0)
    return {
        "min": lo, "p1": p1, "median": p50, "p99": p99, "max": hi,
        "noise_sigma": sigma, "noise_relative": sigma / max(p99 - p1, 1e-12),
        "stripe_power": stripes,
        "drift_px_per_slice": float(np.mean(np.hypot(step[:, 0], step[:, 1]))) if len(step) else 0.0,
        "drift_total_px": float(np.max(np.hypot(cum[:, 0], cum[:, 1]))),
        "clipped_fraction": clipped / float(np.prod(shape)),
        "histogram": {"counts": counts.tolist(), "edges": edges.tolist()},
        "drift_shifts_px": cum.tolist(),
        "sampled_slices": idx.tolist(),
        "estimators": ESTIMATORS,
    }
