"""Whole-stack inference with bounded memory: z-blocks (plus the halo of neighbouring slices a 2.5D or 3D
network needs), sliding windows inside each block blended with a Gaussian weight (MONAI's importance map, through
:mod:`fibsynth.ml.tiling`, which the GAN translator shares), and Zarr in/out.

Block invariance. The windows are laid on a grid fixed by the *whole* stack's shape, and a block computes
exactly the windows that touch its slices, reading the input they need. Every output voxel therefore sees
the same windows, weights and summation order whether the stack is processed in one pass, in blocks, or
in blocks spread over dask workers; the tests check that a stack's prediction equals the stitched
predictions of its halves.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.ml.runtime import torch_device
from fibsynth.ml.tiling import blend_2d, gaussian_weight, window_starts
from fibsynth.segment.data import neighbour_indices, normalise, stack_25d
from fibsynth.segment.model import ModelConfig, load_model


def _ceil_to(n: int, d: int) -> int:
    return int(math.ceil(n / d) * d)


def to_labels(p: np.ndarray, classes: int = 2) -> np.ndarray:
    """Labels (uint8) from a predictor's output: P(solid) > 0.5 for two classes; for n classes the most probable
    class of the probabilities (z, n, y, x)."""
    if classes == 2:
        return (p > 0.5).astype(np.uint8)
    return np.argmax(p, axis=1).astype(np.uint8)


class BlockPredictor:
    """Probability of solid for z-blocks of a stack, with a network and its :class:`ModelConfig` (a model of
    n > 2 classes: the probability of every class, (z, n, y, x)).

    ``roi``: window size (in-plane for 2D/2.5D; z, y, x for 3D), rounded up to the U-Net's divisor;
    dimensions smaller than the window are padded (edge values) and cropped back. ``overlap``: fraction
    of a window shared with its neighbour. ``batch``: slices (2D/2.5D) per forward pass. ``tta``: test-time
    augmentation, the mean of P over the first ``tta`` of the 8 in-plane symmetries of the square (:data:`TTA_OPS`:
    4 rotations, then the same after a left-right flip), each undone before averaging; 1 = none. In-plane only: the
    slice direction is not a symmetry of a FIB-SEM stack (the beam sees below the face, not above it).
    """

    def __init__(self, net, cfg: ModelConfig, *, device: str = "cpu", roi: Sequence[int] | int | None = None,
                 overlap: float = 0.25, batch: int = 4, tta: int = 1):
        if not 0 <= overlap < 1:
            raise FibsynthError(f"must be in [0, 1) (got {overlap})", param="overlap")
        if batch < 1:
            raise FibsynthError(f"must be >= 1 (got {batch})", param="batch")
        if not 1 <= int(tta) <= len(TTA_OPS):
            raise FibsynthError(f"must be 1..{len(TTA_OPS)} (got {tta})", param="tta")
        self.net, self.cfg, self.device = net, cfg, torch_device(device)
        self.overlap, self.batch, self.tta = float(overlap), int(batch), int(tta)
        nd = cfg.spatial_dims
        if roi is None:
            roi = (512, 512) if nd == 2 else (64, 128, 128)
        roi = (int(roi),) * nd if np.isscalar(roi) else tuple(int(r) for r in roi)
        if len(roi) == 1:
            roi = roi * nd
        if len(roi) != nd or min(roi) < 1:
            raise FibsynthError(f"needs {nd} positive sizes for a {cfg.mode} model (got {roi})", param="roi")
        self.roi = tuple(_ceil_to(r, cfg.divisor) for r in roi)

    # ------------------------------------------------------------------------------- geometry
    def _win(self, n: int, r: int) -> tuple[int, int, list[int]]:
        """(window size, padded length, starts) along one axis of length ``n``."""
        w = min(r, _ceil_to(n, self.cfg.divisor))
        npad = max(n, w)
        step = max(1, int(w * (1 - self.overlap)))
        return w, npad, window_starts(npad, w, step)

    def z_windows(self, nz: int, z0: int, z1: int) -> tuple[int, list[int]]:
        """3D: window depth and the global window starts that touch output slices [z0, z1)."""
        w, _, starts = self._win(nz, self.roi[0])
        return w, [s for s in starts if s < z1 and s + w > z0]

    def input_range(self, nz: int, z0: int, z1: int) -> tuple[int, int]:
        """Global slices [a, b) to read for output slices [z0, z1)."""
        if self.cfg.mode == "3d":
            w, starts = self.z_windows(nz, z0, z1)
            return min(starts[0], nz), min(starts[-1] + w, nz)
        k = self.cfg.k if self.cfg.mode == "2.5d" else 0
        idx = neighbour_indices(np.array([z0, z1 - 1]), nz, k, self.cfg.edge)
        return int(idx.min()), int(idx.max()) + 1

    # ------------------------------------------------------------------------------- compute
    def _forward(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
            p = torch.softmax(self.net(t).float(), dim=1)
            p = p[:, 1] if self.cfg.classes == 2 else p  # binary: P(solid); n classes: (B, n, ...)
            return p.cpu().numpy()

    def _tiled(self, x: np.ndarray) -> np.ndarray:
        """Blended P(solid) for an input (B, C, *spatial) whose leading spatial axes are tiled in-plane only
        (y, x for 2D); for 3D the caller handles z and passes full-depth windows."""
        spatial = x.shape[2:]
        plane = spatial[-2:]
        geo = [self._win(n, r) for n, r in zip(plane, self.roi[-2:])]
        pads = [(0, g[1] - n) for g, n in zip(geo, plane)]
        if any(p[1] for p in pads):
            x = np.pad(x, [(0, 0)] * (x.ndim - 2) + pads, mode="edge")
        (wy, ny, sy), (wx, nx, sx) = geo
        lead = x.shape[2:-2]  # () for 2D, (wz,) for 3D
        if len(sy) == 1 and len(sx) == 1:
            return self._forward(x)[..., : plane[0], : plane[1]]
        g = gaussian_weight((wy, wx))
        cls = () if self.cfg.classes == 2 else (self.cfg.classes,)
        out = blend_2d(lambda w: self._forward(w[0])[None], x, sy, sx, (wy, wx), lambda y, xx: g,
                       out_lead=(x.shape[0],) + cls + lead)
        return out[..., : plane[0], : plane[1]]

    def predict_block(self, raw: np.ndarray, a: int, z0: int, z1: int, nz: int) -> np.ndarray:
        """P(solid) (z1-z0, y, x) from raw gray values ``raw`` (c, b-a, y, x) holding global slices [a, b)
        (averaged over ``tta`` in-plane symmetries)."""
        cfg = self.cfg
        if raw.shape[0] != cfg.n_energy:
            raise FibsynthError(f"model expects {cfg.n_energy} image channel(s), got {raw.shape[0]}")
        x = np.stack([normalise(raw[c], *cfg.norm[c]) for c in range(cfg.n_energy)])
        if self.tta == 1:
            return self._predict_normalised(x, a, z0, z1, nz)
        acc = None
        for rot, flip in TTA_OPS[: self.tta]:
            p = self._predict_normalised(np.ascontiguousarray(_dihedral(x, rot, flip)), a, z0, z1, nz)
            p = _dihedral_inverse(p, rot, flip)
            acc = p.astype(np.float32) if acc is None else acc + p
        return acc / np.float32(self.tta)

    def _predict_normalised(self, x: np.ndarray, a: int, z0: int, z1: int, nz: int) -> np.ndarray:
        cfg = self.cfg
        if cfg.mode == "3d":
            return self._block_3d(x, a, z0, z1, nz)
        cls = () if cfg.classes == 2 else (cfg.classes,)
        out = np.empty((z1 - z0,) + cls + x.shape[2:], np.float32)
        k = cfg.k if cfg.mode == "2.5d" else 0
        for s in range(z0, z1, self.batch):
            zs = list(range(s, min(s + self.batch, z1)))
            inp = stack_25d(x, zs, a, nz, k, cfg.edge) if k else np.ascontiguousarray(x[:, [z - a for z in zs]].transpose(1, 0, 2, 3))
            out[s - z0: s - z0 + len(zs)] = self._tiled(inp)
        return out

    def _block_3d(self, x: np.ndarray, a: int, z0: int, z1: int, nz: int) -> np.ndarray:
        w, starts = self.z_windows(nz, z0, z1)
        if nz < w:  # the whole stack is one window: pad it (edge) in z
            x = np.pad(x, [(0, 0), (0, w - nz), (0, 0), (0, 0)], mode="edge")
        gz = gaussian_weight((w,)) if len(window_starts(max(nz, w), w, max(1, int(w * (1 - self.overlap))))) > 1 else np.ones(w, np.float32)
        multi = self.cfg.classes > 2
        acc = np.zeros((z1 - z0,) + ((self.cfg.classes,) if multi else ()) + x.shape[2:], np.float32)
        wsum = np.zeros((z1 - z0,) + (1,) * (acc.ndim - 1), np.float32)
        for s in starts:
            p = self._tiled(x[None, :, s - a: s - a + w])[0]  # (w, y, x); n classes: (n, w, y, x)
            if multi:
                p = p.transpose(1, 0, 2, 3)
            lo, hi = max(s, z0), min(s + w, z1)
            gw = gz[lo - s: hi - s].reshape((-1,) + (1,) * (acc.ndim - 1))
            acc[lo - z0: hi - z0] += p[lo - s: hi - s] * gw
            wsum[lo - z0: hi - z0] += gw
        return acc / wsum


# ---------------------------------------------------------------------------------------------- TTA

#: in-plane symmetries of the square for test-time augmentation: (quarter turns in y-x, left-right flip first)
TTA_OPS: tuple[tuple[int, bool], ...] = tuple((r, f) for f in (False, True) for r in range(4))


def _dihedral(a: np.ndarray, rot: int, flip: bool) -> np.ndarray:
    """Flip (x) then rotate (y-x plane) the last two axes."""
    if flip:
        a = a[..., ::-1]
    return np.rot90(a, rot, axes=(-2, -1))


def _dihedral_inverse(a: np.ndarray, rot: int, flip: bool) -> np.ndarray:
    a = np.rot90(a, -rot, axes=(-2, -1))
    return a[..., ::-1] if flip else a


# ---------------------------------------------------------------------------------------------- API


def _as_channels(images) -> list:
    return list(images) if isinstance(images, (list, tuple)) else [images]


def predict_array(model: Any, images, *, block: int = 32, roi=None, overlap: float = 0.25, batch: int = 4,
                  device: str = "cpu", z_range: tuple[int, int] | None = None, probabilities: bool = False,
                  progress: Callable[[int, int], None] | None = None, tta: int = 1) -> np.ndarray:
    """Segment a stack held in memory or lazily (NumPy, dask or zarr arrays, one per energy channel).

    ``model``: a model folder or ``(net, cfg)``. Returns uint8 labels (1 = solid; a model of n classes: labels
    0..n-1, the most probable class) for the slices ``z_range`` (default all), computed block by block (``block``
    slices); with ``probabilities`` the float32 P(solid) instead (n classes: (z, n, y, x), every class).
    ``tta``: average over that many in-plane symmetries (:class:`BlockPredictor`).
    """
    net, cfg = load_model(model, device) if isinstance(model, (str, Path)) else model
    imgs = _as_channels(images)
    shape = tuple(imgs[0].shape)
    if any(tuple(i.shape) != shape for i in imgs):
        raise FibsynthError(f"image channels differ in shape: {[tuple(i.shape) for i in imgs]}")
    if len(shape) != 3:
        raise FibsynthError(f"expected a (z, y, x) stack, got shape {shape}")
    pred = BlockPredictor(net, cfg, device=device, roi=roi, overlap=overlap, batch=batch, tta=tta)
    nz = shape[0]
    z_lo, z_hi = z_range or (0, nz)
    if not 0 <= z_lo < z_hi <= nz:
        raise FibsynthError(f"z range {z_lo}:{z_hi} outside 0:{nz}")
    block = max(1, int(block))
    cls = (cfg.classes,) if probabilities and cfg.classes > 2 else ()
    out = np.empty((z_hi - z_lo,) + cls + shape[1:], np.float32 if probabilities else np.uint8)
    for z0 in range(z_lo, z_hi, block):
        z1 = min(z0 + block, z_hi)
        p = _run_block(pred, imgs, z0, z1, nz)
        out[z0 - z_lo: z1 - z_lo] = p if probabilities else to_labels(p, cfg.classes)
        if progress:
            progress(z1 - z_lo, z_hi - z_lo)
    return out


def _read(img, a: int, b: int) -> np.ndarray:
    part = img[a:b]
    if hasattr(part, "compute"):
        part = part.compute(scheduler="synchronous")
    return np.asarray(part)


def _run_block(pred: BlockPredictor, imgs: list, z0: int, z1: int, nz: int) -> np.ndarray:
    a, b = pred.input_range(nz, z0, z1)
    raw = np.stack([_read(i, a, b) for i in imgs])
    return pred.predict_block(raw, a, z0, z1, nz)


# ---------------------------------------------------------------------------------- dask workers

_WORKER_CACHE: dict = {}


def _block_task(model_dir: str, inputs: list[str], out_array: str, z0: int, z1: int, opts: dict) -> int:
    """Runs on a dask worker: predict output slices [z0, z1) and write them into the output Zarr array."""
    import torch
    import zarr

    from fibsynth.io import read_volume

    key = (model_dir, opts.get("device", "cpu"))
    if key not in _WORKER_CACHE:
        if opts.get("threads"):
            torch.set_num_threads(int(opts["threads"]))
        _WORKER_CACHE[key] = load_model(model_dir, opts.get("device", "cpu"))
    net, cfg = _WORKER_CACHE[key]
    imgs = [read_volume(p, lazy=True).data for p in inputs]
    pred = BlockPredictor(net, cfg, device=opts.get("device", "cpu"), roi=opts.get("roi"),
                          overlap=opts.get("overlap", 0.25), batch=opts.get("batch", 4))
    p = _run_block(pred, imgs, z0, z1, imgs[0].shape[0])
    zarr.open_array(out_array, mode="r+")[z0:z1] = to_labels(p, cfg.classes)
    return z1 - z0


def predict_file(model_dir: str | Path, inputs: Sequence[str | Path], out: str | Path, *, block: int = 32,
                 roi=None, overlap: float = 0.25, batch: int = 4, device: str = "cpu",
                 scheduler: str | None = None, workers: int | None = None, threads: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Segment the stack(s) ``inputs`` (one file per energy channel) into ``out`` (uint8, 1 = solid; a model of n
    classes writes labels 0..n-1).

    A ``.zarr`` output is written block by block (bounded memory); other formats are assembled in memory.
    ``scheduler`` (a dask scheduler address) or ``workers`` (a local cluster of that many processes)
    spread the blocks over dask workers; both need Zarr input and output.
    """
    from fibsynth.io import VolumeMeta, atomic_path, create_zarr, read_volume, volume_format, write_volume
    from fibsynth.io.metadata import Generator
    from fibsynth.io.volume import default_chunks

    model_dir = Path(model_dir)
    torch_device(device)
    net, cfg = load_model(model_dir, device)
    inputs = [Path(p) for p in inputs]
    if len(inputs) != cfg.n_energy:
        raise FibsynthError(
            f"model {model_dir} takes {cfg.n_energy} image channel(s) (energies {cfg.energies_kev}); got {len(inputs)} "
            "input(s): give the first as IN and the others with --channel, in training order"
        )
    vols = [read_volume(p, lazy=True) for p in inputs]
    shape = tuple(vols[0].data.shape)
    for p, v in zip(inputs, vols):
        if tuple(v.data.shape) != shape:
            raise FibsynthError(f"shape {tuple(v.data.shape)} differs from {shape} of {inputs[0]}", p)
    out = Path(out)
    distributed = bool(scheduler) or bool(workers)
    if distributed and (volume_format(out) != "zarr" or any(volume_format(p) != "zarr" for p in inputs)):
        raise FibsynthError("need Zarr input(s) and a .zarr output", param=("scheduler", "workers"))
    if workers is not None and workers < 1:
        raise FibsynthError(f"must be >= 1 (got {workers})", param="workers")
    if distributed:
        from fibsynth.distributed import check_options

        check_options(scheduler, workers)  # not both
    if block < 1:
        raise FibsynthError(f"must be >= 1 (got {block})", param="block")
    src_meta = vols[0].meta
    params = {
        "model_dir": str(model_dir.resolve()), "mode": cfg.mode, "k": cfg.k, "edge": cfg.edge,
        "n_energy": cfg.n_energy, "features": list(cfg.features), "norm": [list(n) for n in cfg.norm],
        **({"classes": cfg.classes} if cfg.classes > 2 else {}),
        "inputs": [str(p) for p in inputs], "roi": None, "overlap": overlap, "block": block,
        "training": {k: cfg.training.get(k) for k in ("best_epoch", "best_val_loss", "best_val_mds", "seed", "images")},
    }
    meta = VolumeMeta(kind="label", voxel_size_nm=src_meta.voxel_size_nm, generator=Generator.SEGMENTATION,
                      parameters=params, energy_kev=src_meta.energy_kev)
    pred = BlockPredictor(net, cfg, device=device, roi=roi, overlap=overlap, batch=batch)
    params["roi"] = list(pred.roi)
    meta = meta.with_updates(parameters=params)
    nz = shape[0]
    blocks = [(z0, min(z0 + block, nz)) for z0 in range(0, nz, block)]
    if volume_format(out) != "zarr":
        labels = predict_array((net, cfg), [v.data for v in vols], block=block, roi=roi, overlap=overlap,
                               batch=batch, device=device, progress=progress)
        write_volume(out, labels, meta)
        res = {"out": str(out), "shape": shape, "blocks": len(blocks), "solid_fraction": float(labels.mean())}
        if cfg.classes > 2:  # the mean of labels is no fraction: each phase's instead
            res.pop("solid_fraction")
            res["fractions"] = (np.bincount(labels.ravel(), minlength=cfg.classes) / labels.size).tolist()
        return res
    chunks = (block,) + default_chunks(shape)[1:]
    with atomic_path(out) as tmp:
        arr = create_zarr(tmp, shape, np.uint8, meta, chunks=chunks)
        if not distributed:
            imgs = [v.data for v in vols]
            for i, (z0, z1) in enumerate(blocks):
                arr[z0:z1] = to_labels(_run_block(pred, imgs, z0, z1, nz), cfg.classes)
                if progress:
                    progress(z1, nz)
        else:
            from distributed import as_completed

            from fibsynth.distributed import dask_client

            with dask_client(scheduler, workers) as client:
                opts = {"device": device, "roi": list(pred.roi), "overlap": overlap, "batch": batch,
                        "threads": threads or 1}
                # absolute paths: the workers of a remote cluster have their own working folder
                futs = [client.submit(_block_task, str(model_dir.resolve()), [str(p.resolve()) for p in inputs],
                                      str((tmp / "0").resolve()), z0, z1, opts, pure=False) for z0, z1 in blocks]
                done = 0
                for f in as_completed(futs):
                    done += f.result()
                    if progress:
                        progress(done, nz)
    import zarr

    if cfg.classes > 2:
        arr = zarr.open_group(str(out), mode="r")["0"]
        counts = sum(np.bincount(np.asarray(arr[z0:z1]).ravel(), minlength=cfg.classes) for z0, z1 in blocks)
        return {"out": str(out), "shape": shape, "blocks": len(blocks),
                "fractions": (counts / float(np.prod(shape))).tolist()}
    solid = float(np.mean([np.asarray(zarr.open_group(str(out), mode="r")["0"][z0:z1]).mean() * (z1 - z0)
                           for z0, z1 in blocks]) * len(blocks) / nz)
    return {"out": str(out), "shape": shape, "blocks": len(blocks), "solid_fraction": solid}
