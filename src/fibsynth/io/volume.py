"""Reading and writing volumes: multi-page TIFF / ImageJ hyperstacks, folders of 2D TIFF slices,
Zarr / OME-Zarr and ``.npy``. The path's suffix picks the format:

===================  ===========================================================================
``.tif`` ``.tiff``   one multi-page TIFF, written as an ImageJ hyperstack (voxel size in nm in the
                     ImageJ tags, fibsynth metadata as JSON in the ImageJ ``Info`` property)
``.zarr``            OME-Zarr (NGFF 0.4, zarr format 2): a group with the array at ``0`` and the
                     voxel size as the ``scale`` transform; fibsynth metadata in the group
                     attribute ``fibsynth``. Plain zarr arrays (v2 or v3) are read too.
``.npy``             NumPy array plus a sidecar ``NAME.npy.json`` holding the metadata
no suffix            a folder of 2D TIFF slices ``slice_00000.tif`` ... (how FIB-SEM instruments
                     write a run) plus ``fibsynth.json``; reading sorts file names naturally
===================  ===========================================================================

Arrays are (z, y, x): z is the milling direction. Every write is atomic: data go to a temporary
name beside the target, which is renamed into place only once complete. An existing target is replaced only
when it is fibsynth's own output of that kind; anything else is refused and nothing is deleted (the rule is in
:mod:`fibsynth.io.outputs`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io.metadata import VolumeMeta

from fibsynth.io.formats import TIFF_SUFFIXES, volume_format  # noqa: F401  (one home: io.outputs needs it too)
_INFO_PREFIX = "fibsynth-metadata:"
_SIDECAR = "fibsynth.json"
_UNIT_TO_NM = {
    "nm": 1.0,
    "nanometer": 1.0,
    "nanometre": 1.0,
    "um": 1e3,
    "µm": 1e3,
    "\u00b5m": 1e3,
    "micron": 1e3,
    "microns": 1e3,
    "micrometer": 1e3,
    "micrometre": 1e3,
    "mm": 1e6,
    "millimeter": 1e6,
    "pm": 1e-3,
    "angstrom": 0.1,
    "å": 0.1,
}


@dataclass
class Volume:
    """A (z, y, x) array with its metadata. ``data`` is a NumPy array, or a dask array when read lazily."""

    data: Any
    meta: VolumeMeta

    @property
    def voxel_size(self) -> VoxelSize | None:
        return self.meta.voxel_size_nm


# --------------------------------------------------------------------------------------------- atomic


@contextmanager
def atomic_path(target: str | Path, *, may_replace: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` when the block succeeds.

    Works for files and folders (Zarr stores, slice folders). On any exception (Ctrl-C included) the temporary
    output is removed, so no partial file is ever left under the target's name.

    An existing *folder* at ``target`` is replaced only when it is fibsynth's own volume output (see
    :mod:`fibsynth.io.outputs`) or ``may_replace(target)`` says so; anything else is a one-line
    :class:`FibsynthError` raised before the block runs, and nothing is deleted. An existing file is replaced
    (callers that write volumes check the file first: :func:`write_volume`).
    """
    from fibsynth.io.outputs import owner_problem

    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        raise FibsynthError("output folder does not exist", parent)
    if not parent.is_dir():
        raise FibsynthError("is a file, not a folder; the output cannot go into it", parent)

    def check_target() -> None:
        if target.is_symlink():
            raise FibsynthError("is a symbolic link; fibsynth does not replace links", target)
        if target.is_dir() and not (may_replace is not None and may_replace(target)):
            why = owner_problem(target)
            if why:
                raise FibsynthError(f"{why}; fibsynth replaces only its own outputs (choose another path or move "
                                    "it away)", target)

    check_target()
    tmp = parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
        check_target()  # the target may have appeared while the block ran
        if target.is_dir():
            trash = parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(target, trash)
            os.replace(tmp, target)
            shutil.rmtree(trash, ignore_errors=True)
        elif target.exists() and tmp.is_dir():
            raise FibsynthError("is an existing file; this output is written as a folder", target)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists() or tmp.is_symlink():
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ validation


