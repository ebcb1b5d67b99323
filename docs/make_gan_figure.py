"""Figure of docs/gan.md from the outputs of benchmarks/bench_gan.py:

    .venv/bin/python benchmarks/bench_gan.py --out /tmp/bench_gan
    .venv/bin/python docs/make_gan_figure.py /tmp/bench_gan

Row 1: projection | translated (CycleGAN) | Monte Carlo (one slice of the held-out structure, 2 keV gold/epoxy).
Row 2: source (Monte Carlo of that slice) | translated | the stand-in "real" image of the same slice (domain
adaptation; the model never saw this structure).
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

src = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench_gan")
out = Path(__file__).resolve().parent / "figures" / "gan_translation.png"
a, b = np.load(src / "figure_a.npz"), np.load(src / "figure_b.npz")
rows = [("projection", a["proj"]), ("projection -> MC (CycleGAN)", a["fake"]), ("Monte Carlo (2 keV)", a["mc"]),
        ("source: Monte Carlo", b["src"]), ("source -> target (CycleGAN)", b["fake"]),
        ("stand-in 'real' target\n(same held-out slice)", b["tgt"])]
fig, axes = plt.subplots(2, 3, figsize=(9, 6.3))
for ax, (title, img) in zip(axes.ravel(), rows):
    lo, hi = np.percentile(img, (0.5, 99.5))
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()
out.parent.mkdir(exist_ok=True)
fig.savefig(out, dpi=110)
print("wrote", out)
