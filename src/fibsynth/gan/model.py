"""A trained translation model on disk: ``config.json`` (architecture, intensity normalisation of both domains,
training record) plus generator ``state_dict``s (``generator_ab.pt``, optionally ``generator_ba.pt``).

Weights are loaded with ``torch.load(..., weights_only=True)``: a file holding pickled code (or anything that is
not a plain tensor dictionary) is refused with a one-line :class:`FibsynthError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from fibsynth.config import StrictModel
from fibsynth.errors import FibsynthError

CONFIG = "config.json"
WEIGHTS = {"ab": "generator_ab.pt", "ba": "generator_ba.pt"}
SHIPPED = Path(__file__).resolve().parent / "models"
FORMAT = "fibsynth-cyclegan-1"


class Architecture(StrictModel):
    in_channels: int = Field(1, ge=1, le=16)
    out_channels: int = Field(1, ge=1, le=16)
    gen_channels: int = Field(32, ge=1, le=256, description="generator base width")
    gen_depth: int = Field(3, ge=1, le=6, description="generator 2x levels")
    gen_blocks: int = Field(1, ge=1, le=8, description="residual blocks per level")
    gen_norm: Literal["none", "batch", "instance"] = "none"
    gen_upsample: Literal["nearest", "bilinear"] = Field("bilinear", description="2x upsampling of the "
                                                         "resize-convolutions")
    disc_channels: int = Field(64, ge=1, le=256)
    disc_layers: int = Field(3, ge=1, le=5)
    noise_channels: int = Field(1, ge=0, le=4, description="extra N(0, 1) per-pixel input channels of the generators: "
                                "a source of randomness for stochastic texture (shot noise), which a deterministic "
                                "generator can only fake with periodic patterns; 0 = none")


class Intensity(StrictModel):
    """Robust linear map of one domain to [-1, 1]: ``lo``/``hi`` are per-channel percentiles of the training
    stack; ``dtype`` is the stack's data type (translated images are written in the target's range and type)."""

    lo: list[float]
    hi: list[float]
    dtype: Literal["uint8", "uint16", "float32"]
    percentiles: tuple[float, float] = (0.1, 99.9)


class ModelConfig(StrictModel):
    format: Literal["fibsynth-cyclegan-1"] = FORMAT
    architecture: Architecture = Field(default_factory=Architecture)
    source: Intensity
    target: Intensity
    training: dict[str, Any] = Field(default_factory=dict)

    def save(self, directory: Path) -> None:
        from fibsynth.io import atomic_path

        with atomic_path(Path(directory) / CONFIG) as tmp:
            tmp.write_text(json.dumps(self.model_dump(mode="json"), indent=1))


def make_generator(arch: Architecture, direction: str = "ab"):
    from fibsynth.gan.networks import UNetGenerator

    cin, cout = (arch.in_channels, arch.out_channels) if direction == "ab" else (arch.out_channels, arch.in_channels)
    return UNetGenerator(cin + arch.noise_channels, cout, arch.gen_channels, arch.gen_depth, arch.gen_blocks, arch.gen_norm,
                         arch.gen_upsample)


def make_discriminator(arch: Architecture, channels: int):
    from fibsynth.gan.networks import PatchDiscriminator

    return PatchDiscriminator(channels, arch.disc_channels, arch.disc_layers)


def shipped_models() -> list[str]:
    return sorted(p.name for p in SHIPPED.iterdir() if (p / CONFIG).is_file()) if SHIPPED.is_dir() else []


def resolve(model: str | Path) -> Path:
    """A model directory, or the name of a shipped model."""
    p = Path(model)
    if p.is_dir():
        return p
    if (SHIPPED / str(model) / CONFIG).is_file() and "/" not in str(model):
        return SHIPPED / str(model)
    names = ", ".join(shipped_models()) or "none"
    raise FibsynthError(f"not a model directory or a shipped model name (shipped: {names})", model)


def read_config(directory: Path) -> ModelConfig:
    f = Path(directory) / CONFIG
    if not f.is_file():
        raise FibsynthError(f"no {CONFIG}: not a fibsynth GAN model directory", directory)
    try:
        data = json.loads(f.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise FibsynthError(f"not valid JSON ({str(exc).splitlines()[0]})", f) from None
    if not isinstance(data, dict):
        raise FibsynthError("expected a JSON object", f)
    if isinstance(data.get("architecture"), dict):
        data["architecture"].setdefault("noise_channels", 0)  # models written before noise inputs existed
        data["architecture"].setdefault("gen_upsample", "nearest")  # ... and before bilinear upsampling
    if data.get("format") != FORMAT:
        raise FibsynthError(f"unknown model format {data.get('format')!r} (expected {FORMAT!r})", f)
    from pydantic import ValidationError

    from fibsynth.errors import pydantic_error_line

    try:
        cfg = ModelConfig.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error_line(exc, f) from None
    for dom in (cfg.source, cfg.target):
        if len(dom.lo) != len(dom.hi) or not all(h > l for l, h in zip(dom.lo, dom.hi)):
            raise FibsynthError("intensity percentiles must satisfy hi > lo per channel", f)
    if len(cfg.source.lo) != cfg.architecture.in_channels or len(cfg.target.lo) != cfg.architecture.out_channels:
        raise FibsynthError("intensity percentiles do not match the number of channels", f)
    return cfg


def load_state(path: Path) -> dict:
    """``torch.load(weights_only=True)`` with one-line errors; only a flat ``{name: tensor}`` dict is accepted
    (:func:`fibsynth.ml.checkpoint.load_weights`)."""
    from fibsynth.ml.checkpoint import load_weights

    return load_weights(path)


def load_generator(directory: str | Path, direction: str = "ab"):
    """(generator in eval mode, config) from a model directory or shipped model name."""
    from fibsynth.ml.checkpoint import load_into

    if direction not in WEIGHTS:
        raise FibsynthError(f"must be 'ab' or 'ba' (got {direction!r})", param="direction")
    d = resolve(directory)
    cfg = read_config(d)
    gen = make_generator(cfg.architecture, direction)
    path = d / WEIGHTS[direction]
    load_into(gen, load_state(path), path, f"the architecture in {CONFIG}")
    gen.eval()
    return gen, cfg


def save_generators(directory: Path, cfg: ModelConfig, gen_ab, gen_ba=None) -> None:
    from fibsynth.ml.checkpoint import save_weights

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for key, g in (("ab", gen_ab), ("ba", gen_ba)):
        if g is not None:
            save_weights(directory / WEIGHTS[key], g.state_dict())
    cfg.save(directory)


# ---------------------------------------------------------------- intensity normalisation

_DTYPES = {"uint8", "uint16", "float32"}


def dtype_name(dtype: Any) -> str:
    dt = np.dtype(dtype)
    if dt == np.uint8 or dt == bool:
        return "uint8"
    if dt == np.uint16:
        return "uint16"
    return "float32"


def measure_intensity(stacks: list, percentiles: tuple[float, float] = (0.1, 99.9), max_values: int = 4_000_000,
                      source: str | None = None) -> Intensity:
    """Per-channel percentiles of a list of (z, y, x) stacks (one per channel), from a strided subsample."""
    lo, hi = [], []
    for k, s in enumerate(stacks):
        step = max(1, int(np.ceil(s.shape[0] * s.shape[1] * s.shape[2] / max_values)))
        zs = np.arange(0, s.shape[0], max(1, int(round(step ** (1 / 3)))))
        sample = np.asarray(s[zs], dtype=np.float64).ravel()
        sample = sample[:: max(1, sample.size // max_values)]
        a, b = np.percentile(sample, percentiles)
        if not b > a:
            raise FibsynthError(f"channel {k} has no contrast (percentiles {percentiles} both {a:g})", source)
        lo.append(float(a))
        hi.append(float(b))
    return Intensity(lo=lo, hi=hi, dtype=dtype_name(stacks[0].dtype), percentiles=percentiles)


def to_unit(x: np.ndarray, dom: Intensity, channel: int = 0) -> np.ndarray:
    """Map intensities to [-1, 1] (percentile range), clipped."""
    lo, hi = dom.lo[channel], dom.hi[channel]
    y = (np.asarray(x, np.float32) - np.float32(lo)) * np.float32(2.0 / (hi - lo)) - np.float32(1.0)
    return np.clip(y, -1.0, 1.0, out=y)


def from_unit(y: np.ndarray, dom: Intensity, channel: int = 0, dtype: str | None = None) -> np.ndarray:
    """Inverse of :func:`to_unit`, rounded and clipped into ``dtype`` (default: the domain's)."""
    lo, hi = dom.lo[channel], dom.hi[channel]
    x = (np.asarray(y, np.float32) + np.float32(1.0)) * np.float32((hi - lo) / 2.0) + np.float32(lo)
    dt = dtype or dom.dtype
    if dt == "float32":
        return x.astype(np.float32, copy=False)
    info = np.iinfo(dt)
    return np.clip(np.rint(x), info.min, info.max).astype(dt)