def check_volume(data: Any, source: str | Path | None = None, *, allow_2d: bool = True) -> Any:
    """Check dimensionality and finiteness; a 2D image becomes a stack of one slice."""
    if data.ndim == 2 and allow_2d:
        data = data[None]
    if data.ndim != 3:
        raise FibsynthError(f"expected a 3D (z, y, x) volume, got {data.ndim} dimensions {tuple(data.shape)}", source)
    if min(data.shape) < 1:
        raise FibsynthError(f"empty volume of shape {tuple(data.shape)}", source)
    if np.issubdtype(data.dtype, np.floating):
        if isinstance(data, np.memmap):  # a memory-mapped file: checked slab by slab, never read whole
            n_bad = sum(int(np.count_nonzero(~np.isfinite(data[z:z + 16]))) for z in range(0, data.shape[0], 16))
        else:
            bad = ~np.isfinite(data)
            n_bad = int(bad.sum()) if isinstance(data, np.ndarray) else int(bad.sum().compute())
        if n_bad:
            raise FibsynthError(f"contains {n_bad} NaN or infinite values", source)
    elif not (np.issubdtype(data.dtype, np.integer) or data.dtype == bool):
        raise FibsynthError(f"unsupported data type {data.dtype}", source)
    return data


def as_binary(data: Any, source: str | Path | None = None) -> Any:
    """Return a uint8 {0, 1} volume (1 = solid). Accepts bool, {0, 1} and {0, 255} (Fiji masks).

    Anything else (gray values, NaN, labels > 1) is an error naming the offending values.
    """
    data = check_volume(data, source)
    if data.dtype == bool:
        return data.astype(np.uint8)
    if isinstance(data, np.ndarray):
        values = np.unique(data) if data.size < 2**26 else _unique_chunked(data)
    else:  # dask
        import dask.array as da

        values = da.unique(data).compute()
    vals = set(values.tolist())
    if vals <= {0, 1}:
        return data.astype(np.uint8, copy=False)
    if vals <= {0, 255}:
        return (data == 255).astype(np.uint8) if isinstance(data, np.ndarray) else (data == 255).astype(np.uint8)
    shown = sorted(vals)[:6]
    raise FibsynthError(
        f"not a binary volume: values {shown}{' ...' if len(vals) > 6 else ''}; expected {{0, 1}} or {{0, 255}}",
        source,
    )


MAX_LABELS = 255


def as_labels(data: Any, source: str | Path | None = None, *, n: int | None = None, require_all: bool = False,
              param: str | None = None) -> Any:
    """Return a uint8 label volume with values 0..n-1 (a phase per label). Accepts integer or bool volumes whose
    values are all in 0..254 (``n`` given: in 0..n-1); ``require_all``: every label 0..n-1 (or 0..max) present.

    Anything else (gray values, negative or too large labels, a missing phase) is a one-line error naming the
    offending values."""
    data = check_volume(data, source)
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if isinstance(data, np.ndarray):
        values = np.unique(data)
    else:  # dask
        import dask.array as da

        values = da.unique(data).compute()
    if not np.issubdtype(data.dtype, np.integer):  # floats: whole numbers only (e.g. a Fiji float label stack)
        frac = [v for v in values.tolist() if v != int(v)]
        if frac:
            raise FibsynthError(f"labels must be integers 0..n-1; found gray values {frac[:4]}"
                                f"{' ...' if len(frac) > 4 else ''}", source, param=param)
    vals = [int(v) for v in values.tolist()]
    limit = MAX_LABELS if n is None else int(n)
    bad = [v for v in vals if v < 0 or v >= limit]
    if bad:
        shown = bad[:6]
        raise FibsynthError(f"labels must be in 0..{limit - 1}; found {shown}{' ...' if len(bad) > 6 else ''}",
                            source, param=param)
    want = int(n) if n is not None else (max(vals) + 1 if vals else 0)
    if require_all:
        missing = sorted(set(range(want)) - set(vals))
        if missing:
            raise FibsynthError(f"labels {missing[:6]} of 0..{want - 1} are absent: every phase must occur",
                                source, param=param)
    return data.astype(np.uint8, copy=False)


