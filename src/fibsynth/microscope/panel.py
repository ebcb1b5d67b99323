"""Before/after report panel for the microscope stage (embeddable in any fibsynth HTML report)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _plane(stack: np.ndarray, k: int | None) -> np.ndarray:
    a = np.asarray(stack)
    if a.ndim == 2:
        return a
    return a[a.shape[0] // 2 if k is None else k]


def before_after_figure(before: Any, after: Any, *, slice_index: int | None = None,
                        titles: tuple[str, str] = ("before", "after"), title: str | None = None):
    """A matplotlib figure: one slice before and after (same gray scale, from the 1-99 % range of ``before``),
    their column-mean profiles (curtain stripes show as wiggles) and gray-value histograms."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    b, a = _plane(before, slice_index).astype(np.float64), _plane(after, slice_index).astype(np.float64)
    lo, hi = np.percentile(b, [1, 99])
    lo2, hi2 = np.percentile(a, [1, 99])
    fig, ax = plt.subplots(2, 2, figsize=(9, 7.5), gridspec_kw={"height_ratios": [3, 1.4]})
    ax[0, 0].imshow(b, cmap="gray", vmin=lo, vmax=hi)
    ax[0, 1].imshow(a, cmap="gray", vmin=lo2, vmax=hi2)
    for i, t in enumerate(titles):
        ax[0, i].set_title(t)
        ax[0, i].set_xticks([])
        ax[0, i].set_yticks([])
    for img, t in ((b, titles[0]), (a, titles[1])):
        prof = img.mean(0)
        ax[1, 0].plot((prof - prof.mean()) / max(img.std(), 1e-12), lw=0.8, label=t)
        ax[1, 1].hist(((img - img.mean()) / max(img.std(), 1e-12)).ravel(), bins=100, histtype="step", label=t)
    ax[1, 0].set_title("column means (curtains), in std units", fontsize=9)
    ax[1, 0].set_xlabel("x (px)")
    ax[1, 1].set_title("gray values, standardised", fontsize=9)
    ax[1, 1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def before_after_png(before: Any, after: Any, **kw: Any) -> bytes:
    """:func:`before_after_figure` as PNG bytes (for :class:`fibsynth.report.Section` figures)."""
    from fibsynth.report import figure_png

    return figure_png(before_after_figure(before, after, **kw))
