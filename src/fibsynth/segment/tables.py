"""The paper's tables on our data: MP / MGP / MDS against ground truth (Table 3 style) and, without ground
truth, the isotropy errors e_TPCF, e_LPF, e_D (Table 4 style), for several predictions -> CSV / Markdown."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence

from fibsynth.errors import FibsynthError

GT_KEYS = ("MP", "MGP", "MDS", "dice_solid", "dice_pore")
ISO_KEYS = ("e_tpcf", "e_lpf", "e_diameter", "D_xy_nm", "D_xz_nm", "D_yz_nm", "solid_fraction")


def score_rows(preds: Sequence[str | Path], truths: Sequence[str | Path] = (), *, isotropy: bool = False,
               voxel_zyx: tuple[float, float, float] | None = None, names: Sequence[str] | None = None) -> list[dict]:
    """One row per prediction: ``name`` plus MP/MGP/MDS (if ``truths``: one for all, or one per prediction)
    and/or the isotropy errors (if ``isotropy`` or no truth; voxel size from the file or ``voxel_zyx``)."""
    from fibsynth.io import read_structure
    from fibsynth.metrics import evaluate_segmentation, isotropy_report

    if not preds:
        raise FibsynthError("give at least one prediction")
    if truths and len(truths) not in (1, len(preds)):
        raise FibsynthError(f"give one ground truth for all predictions or one per prediction "
                            f"({len(preds)}), got {len(truths)}", param="truths")
    if names and len(names) != len(preds):
        raise FibsynthError(f"give one name per prediction ({len(preds)}), got {len(names)}", param="names")
    rows = []
    for i, p in enumerate(preds):
        pv = read_structure(p, lazy=True)
        row: dict[str, Any] = {"name": names[i] if names else Path(p).name}
        if truths:
            tp = truths[0] if len(truths) == 1 else truths[i]
            tv = read_structure(tp, lazy=True)
            if tuple(pv.data.shape) != tuple(tv.data.shape):
                raise FibsynthError(f"shape {tuple(pv.data.shape)} differs from shape {tuple(tv.data.shape)} of --truth {tp}", p)
            r = evaluate_segmentation(pv.data, tv.data)
            row.update({k: float(r[k]) for k in GT_KEYS})
        if isotropy or not truths:
            vs = voxel_zyx or (pv.meta.voxel_size_nm.zyx() if pv.meta.voxel_size_nm else None)
            if vs is None:
                raise FibsynthError("no voxel size in the file: give --voxel-nm (and --slice-nm)", p)
            import numpy as np

            r = isotropy_report(np.asarray(pv.data), vs)
            row.update({k: float(r[k]) for k in ISO_KEYS})
        rows.append(row)
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4f}"
    return str(v)


def to_markdown(rows: list[dict]) -> str:
    cols = list(rows[0])
    arrows = {"MP": " ↓", "MGP": " ↓", "MDS": " ↑", "e_tpcf": " ↓", "e_lpf": " ↓", "e_diameter": " ↓"}
    head = "| " + " | ".join(c + arrows.get(c, "") for c in cols) + " |"
    sep = "|" + "|".join("---" if c == "name" else "---:" for c in cols) + "|"
    body = ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body]) + "\n"


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()
