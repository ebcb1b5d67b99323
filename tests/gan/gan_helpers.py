"""Tiny models and toy domains for the GAN tests (fast on 2 shared CPU cores)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def toy_domains(n=4, size=64, seed=0):
    """A: smooth random float32 textures; B: the same kind of texture inverted, squared and stored as uint16
    (a different contrast curve and bit depth). Drawn independently: the pair is unpaired."""
    rng = np.random.default_rng(seed)
    a = ndi.gaussian_filter(rng.random((n, size, size)), (0, 2.5, 2.5))
    a = ((a - a.mean()) / a.std()).astype(np.float32)
    b0 = ndi.gaussian_filter(rng.random((n, size, size)), (0, 2.5, 2.5))
    b0 = (b0 - b0.min()) / np.ptp(b0)
    b = ((1 - b0) ** 2 * 50000 + 1000).astype(np.uint16)
    return a, b


def random_model(directory, norm="none", depth=2, ch=4, scale=0.3, seed=0, noise_channels=0):
    """A model directory holding a randomly initialised generator with *non-zero* residual branches (so the
    network is a nontrivial deep function) and identity intensity maps on [-1, 1]."""
    import torch

    from fibsynth.gan.model import Architecture, Intensity, ModelConfig, make_generator, save_generators

    torch.manual_seed(seed)
    arch = Architecture(gen_channels=ch, gen_depth=depth, gen_norm=norm, disc_channels=4, noise_channels=noise_channels)
    g = make_generator(arch)
    with torch.no_grad():
        for name, p in g.named_parameters():
            if p.ndim == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                p.copy_(torch.randn_like(p) * scale * (2.0 / fan_in) ** 0.5 * 2)
    if norm == "batch":  # give the running statistics non-trivial values
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    dom = Intensity(lo=[-1.0], hi=[1.0], dtype="float32")
    cfg = ModelConfig(architecture=arch, source=dom, target=dom)
    save_generators(directory, cfg, g)
    return directory
