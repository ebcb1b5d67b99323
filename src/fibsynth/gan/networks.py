"""CycleGAN networks: a residual U-Net generator with resize-convolution upsampling and a PatchGAN discriminator.

Generator normalisation (``norm``):

* ``"none"`` (default): no normalisation layer. Each residual branch ends in a zero-initialised convolution
  (Fixup/SkipInit style), so every block starts as the identity and training is stable without normalisation.
  The generator is then the *same* function in training and inference, translation-equivariant up to the
  zero padding at the image border: tiles of a large image agree with each other and with a single pass in
  their interiors, which is what seam-free tiled inference needs.
* ``"batch"``: BatchNorm; in ``eval()`` it uses running statistics (a fixed per-channel affine map), so tiles
  also agree at inference, but with batch 1 the training-time statistics are per-patch (= instance norm) and
  differ from the running ones (a train/inference gap).
* ``"instance"``: InstanceNorm (classic CycleGAN). Statistics are computed per tile at inference, so tiles of
  one image disagree in brightness; kept only to demonstrate (tests/gan) why it is not the default.

The discriminator is used only in training, on whole patches, so it keeps InstanceNorm as in CycleGAN.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

NORMS = ("none", "batch", "instance")


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "none":
        return nn.Identity()
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "instance":
        return nn.InstanceNorm2d(ch, affine=True)
    raise ValueError(f"unknown norm {kind!r}")


class ResBlock(nn.Module):
    """x + conv(act(norm(conv(act(norm(x)))))); the branch's last conv starts at zero (block = identity)."""

    def __init__(self, ch: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            _norm(norm, ch), nn.LeakyReLU(0.2), nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"),
            _norm(norm, ch), nn.LeakyReLU(0.2), nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect"),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Down(nn.Module):
    """Anti-aliased 2x downsampling (average pool) + conv, then residual blocks."""

    def __init__(self, cin: int, cout: int, norm: str, blocks: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")
        self.blocks = nn.Sequential(*[ResBlock(cout, norm) for _ in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.conv(F.avg_pool2d(x, 2)))


class Up(nn.Module):
    """Resize-convolution: 2x upsampling (bilinear, or nearest as in models made before the option existed) + 3x3
    conv (no transposed conv, so no checkerboard), then the skip connection is concatenated, fused by a 1x1 conv,
    and refined by residual blocks. Bilinear: nearest-neighbour copies leave a period-2 grid that the learned
    convolutions can turn into visible stripes (measured in docs/gan.md)."""

    def __init__(self, cin: int, cskip: int, cout: int, norm: str, blocks: int, upsample: str = "nearest"):
        super().__init__()
        self.mode = upsample
        self.up = nn.Conv2d(cin, cout, 3, padding=1, padding_mode="reflect")
        self.fuse = nn.Conv2d(cout + cskip, cout, 1)
        self.blocks = nn.Sequential(*[ResBlock(cout, norm) for _ in range(blocks)])

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if self.mode == "nearest":
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = self.up(x)
        return self.blocks(self.fuse(torch.cat([x, skip], 1)))


class UNetGenerator(nn.Module):
    """Residual U-Net: ``depth`` 2x levels, ``ch * 2**level`` channels (capped at ``ch * 8``), ``blocks`` residual
    blocks per level. Input and output are in [-1, 1] (tanh). Spatial sizes must be multiples of ``2**depth``."""

    def __init__(self, in_ch: int = 1, out_ch: int = 1, ch: int = 32, depth: int = 3, blocks: int = 1,
                 norm: str = "none", upsample: str = "nearest"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}")
        if upsample not in ("nearest", "bilinear"):
            raise ValueError(f"unknown upsampling {upsample!r}")
        self.depth = depth
        widths = [ch * min(2**i, 8) for i in range(depth + 1)]
        self.stem = nn.Sequential(nn.Conv2d(in_ch, ch, 3, padding=1, padding_mode="reflect"),
                                  *[ResBlock(ch, norm) for _ in range(blocks)])
        self.downs = nn.ModuleList([Down(widths[i], widths[i + 1], norm, blocks) for i in range(depth)])
        self.mid = nn.Sequential(*[ResBlock(widths[-1], norm) for _ in range(blocks)])
        self.ups = nn.ModuleList([Up(widths[i + 1], widths[i], widths[i], norm, blocks, upsample) for i in reversed(range(depth))])
        self.head = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(ch, out_ch, 3, padding=1, padding_mode="reflect"))

    @property
    def multiple(self) -> int:
        return 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = self.stem(x)
        for d in self.downs:
            skips.append(h)
            h = d(h)
        h = self.mid(h)
        for u in self.ups:
            h = u(h, skips.pop())
        return torch.tanh(self.head(h))


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix/CycleGAN 70x70): C(ndf)-C(2ndf)-C(4ndf) stride 2, C(8ndf) stride 1, 1-channel map.
    ``layers=3`` gives the 70x70 receptive field; each output scores one overlapping patch."""

    def __init__(self, in_ch: int = 1, ndf: int = 64, layers: int = 3):
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_ch, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = ndf
        for i in range(1, layers):
            c2 = ndf * min(2**i, 8)
            seq += [nn.Conv2d(c, c2, 4, 2, 1), nn.InstanceNorm2d(c2, affine=True), nn.LeakyReLU(0.2)]
            c = c2
        c2 = ndf * min(2**layers, 8)
        seq += [nn.Conv2d(c, c2, 4, 1, 1), nn.InstanceNorm2d(c2, affine=True), nn.LeakyReLU(0.2),
                nn.Conv2d(c2, 1, 4, 1, 1)]
        self.net = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def receptive_field(layers: int = 3) -> int:
    """Receptive field (pixels) of :class:`PatchDiscriminator` with ``layers`` stride-2 layers."""
    rf = 1
    for k, s in reversed([(4, 2)] * layers + [(4, 1), (4, 1)]):
        rf = (rf - 1) * s + k
    return rf
