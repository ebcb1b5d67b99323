"""Tiled inference of a generator on whole slices and stacks of any size, with bounded memory.

The blending and accumulation are :mod:`fibsynth.ml.tiling`'s (shared with the segmentation predictor). A slice is
reflect-padded so that it is covered by tiles of ``tile`` pixels at a step of ``tile - overlap``
with every tile origin on the generator's ``2**depth`` grid (so each tile sees the same downsampling phase as
a single pass over the whole slice would). Tile outputs are blended with separable raised-cosine (Hann)
ramps over the overlap, weight 1 elsewhere; the weights of overlapping tiles sum to 1 without a constant
plateau jump, so there are no seams. With the default normalisation-free generator (see
:mod:`fibsynth.gan.networks`) overlapping tiles compute the same function of the same pixels and differ only
by their own border effects, which the ramps down-weight.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fibsynth.errors import FibsynthError
from fibsynth.ml.runtime import check_threads, torch_device, torch_threads
from fibsynth.ml.tiling import blend_2d, grid_starts, hann_ramp


def _ramp(tile: int, overlap: int, lead: bool, trail: bool) -> np.ndarray:
    """1-D blending weight: raised cosine over the overlap on sides that meet another tile."""
    return hann_ramp(tile, overlap, lead, trail)


def plan(shape: tuple[int, int], tile: int, overlap: int, multiple: int) -> tuple[int, int, int, int, int]:
    """(tile, overlap, step, padded_h, padded_w) for an image of ``shape``."""
    h, w = shape
    if tile < 2 * multiple or tile % multiple:
        raise FibsynthError(f"must be a multiple of {multiple} and >= {2 * multiple} (got {tile})", param="tile")
    if not (0 <= overlap < tile) or overlap % multiple:
        raise FibsynthError(f"must be a multiple of {multiple} in [0, tile) (got {overlap})", param="overlap")
    if h <= tile and w <= tile:  # fits in one tile: a single pass on the slice padded to the next multiple
        th = max(2 * multiple, multiple * int(np.ceil(h / multiple)))
        tw = max(2 * multiple, multiple * int(np.ceil(w / multiple)))
        return tile, 0, tile, th, tw
    step = tile - overlap
    ph = tile + step * int(np.ceil(max(h - tile, 0) / step))
    pw = tile + step * int(np.ceil(max(w - tile, 0) / step))
    return tile, overlap, step, ph, pw


def translate_image(fn: Callable, image: np.ndarray, *, multiple: int, tile: int = 512, overlap: int = 128,
                    batch: int = 4, out_channels: int = 1) -> np.ndarray:
    """Apply ``fn`` (a batch (n, c, t, t) float32 array -> (n, out_channels, t, t)) to ``image`` (c, h, w) in
    normalised units, tile by tile. Returns (out_channels, h, w) float32."""
    c, h, w = image.shape
    t, ov, step, ph, pw = plan((h, w), tile, overlap, multiple)
    if ov == 0 and ph <= t and pw <= t:  # one pass, no blending
        padded = np.pad(image, ((0, 0), (0, ph - h), (0, pw - w)), mode="reflect" if min(h, w) > 1 else "edge")
        return fn(padded[None])[0, :, :h, :w]
    padded = np.pad(image, ((0, 0), (0, ph - h), (0, pw - w)), mode="reflect" if min(h, w) > 1 else "edge")

    def weight(y: int, x: int) -> np.ndarray:
        return np.outer(_ramp(t, ov, y > 0, y + t < ph), _ramp(t, ov, x > 0, x + t < pw)).astype(np.float32)

    out = blend_2d(fn, padded, grid_starts(ph, t, step), grid_starts(pw, t, step), (t, t), weight, batch=batch,
                   out_lead=(out_channels,))
    return out[:, :h, :w]


class Translator:
    """A loaded generator with its intensity maps; ``__call__`` translates a 2-D image, a (z, y, x) stack, or a
    list of stacks (one per input channel)."""

    def __init__(self, model, direction: str = "ab", device: str | None = None, tile: int = 512, overlap: int = 128,
                 batch: int = 4, threads: int | None = None, seed: int = 0):
        from fibsynth.gan.model import load_generator

        # validate every setting once, before the model is read (one-line errors naming the parameter)
        if direction not in ("ab", "ba"):
            raise FibsynthError(f"must be 'ab' or 'ba' (got {direction!r})", param="direction")
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or not 1 <= batch <= 4096:
            raise FibsynthError(f"must be a whole number in [1, 4096] (got {batch!r})", param="batch")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
            raise FibsynthError(f"must be a whole number in [0, 2^63) (got {seed!r})", param="seed")
        self.threads = check_threads(threads)
        self.device = torch_device(device)
        self.gen, self.cfg = load_generator(model, direction)
        self.src, self.dst = (self.cfg.source, self.cfg.target) if direction == "ab" else (self.cfg.target, self.cfg.source)
        self.multiple = self.gen.multiple
        plan((1, 1), int(tile), int(overlap), self.multiple)  # checks tile and overlap against the generator
        self.gen.to(self.device)
        self.tile, self.overlap, self.batch = int(tile), int(overlap), int(batch)
        self.noise_channels = int(self.cfg.architecture.noise_channels)
        self.seed = int(seed)

    @property
    def in_channels(self) -> int:
        return len(self.src.lo)

    def _fn(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode(), torch_threads(self.threads):
            y = self.gen(torch.from_numpy(np.ascontiguousarray(x)).to(self.device))
        return y.float().cpu().numpy()

    def translate_unit(self, image: np.ndarray) -> np.ndarray:
        """(c, h, w) normalised -> (out, h, w) normalised."""
        return translate_image(self._fn, image, multiple=self.multiple, tile=self.tile, overlap=self.overlap,
                               batch=self.batch, out_channels=len(self.dst.lo))

    def noise(self, index: int, shape: tuple[int, int]) -> np.ndarray:
        """The generator's noise input for slice ``index``: N(0, 1), (noise_channels, h, w), drawn from
        (seed, index) for the whole slice before tiling, so tiles share it and a rerun reproduces it."""
        rng = np.random.default_rng([self.seed, int(index)])
        return rng.standard_normal((self.noise_channels, *shape), dtype=np.float32)

    def slice(self, channels: list[np.ndarray], dtype: str | None = None, index: int = 0) -> list[np.ndarray]:
        """Translate one slice given as a list of (h, w) images (one per input channel); ``index`` (its slice
        number) seeds the noise input of models that have one."""
        from fibsynth.gan.model import from_unit, to_unit

        x = np.stack([to_unit(im, self.src, k) for k, im in enumerate(channels)]).astype(np.float32)
        if self.noise_channels:
            x = np.concatenate([x, self.noise(index, x.shape[1:])])
        y = self.translate_unit(x)
        return [from_unit(y[k], self.dst, k, dtype) for k in range(y.shape[0])]

    def __call__(self, data, dtype: str | None = None, progress: bool = False, out=None) -> list[np.ndarray]:
        """Translate ``data``: an (h, w) image, a (z, h, w) stack, or a list of stacks (input channels). Returns a
        list (one per output channel) of arrays shaped like one input channel (or fills ``out``, a list of
        writable arrays, slice by slice, e.g. Zarr arrays for stacks larger than memory)."""
        stacks = list(data) if isinstance(data, (list, tuple)) else [data]
        if len(stacks) != self.in_channels:
            raise FibsynthError(f"the model expects {self.in_channels} input channel(s), got {len(stacks)}", param="data")
        two_d = stacks[0].ndim == 2
        stacks = [s[None] if s.ndim == 2 else s for s in stacks]
        shape = stacks[0].shape
        if any(s.shape != shape for s in stacks) or len(shape) != 3:
            raise FibsynthError(f"input channels must be (z, y, x) stacks of one shape (got {[s.shape for s in stacks]})",
                                param="data")
        if dtype is not None and dtype not in ("uint8", "uint16", "float32"):
            raise FibsynthError(f"must be uint8, uint16 or float32 (got {dtype!r})", param="dtype")
        dt = dtype or self.dst.dtype
        if out is None:
            out = [np.empty(shape, dt) for _ in self.dst.lo]
        rng = range(shape[0])
        if progress:
            from rich.progress import track

            rng = track(rng, description="translating", transient=True)
        for z in rng:
            ys = self.slice([np.asarray(s[z]) for s in stacks], dt, index=z)
            for o, y in zip(out, ys):
                o[z] = y
        return [o[0] for o in out] if two_d and isinstance(out[0], np.ndarray) else out


def translate(model, data, *, direction: str = "ab", device: str | None = None, tile: int = 512, overlap: int = 128,
              batch: int = 4, dtype: str | None = None, seed: int = 0, threads: int | None = None,
              ) -> np.ndarray | list[np.ndarray]:
    """Translate ``data`` ((h, w), (z, h, w), or a list of stacks for several input channels) with ``model`` (a
    model directory or shipped model name). One output channel: the array; several: a list. ``seed``: the noise
    input of models that have one (slice z gets the noise of (seed, z))."""
    tr = Translator(model, direction, device, tile, overlap, batch, threads=threads, seed=seed)
    res = tr(data, dtype)
    return res[0] if len(res) == 1 else res