def _unique_chunked(data: np.ndarray) -> np.ndarray:
    seen: set = set()
    for z in range(data.shape[0]):
        seen.update(np.unique(data[z]).tolist())
        if len(seen) > 8:
            break
    return np.array(sorted(seen))


def resolve_voxel_size(
    file_voxel: VoxelSize | None,
    voxel_nm: float | None = None,
    slice_nm: float | None = None,
    source: str | Path | None = None,
) -> VoxelSize:
    """The voxel size a command works with, by one rule for every command.

    ``--voxel-nm`` (pixel size x = y) overrides the file's metadata, and ``--slice-nm`` then defaults to it (cubic
    voxels); ``--slice-nm`` alone replaces only the file's slice thickness. With neither option the file's own
    voxel size is used, and a file without one is a one-line error asking for ``--voxel-nm``.
    """
    for name, v in (("--voxel-nm", voxel_nm), ("--slice-nm", slice_nm)):
        if v is not None and not (v > 0 and v <= 1e6):  # also catches NaN
            raise FibsynthError(f"{name} must be in (0, 1e6] nm (got {v})")
    if voxel_nm is not None:
        return VoxelSize.from_xy_z(voxel_nm, slice_nm)
    if file_voxel is None:
        raise FibsynthError("has no voxel size in its metadata; pass --voxel-nm (and --slice-nm if z differs)", source)
    if slice_nm is not None:
        return VoxelSize(x=file_voxel.x, y=file_voxel.y, z=float(slice_nm))
    return file_voxel


# ---------------------------------------------------------------------------------------------- read


def read_volume(path: str | Path, *, lazy: bool = False, mmap: bool = False) -> Volume:
    """Read a volume and its metadata (voxel size from fibsynth's own metadata, else the file's tags).

    ``lazy=True`` returns a dask array for Zarr stores (volumes larger than memory); other formats
    are read into memory. ``mmap=True``: an uncompressed, contiguous TIFF comes back as a read-only memory map
    (:func:`tifffile.memmap`) instead of being read (others as without it).
    """
    path = Path(path)
    if not path.exists():
        raise FibsynthError("file not found", path)
    fmt = volume_format(path) if not path.is_dir() or path.suffix else "folder"
    if path.is_dir() and fmt not in ("zarr", "folder"):
        raise FibsynthError("is a folder, expected a file", path)
    if fmt == "tiff":
        data, meta = _read_tiff(path, mmap)
    elif fmt == "zarr":
        data, meta = _read_zarr(path, lazy)
    elif fmt == "npy":
        data, meta = _read_npy(path)
    else:
        data, meta = _read_folder(path)
    data = check_volume(data, path)
    return Volume(data, meta)


def read_labels(path: str | Path, *, n: int | None = None, require_all: bool = False, lazy: bool = False) -> Volume:
    """Read a label volume (phase per voxel, 0..n-1; :func:`as_labels`); a binary structure is labels 0..1."""
    vol = read_volume(path, lazy=lazy)
    data = as_labels(vol.data, path, n=n, require_all=require_all)
    meta = vol.meta if vol.meta.kind else vol.meta.model_copy(update={"kind": "structure"})
    return Volume(data, meta)


def read_structure(path: str | Path, *, lazy: bool = False) -> Volume:
    """Read a binary structure (1 = solid): ``{0,1}``, bool or ``{0,255}`` volumes are accepted."""
    vol = read_volume(path, lazy=lazy)
    data = as_binary(vol.data, path)
    meta = vol.meta if vol.meta.kind else vol.meta.model_copy(update={"kind": "structure"})
    return Volume(data, meta)


