"""Segmentation networks (MONAI U-Nets) and their on-disk form: ``model.pt`` (a ``state_dict``, loaded with
``torch.load(..., weights_only=True)``) plus ``config.json`` (architecture, input layout, normalisation and
the training record). Nothing is pickled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from fibsynth.config import StrictModel
from fibsynth.errors import FibsynthError
from fibsynth.io import atomic_path
from fibsynth.segment.data import in_channels, spatial_dims

MODEL_FILE = "model.pt"
CONFIG_FILE = "config.json"
FORMAT = "fibsynth-segment-1"


class ModelConfig(StrictModel):
    """Everything needed to rebuild a network and feed it the same inputs it was trained on."""

    format: str = FORMAT
    mode: Literal["2d", "2.5d", "3d"]
    k: int = Field(2, ge=0, le=16, description="2.5D: neighbouring slices on each side")
    edge: Literal["replicate", "reflect"] = "replicate"
    n_energy: int = Field(1, ge=1, le=16, description="images of the same stack (e.g. beam energies) as channels")
    features: tuple[int, ...] = (16, 32, 64, 128)
    num_res_units: int = Field(1, ge=0, le=4)
    patch: int = Field(64, ge=8)
    norm: list[tuple[float, float]] = Field(default_factory=list, description="(lo, hi) per energy channel")
    norm_percentiles: tuple[float, float] = (1.0, 99.0)
    energies_kev: list[float | None] = Field(default_factory=list)
    training: dict[str, Any] = Field(default_factory=dict)
    classes: int = Field(2, ge=2, le=255, description="output classes (phases): 2 = pore/solid, n = labels 0..n-1")

    @property
    def in_channels(self) -> int:
        return in_channels(self.mode, self.n_energy, self.k if self.mode == "2.5d" else 0)

    @property
    def spatial_dims(self) -> int:
        return spatial_dims(self.mode)

    @property
    def divisor(self) -> int:
        """Window sizes must be multiples of this (the U-Net's total downsampling)."""
        return 2 ** (len(self.features) - 1)


def build_net(cfg: ModelConfig):
    """A MONAI residual U-Net: ``cfg.classes`` output channels (2: pore, solid; n: phases 0..n-1; softmax over
    them), batch norm (so that eval-mode outputs do not depend on which other voxels share a window or a batch)."""
    from monai.networks.nets import UNet

    if len(cfg.features) < 2:
        raise FibsynthError("needs at least two levels, e.g. 16,32,64", param="features")
    return UNet(
        spatial_dims=cfg.spatial_dims,
        in_channels=cfg.in_channels,
        out_channels=cfg.classes,
        channels=tuple(cfg.features),
        strides=(2,) * (len(cfg.features) - 1),
        num_res_units=cfg.num_res_units,
        norm="batch",
    )


def save_model(model_dir: str | Path, net, cfg: ModelConfig) -> Path:
    """Write ``model.pt`` (state_dict) and ``config.json`` into ``model_dir`` (each atomically)."""
    from fibsynth.ml.checkpoint import save_weights

    d = Path(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    save_weights(d / MODEL_FILE, net.state_dict())
    with atomic_path(d / CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps(cfg.model_dump(mode="json"), indent=1) + "\n")
    return d


def load_config(model_dir: str | Path) -> ModelConfig:
    d = Path(model_dir)
    cpath = d / CONFIG_FILE
    if not d.is_dir():
        raise FibsynthError("model folder not found", d)
    if not cpath.is_file():
        raise FibsynthError(f"not a segmentation model folder (no {CONFIG_FILE})", d)
    try:
        data = json.loads(cpath.read_text())
    except json.JSONDecodeError as exc:
        raise FibsynthError(f"invalid JSON ({exc.msg})", cpath) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise FibsynthError(f"cannot read ({str(exc).splitlines()[0][:120]})", cpath) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise FibsynthError(f"unknown model format {data.get('format') if isinstance(data, dict) else None!r}", cpath)
    return ModelConfig.build(cpath, **data)


def load_model(model_dir: str | Path, device: str = "cpu"):
    """(net in eval mode on ``device``, ModelConfig); weights read weights-only, any unreadable file refused in
    one line."""
    from fibsynth.ml.checkpoint import load_into, load_weights
    from fibsynth.ml.runtime import torch_device

    dev = torch_device(device)
    cfg = load_config(model_dir)
    mpath = Path(model_dir) / MODEL_FILE
    if not mpath.is_file():
        raise FibsynthError(f"no {MODEL_FILE}", model_dir)
    net = build_net(cfg)
    load_into(net, load_weights(mpath), mpath, f"the network in {CONFIG_FILE}")
    return net.to(dev).eval(), cfg
