"""Plots of the directional functions (TPCF and lineal path along x, y, z) of one or more volumes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_COLORS = {"x": "tab:blue", "y": "tab:orange", "z": "tab:green"}


def plot_directional(reports: list[tuple[str, dict[str, Any]]], path: str | Path) -> None:
    """Save a figure: one row per report (``isotropy_report(..., return_functions=True)``), columns S2 and L.

    Each axis' function is drawn on its own lags (nm); the grey band marks the lag range compared by the errors.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fibsynth.io import atomic_path

    fig, axes = plt.subplots(len(reports), 2, figsize=(10, 3.4 * len(reports)), squeeze=False)
    for row, (title, rep) in enumerate(reports):
        funcs = rep["functions"]
        phi = rep["solid_fraction"]
        for col, (key, label, err) in enumerate(
            (("tpcf", "two-point correlation $S_2(r)$", "e_tpcf"), ("lpf", "lineal path $L(r)$", "e_lpf"))
        ):
            ax = axes[row, col]
            for name in ("x", "y", "z"):
                lags, f = funcs[key][name]
                ax.plot(lags, f, color=_COLORS[name], label=f"along {name}", lw=1.5 if name == "z" else 1.2)
            if key == "tpcf":
                ax.axhline(phi**2, color="0.5", ls=":", lw=1, label=r"$\phi^2$")
            ax.axvspan(rep["lag_step_nm"], rep["lag_max_nm"], color="0.9", zorder=0, label="compared lags")
            ax.set_xlabel("lag r (nm)")
            ax.set_ylabel(label)
            ax.set_title(f"{title}: {err} = {rep[err]:.3f}", fontsize=10)
            ax.set_ylim(bottom=0)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