@contextmanager
def _quiet_tifffile(path: Path | None = None) -> Iterator[None]:
    """tifffile logs warnings and errors (truncated or damaged files) and may then return fewer pages than the file
    had: nothing reaches the terminal, and a damaged file is a one-line error instead of a silently short stack."""
    import logging
    import warnings

    class _Collect(logging.Handler):
        def __init__(self):
            super().__init__(logging.ERROR)
            self.messages: list[str] = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    log = logging.getLogger("tifffile")
    level, propagate = log.level, log.propagate
    handler = _Collect()
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate
    damaged = [m for m in handler.messages if any(w in m.lower() for w in ("invalid", "corrupt", "truncat", "failed"))]
    if damaged:
        raise FibsynthError(f"cannot read TIFF: damaged or truncated file ({damaged[0].splitlines()[0][:120]})", path)


def _check_fits(shape: Any, dtype: Any, path: Path) -> None:
    """Refuse, before reading, a volume that cannot be held in memory (one line instead of a MemoryError)."""
    from fibsynth.io.memory import array_bytes, check_memory

    try:
        nbytes = array_bytes(shape, np.dtype(dtype).itemsize)
    except (TypeError, ValueError):
        return
    check_memory(nbytes, f"reading this {tuple(int(v) for v in shape)} {np.dtype(dtype)} volume whole", path,
                 hint="this command holds its input in memory: crop it, or use a machine with more memory")


