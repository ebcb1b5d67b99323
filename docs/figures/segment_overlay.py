"""Figure for docs/segment.md: one slice of a toy shine-through stack segmented by Otsu, k-means and a small
2.5D U-Net, with the errors against ground truth coloured. Also prints the scores as a Markdown table.

    .venv/bin/python docs/figures/segment_overlay.py   # writes docs/figures/segment_overlay.png

Data: fibsynth.segment.toy (a cheap imitation, not physics): a 40 x 96 x 96 training stack (last 25 % of
slices held out for validation) and a separate 24 x 96 x 96 test stack. Model: 2.5D, k = 2, U-Net 8-16-32,
patches 32 at stride 16, batch 32, Dice loss, Adam lr 3e-3 (higher than the paper's 1e-4, to converge in
12 epochs), seed 0.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fibsynth.config import VoxelSize  # noqa: E402
from fibsynth.io import VolumeMeta, write_volume  # noqa: E402
from fibsynth.metrics import evaluate_segmentation  # noqa: E402
from fibsynth.segment import predict_array  # noqa: E402
from fibsynth.segment.baseline import kmeans_threshold, otsu_threshold  # noqa: E402
from fibsynth.segment.tables import to_markdown  # noqa: E402
from fibsynth.segment.toy import toy_image, toy_structure  # noqa: E402
from fibsynth.segment.train import TrainSettings, train  # noqa: E402

OUT = Path(__file__).with_name("segment_overlay.png")
VOXEL = VoxelSize(x=5.0, y=5.0, z=10.0)


def overlay(ax, img, pred, truth, title):
    ax.imshow(img, cmap="gray", vmin=np.percentile(img, 1), vmax=np.percentile(img, 99))
    rgba = np.zeros(img.shape + (4,))
    fp = (pred == 1) & (truth == 0)
    fn = (pred == 0) & (truth == 1)
    rgba[fp] = (1.0, 0.1, 0.1, 0.75)  # epoxy called gold (shine-through)
    rgba[fn] = (0.1, 0.5, 1.0, 0.75)  # gold called epoxy
    ax.imshow(rgba)
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def main() -> None:
    s_tr = toy_structure((40, 96, 96), seed=1)
    i_tr = toy_image(s_tr, seed=1001)
    s_te = toy_structure((24, 96, 96), seed=5)
    i_te = toy_image(s_te, seed=1005)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        write_volume(d / "img.tif", i_tr, VolumeMeta(kind="image", voxel_size_nm=VOXEL))
        write_volume(d / "lbl.tif", s_tr, VolumeMeta(kind="structure", voxel_size_nm=VOXEL))
        st = TrainSettings(mode="2.5d", k=2, features=(8, 16, 32), num_res_units=1, patch=32, stride=16, batch=32,
                           epochs=12, lr=3e-3, val_fraction=0.25, seed=0)
        rec = train([d / "img.tif"], [d / "lbl.tif"], d / "model", st, verbose=True)
        net = predict_array(d / "model", i_te)
    otsu = (i_te > otsu_threshold(i_te)).astype(np.uint8)
    km = (i_te > kmeans_threshold(i_te)[0]).astype(np.uint8)
    rows = []
    for name, p in (("Otsu", otsu), ("k-means (k=2)", km), ("2.5D U-Net", net)):
        r = evaluate_segmentation(p, s_te)
        rows.append({"name": name, **{k: float(r[k]) for k in ("MP", "MGP", "MDS")}})
    print(to_markdown(rows))
    print(f"training: {rec['epochs_run']} epochs, best epoch {rec['best_epoch']}, val MDS {rec['best_val_mds']:.4f}")
    z = 12
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
    axes[0].imshow(i_te[z], cmap="gray")
    axes[0].set_title(f"toy image, slice {z}", fontsize=9)
    axes[0].set_axis_off()
    for ax, (name, p), r in zip(axes[1:], (("Otsu", otsu), ("k-means", km), ("2.5D U-Net", net)), rows):
        overlay(ax, i_te[z], p[z], s_te[z], f"{name}: MDS {r['MDS']:.3f} (stack)")
    fig.suptitle("red: epoxy segmented as gold (shine-through), blue: gold segmented as epoxy", fontsize=9)
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
