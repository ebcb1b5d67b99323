"""Self-contained HTML reports: figures embedded as base64 PNG, no external resources, opens offline."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fibsynth.io import atomic_path


@dataclass
class Section:
    title: str
    text: str = ""
    tables: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    figures: list[tuple[str, bytes]] = field(default_factory=list)


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .7em;text-align:left}
th{background:#f3f3f3}figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.9em;color:#555}.meta{color:#666;font-size:.9em}
"""


def write_report(path: str | Path, title: str, sections: list[Section], meta: dict[str, Any] | None = None) -> Path:
    """Write a self-contained HTML report atomically and return its path."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if meta:
        parts.append("<p class='meta'>" + " &middot; ".join(f"{html.escape(k)}: {_fmt(v)}" for k, v in meta.items()) + "</p>")
    for sec in sections:
        parts.append(f"<section><h2>{html.escape(sec.title)}</h2>")
        if sec.text:
            parts.append("".join(f"<p>{html.escape(p)}</p>" for p in sec.text.split("\n\n")))
        for caption, table in sec.tables:
            parts.append(f"<table><caption>{html.escape(caption)}</caption><tr><th>quantity</th><th>value</th></tr>")
            parts.extend(f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>" for k, v in table.items())
            parts.append("</table>")
        for caption, png in sec.figures:
            b64 = base64.b64encode(png).decode("ascii")
            parts.append(
                f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{b64}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        parts.append("</section>")
    parts.append("</body></html>")
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return path