def _meta_from_json(text: str, source: Path) -> VolumeMeta:
    """A metadata record from a sidecar / Zarr attributes; a bad one (not JSON, a negative voxel size) is one line."""
    from fibsynth.errors import pydantic_error_line

    try:
        return VolumeMeta.from_json(text)
    except FibsynthError as exc:  # the voxel-size normaliser names the field it refused
        who = f"{', '.join(p.split('.')[-1] for p in exc.params)}: " if exc.params else ""
        raise FibsynthError(f"bad fibsynth metadata: {who}{exc.message}", source) from None
    except (ValueError, TypeError) as exc:
        if hasattr(exc, "errors"):
            err = pydantic_error_line(exc, source)
            who = f"{', '.join(err.params)}: " if err.params else ""
            raise FibsynthError(f"bad fibsynth metadata: {who}{err.message}", source) from None
        raise FibsynthError(f"bad fibsynth metadata ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                            source) from None


def _meta_from_info(info: Any) -> VolumeMeta | None:
    if not isinstance(info, str):
        return None
    for line in info.splitlines():
        if line.startswith(_INFO_PREFIX):
            try:
                return VolumeMeta.from_json(line[len(_INFO_PREFIX):])
            except (ValueError, TypeError):
                return None
    return None


def _unit_scale(unit: Any) -> float | None:
    if not isinstance(unit, str):
        return None
    u = unit.strip().lower().replace("\\u00b5", "µ")
    return _UNIT_TO_NM.get(u)


def _read_tiff(path: Path, mmap: bool = False) -> tuple[np.ndarray, VolumeMeta]:
    import tifffile

    try:
        with _quiet_tifffile(path), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = series.axes
            _check_tiff_axes(axes, tuple(series.shape), path)
            data = None
            if mmap:
                try:
                    data = tifffile.memmap(str(path), mode="r")
                except Exception:  # compressed, tiled or otherwise not mappable: read it
                    data = None
                if data is not None and data.size != int(np.prod(series.shape)):
                    data = None
                elif data is not None:
                    data = data.reshape(series.shape)
            if data is None:
                _check_fits(series.shape, series.dtype, path)
                data = series.asarray()
            ij = tif.imagej_metadata or {}
            page = tif.pages[0]
            tags = page.tags
            xres = tags.get("XResolution")
            yres = tags.get("YResolution")
    except FibsynthError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise FibsynthError(f"cannot read TIFF ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})", path) from None
    data = _as_gray_stack(data, axes, path)
    meta = _meta_from_info(ij.get("Info")) or VolumeMeta()
    if meta.voxel_size_nm is None:
        meta = meta.model_copy(update={"voxel_size_nm": _voxel_from_imagej(ij, xres, yres)})
    return data, meta


def _check_tiff_axes(axes: str, shape: tuple[int, ...], path: Path) -> None:
    """Refuse, before reading, what cannot be one gray-level stack: true multi-channel data (channels beside slices
    or time points), colour samples other than 3 or 4. A colour (RGB) stack is checked for gray after reading."""
    sizes = dict(zip(axes, shape))
    if sizes.get("S", 1) > 1 and sizes["S"] not in (3, 4):
        raise FibsynthError(f"expected a gray-level stack, got {sizes['S']} samples per pixel (axes {axes!r} shape "
                            f"{shape}); save it as 8- or 16-bit grayscale (Fiji: Image > Type > 8-bit)", path)
    if sizes.get("C", 1) > 1 and (sizes.get("S", 1) > 1 or any(sizes.get(a, 1) > 1 for a in "ZTQI")):
        raise FibsynthError(f"expected a single-channel stack, got {sizes['C']} channels (axes {axes!r} shape "
                            f"{shape}); keep one channel (Fiji: Image > Color > Split Channels) and save it alone",
                            path)


def _as_gray_stack(data: Any, axes: str, path: Path, note: bool = True) -> Any:
    """One gray-level (z, y, x) stack from what a TIFF series holds, with a one-line note where it was interpreted.

    * ImageJ files written without axis labels (e.g. ``tifffile.imwrite(..., imagej=True)`` of a 3-D array) call
      their only stack axis "channels": with no other stack axis it is read as the slices.
    * A colour (RGB/RGBA) stack whose three colour channels are equal (a gray image saved as colour) is read as that
      gray image; one whose channels differ is refused (no silent colour-to-gray conversion).
    """
    import warnings

    from fibsynth.errors import InputNote

    sizes = dict(zip(axes, data.shape))
    if sizes.get("S", 1) > 1:
        s = axes.index("S")
        first = np.take(data, 0, axis=s)
        for c in (1, 2):
            other = np.take(data, c, axis=s)
            pairs = zip(first, other) if first.ndim == 3 else [(first, other)]  # slice by slice: no big temporaries
            for a, b in pairs:
                if not np.array_equal(a, b):
                    raise FibsynthError(
                        f"colour (RGB) stack whose channels differ (axes {axes!r}); fibsynth reads single-channel "
                        f"gray-level stacks: convert it (Fiji: Image > Type > 8-bit) or export the detector's gray "
                        f"image",
                        path)
        if note:
            warnings.warn(f"{path.name}: colour (RGB) stack with equal channels, read as its gray image", InputNote,
                          stacklevel=2)
        data = first
    if sizes.get("C", 1) > 1:
        warnings.warn(f"{path.name}: the ImageJ file labels its {sizes['C']} images as channels; read as "
                      f"{sizes['C']} slices (z)", InputNote, stacklevel=2)
    return np.squeeze(data) if data.ndim > 3 else data


def _voxel_from_imagej(ij: dict, xres: Any, yres: Any) -> VoxelSize | None:
    scale = _unit_scale(ij.get("unit"))
    if scale is None or xres is None:
        return None
    try:
        xn, xd = xres.value
        yn, yd = (yres.value if yres is not None else xres.value)
        px = scale * xd / xn
        py = scale * yd / yn
        pz = scale * float(ij.get("spacing", px / scale))
        if min(px, py, pz) <= 0 or not np.isfinite([px, py, pz]).all():
            return None
        return VoxelSize(x=px, y=py, z=pz)
    except (TypeError, ZeroDivisionError, ValueError):
        return None


def _read_zarr(path: Path, lazy: bool) -> tuple[Any, VolumeMeta]:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise FibsynthError(f"cannot open Zarr store ({type(exc).__name__})", path) from None
    attrs = dict(node.attrs)
    voxel = offset = None
    if isinstance(node, zarr.Group):
        ms = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
        if ms:
            ds = ms[0]["datasets"][0]
            arr = node[ds["path"]]
            voxel = _voxel_from_ngff(ms[0], ds)
            offset = _offset_from_ngff(ds)
        else:
            arrays = list(node.array_keys())
            if not arrays:
                raise FibsynthError("Zarr group holds no array", path)
            arr = node[arrays[0]]
            attrs.update(dict(arr.attrs))
    else:
        arr = node
    meta_raw = attrs.get("fibsynth")
    meta = _meta_from_json(json.dumps(meta_raw), path) if isinstance(meta_raw, dict) else VolumeMeta()
    if meta.voxel_size_nm is None and voxel is not None:
        meta = meta.model_copy(update={"voxel_size_nm": voxel})
    if meta.offset_voxels is None and offset is not None:
        meta = meta.model_copy(update={"offset_voxels": offset})
    if lazy:
        import dask.array as da

        data = da.from_zarr(arr)
    else:
        _check_fits(arr.shape, arr.dtype, path)
        data = arr[...]
    return data, meta


def _voxel_from_ngff(ms: dict, ds: dict) -> VoxelSize | None:
    axes = ms.get("axes") or []
    scale = None
    for t in ds.get("coordinateTransformations", []):
        if t.get("type") == "scale":
            scale = t.get("scale")
    if not scale or len(scale) < 3:
        return None
    names = [a.get("name") if isinstance(a, dict) else a for a in axes] or ["z", "y", "x"]
    units = [(a.get("unit") if isinstance(a, dict) else None) for a in axes] or [None] * 3
    out = {}
    for name, s, unit in zip(names[-3:], scale[-3:], units[-3:]):
        f = _unit_scale(unit) if unit else 1.0
        if f is None:
            return None
        out[name] = float(s) * f
    try:
        return VoxelSize(x=out["x"], y=out["y"], z=out["z"])
    except (KeyError, ValueError):
        return None


def _offset_from_ngff(ds: dict) -> tuple[int, int, int] | None:
    """Offset in voxels from an NGFF ``translation`` (in the same units as its ``scale``), if whole voxels."""
    scale = trans = None
    for t in ds.get("coordinateTransformations", []):
        if t.get("type") == "scale":
            scale = t.get("scale")
        elif t.get("type") == "translation":
            trans = t.get("translation")
    if not scale or not trans or len(trans) < 3 or len(scale) < 3:
        return None
    try:
        off = [float(t) / float(s) for t, s in zip(trans[-3:], scale[-3:])]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(np.isfinite(off)) or any(abs(o - round(o)) > 1e-6 for o in off):
        return None
    return tuple(int(round(o)) for o in off)  # type: ignore[return-value]


def _read_npy(path: Path) -> tuple[np.ndarray, VolumeMeta]:
    try:
        head = np.load(path, allow_pickle=False, mmap_mode="r")
        _check_fits(head.shape, head.dtype, path)
        del head
        data = np.load(path, allow_pickle=False)
    except FibsynthError:
        raise
    except Exception as exc:
        raise FibsynthError(f"cannot read .npy ({type(exc).__name__})", path) from None
    side = Path(str(path) + ".json")
    meta = _meta_from_json(_read_text(side), side) if side.is_file() else VolumeMeta()
    return data, meta


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FibsynthError("is not UTF-8 text (expected fibsynth's JSON metadata)", path) from None


def _natural_key(name: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _read_folder(path: Path) -> tuple[np.ndarray, VolumeMeta]:
    import tifffile

    files = sorted(
        (f for f in path.iterdir() if f.suffix.lower() in TIFF_SUFFIXES and not f.name.startswith(".")),
        key=lambda f: _natural_key(f.name),
    )
    if not files:
        raise FibsynthError("folder holds no .tif slices", path)
    first = None
    slices = []
    for f in files:
        if first is not None and len(slices) == 1:
            _check_fits((len(files),) + first.shape, first.dtype, path)
        try:
            with _quiet_tifffile(f):
                img = tifffile.imread(f)
        except Exception as exc:
            raise FibsynthError(f"cannot read TIFF slice ({type(exc).__name__})", f) from None
        img = np.squeeze(img)
        if img.ndim == 3 and img.shape[-1] in (3, 4):  # a colour slice: its gray image if the channels agree
            img = _as_gray_stack(img, "YXS", f, note=first is None)
        if first is None:
            first = img
        if img.shape != first.shape or img.dtype != first.dtype:
            raise FibsynthError(
                f"slice shape/type {img.shape} {img.dtype} differs from the first slice's {first.shape} {first.dtype}", f
            )
        slices.append(img)
    data = np.stack(slices)
    side = path / _SIDECAR
    if side.is_file():
        meta = _meta_from_json(_read_text(side), side)
    else:
        _, meta = _read_tiff(files[0])
        meta = meta.model_copy(update={"voxel_size_nm": meta.voxel_size_nm})
    return data, meta


# --------------------------------------------------------------------------------------------- write


def _prepare(data: Any, meta: VolumeMeta) -> Any:
    if data.dtype == bool:
        data = data.astype(np.uint8)
    if data.dtype == np.float64 or data.dtype == np.float16:
        data = data.astype(np.float32)
    if data.dtype not in (np.uint8, np.uint16, np.float32, np.int32, np.uint32, np.int16, np.int8):
        raise FibsynthError(f"cannot write data type {data.dtype}; use uint8, uint16 or float32")
    return data


def write_volume(
    path: str | Path,
    data: Any,
    meta: VolumeMeta | None = None,
    *,
    compression: str | None = None,
    chunks: tuple[int, int, int] | None = None,
) -> Path:
    """Write ``data`` (z, y, x; NumPy or dask) with ``meta`` atomically; returns the path.

    ``compression`` applies to TIFF (``"lzw"``, ``"zlib"``; default none, which Fiji opens fastest).
    ``chunks`` applies to Zarr (default 64^3-ish chunks). Dask arrays are streamed chunk by chunk
    into Zarr without being held in memory.
    """
    from fibsynth.io.outputs import owner_problem

    path = Path(path)
    fmt = volume_format(path)
    why = owner_problem(path)
    if why:  # never replace what fibsynth did not write (the CLI checks this before its work: check_output)
        raise FibsynthError(f"{why}; fibsynth replaces only its own outputs (choose another path or move it away)", path)
    meta = (meta or VolumeMeta()).with_updates()
    data = check_volume(data, path)
    data = _prepare(data, meta)
    with atomic_path(path) as tmp:
        if fmt == "tiff":
            _write_tiff(tmp, np.asarray(data), meta, compression)
        elif fmt == "zarr":
            _write_zarr(tmp, data, meta, chunks)
        elif fmt == "npy":
            arr = np.asarray(data)
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
            side = Path(str(path) + ".json")
            with atomic_path(side) as stmp:
                stmp.write_text(meta.to_json())
        else:
            _write_folder(tmp, np.asarray(data), meta, compression)
    return path


def _imagej_kwargs(meta: VolumeMeta) -> dict:
    kw: dict[str, Any] = {"metadata": {"axes": "ZYX", "Info": _INFO_PREFIX + meta.to_json()}}
    v = meta.voxel_size_nm
    if v is not None:
        kw["resolution"] = (1.0 / v.x, 1.0 / v.y)
        kw["metadata"].update({"spacing": v.z, "unit": "nm"})
    return kw


def _label_display_max(data: np.ndarray, meta: VolumeMeta) -> int | None:
    """The largest label of an integer structure / label volume (from ``materials`` where it names every label,
    else the data's maximum, at least 1), or None for other volumes. ImageJ and Fiji show an 8- or 16-bit image
    over 0..255 / 0..65535 unless the file names a display range, so a 0/1 segmentation would open all black."""
    if meta.kind not in ("structure", "label") or not np.issubdtype(data.dtype, np.integer):
        return None
    if meta.materials and len(meta.materials) >= 2:
        return len(meta.materials) - 1
    return max(1, int(np.max(data))) if data.size else 1


def _write_tiff(tmp: Path, data: np.ndarray, meta: VolumeMeta, compression: str | None,
                display_max: int | None = None) -> None:
    import tifffile

    kw = _imagej_kwargs(meta)
    imagej = data.dtype in (np.uint8, np.uint16, np.float32)
    if not imagej:
        kw["metadata"] = {"Info": kw["metadata"]["Info"]}
    else:
        top = display_max if display_max is not None else _label_display_max(data, meta)
        if top is not None:
            kw["metadata"].update({"min": 0.0, "max": float(top)})
    tifffile.imwrite(
        tmp,
        data,
        imagej=imagej,
        compression=compression,
        photometric="minisblack",
        **kw,
    )


def _write_folder(tmp: Path, data: np.ndarray, meta: VolumeMeta, compression: str | None) -> None:
    tmp.mkdir()
    width = max(5, len(str(data.shape[0] - 1)))
    # every slice carries the metadata, less bulky tables (e.g. a wave table) that the sidecar holds once
    slim = {k: v for k, v in meta.parameters.items() if not (isinstance(v, list) and len(v) > 64)}
    slice_meta = meta.model_copy(update={"parameters": {**slim, "full_metadata": _SIDECAR}} if len(slim) < len(meta.parameters) else {})
    top = _label_display_max(data, meta)  # one display range for every slice
    for z in range(data.shape[0]):
        _write_tiff(tmp / f"slice_{z:0{width}d}.tif", data[z][None], slice_meta, compression, display_max=top)
    (tmp / _SIDECAR).write_text(meta.to_json())


def _ngff_attrs(meta: VolumeMeta, name: str) -> dict:
    v = meta.voxel_size_nm
    scale = [v.z, v.y, v.x] if v is not None else [1.0, 1.0, 1.0]
    unit = "nanometer" if v is not None else None
    axes = [{"name": n, "type": "space", **({"unit": unit} if unit else {})} for n in "zyx"]
    transforms: list[dict] = [{"type": "scale", "scale": scale}]
    if meta.offset_voxels is not None and any(meta.offset_voxels):  # NGFF 0.4: translation after scale
        transforms.append({"type": "translation", "translation": [o * s for o, s in zip(meta.offset_voxels, scale)]})
    return {
        "multiscales": [
            {
                "version": "0.4",
                "name": name,
                "axes": axes,
                "datasets": [{"path": "0", "coordinateTransformations": transforms}],
            }
        ],
        "fibsynth": json.loads(meta.to_json()),
    }


def default_chunks(shape: tuple[int, ...]) -> tuple[int, int, int]:
    return tuple(int(min(s, c)) for s, c in zip(shape, (64, 256, 256)))  # type: ignore[return-value]


_ATOMIC_TMP = re.compile(r"^\.(.+)\.tmp-[0-9a-f]{8}$")


def _store_name(path: Path) -> str:
    """The name a store is published under: the target's name for a temporary path of :func:`atomic_path`
    (so the OME-NGFF ``name`` does not depend on the random temporary suffix)."""
    m = _ATOMIC_TMP.match(Path(path).name)
    return m.group(1) if m else Path(path).name


def create_zarr(path: Path, shape: tuple[int, int, int], dtype: Any, meta: VolumeMeta, chunks=None):
    """Create an OME-Zarr group at ``path`` (normally a temporary path from :func:`atomic_path`) and
    return its (empty) array ``0`` for chunk-by-chunk filling."""
    import zarr

    chunks = tuple(chunks) if chunks is not None else default_chunks(shape)
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.attrs.update(_ngff_attrs(meta, _store_name(Path(path))))
    return root.create_array("0", shape=tuple(shape), chunks=chunks, dtype=dtype, fill_value=0)


def _write_zarr(tmp: Path, data: Any, meta: VolumeMeta, chunks) -> None:
    arr = create_zarr(tmp, tuple(data.shape), data.dtype, meta, chunks)
    if isinstance(data, np.ndarray):
        arr[...] = data
    else:
        import dask.array as da

        da.store(data.rechunk(arr.chunks), arr, lock=False)
