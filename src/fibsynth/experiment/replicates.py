"""Replicates of an experiment: the same design run with other seeds, each in its own work folder, and its tables as
mean +- sd over the replicates, with time and memory per step kind.

A replicate is a set of variable overrides (e.g. the structures' seeds); :func:`run_replicate` runs one in
``WORKDIR/rep<r>`` (cached by content like any run, so an interrupted set resumes where it stopped), and
:func:`aggregate` reads the finished folders: every numeric cell of every table as mean +- sd (sample sd, n - 1),
and from the steps' ``DONE.json`` records the seconds (wall and CPU) per step kind and per stack of the
``montecarlo`` and ``fast`` steps at each energy, and the peak memory. ``experiments/paper_replicates.py`` drives it
for ``experiments/paper.yaml``.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from fibsynth.errors import FibsynthError

#: the structure and training seeds of replicate r of experiments/paper.yaml (r = 0: the file's own seeds)
PAPER_SEEDS: Callable[[int], dict[str, int]] = lambda r: {  # noqa: E731
    "train_seed": 11 + 100 * r, "test_seed": 12 + 100 * r, "real_seed": 13 + 100 * r, "seg_seed": r}


def replicate_dirs(workdir: str | Path, n: int) -> list[Path]:
    return [Path(workdir) / f"rep{r}" for r in range(n)]


def run_replicate(path: str | Path, workdir: str | Path, r: int, *,
                  seeds: Callable[[int], dict[str, Any]] = PAPER_SEEDS, overrides: dict[str, Any] | None = None,
                  quiet: bool = False) -> Any:
    """Run replicate ``r`` of the experiment at ``path`` (``overrides`` plus ``seeds(r)``) in ``WORKDIR/rep<r>``."""
    from fibsynth.experiment.runner import run_experiment

    if r < 0:
        raise FibsynthError(f"must be >= 0 (got {r})", param="r")
    return run_experiment(path, workdir=Path(workdir) / f"rep{r}", overrides={**(overrides or {}), **seeds(r)},
                          quiet=quiet)


def finished(workdirs: list[Path]) -> list[Path]:
    """The replicate folders whose run has finished (a ``last_run.json`` and tables)."""
    return [Path(w) for w in workdirs if (Path(w) / "last_run.json").is_file() and (Path(w) / "tables").is_dir()]


def _mean_sd(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else float("nan")
    return m, sd


def _fmt(values: list[float], digits: int) -> str:
    m, sd = _mean_sd(values)
    return f"{m:.{digits}f}" if math.isnan(sd) else f"{m:.{digits}f} +- {sd:.{digits}f}"


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def aggregate_table(csvs: list[Path], digits: int = 3) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of one table over replicates: each numeric cell as mean +- sd. The replicates' tables must
    have the same header and row labels."""
    tables = [_read_csv(p) for p in csvs]
    header = tables[0][0]
    for p, t in zip(csvs, tables):
        if t[0] != header or [r[0] for r in t[1:]] != [r[0] for r in tables[0][1:]]:
            raise FibsynthError("not the same table as the first replicate's (header or rows differ)", p)
    rows = []
    for i, row in enumerate(tables[0][1:], start=1):
        out = [row[0]]
        for j in range(1, len(header)):
            cells = [t[i][j] for t in tables]
            if all(c == "" for c in cells):
                out.append("")
                continue
            try:
                out.append(_fmt([float(c) for c in cells], digits))
            except ValueError:
                raise FibsynthError(f"row {row[0]!r}, column {header[j]!r}: not a number in every replicate "
                                    f"({cells})", csvs[0]) from None
        rows.append(out)
    return header, rows


#: the model pairs whose per-replicate differences :func:`aggregate` reports when a table has both rows
PAPER_PAIRS: tuple[tuple[str, str], ...] = (("sML", "sMC"), ("sMCDA", "sMC"), ("sMCDA", "sML"))


def paired_table(csvs: list[Path], pairs: tuple[tuple[str, str], ...] = PAPER_PAIRS,
                 digits: int = 3) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the differences row a - row b of one table, taken within each replicate and then given as
    mean +- sd with the 95 % t-interval of the mean, for every pair (a, b) whose two rows the table has.

    The models of one replicate share its structures, its stand-in real stack and its test data, so their scores
    move together from replicate to replicate; the sd of a within-replicate difference is then much smaller than
    the sd of either cell, and this is what can rank two models with few replicates. Needs >= 2 replicates."""
    from scipy import stats

    if len(csvs) < 2:
        raise FibsynthError(f"paired differences need >= 2 replicates (got {len(csvs)})", param="csvs")
    tables = [(rows[0], {r[0]: r for r in rows[1:]}) for rows in map(_read_csv, csvs)]
    header = tables[0][0]
    out = []
    for a, b in pairs:
        if not all(a in t and b in t for _, t in tables):
            continue
        row = [f"{a} - {b}"]
        for j in range(1, len(header)):
            try:
                d = [float(t[a][j]) - float(t[b][j]) for _, t in tables]
            except ValueError:
                row.append("")
                continue
            m, sd = _mean_sd(d)
            half = stats.t.ppf(0.975, len(d) - 1) * sd / math.sqrt(len(d))
            row.append(f"{m:+.{digits}f} +- {sd:.{digits}f} [{m - half:+.{digits}f}, {m + half:+.{digits}f}]")
        out.append(row)
    return header, out


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(md + ["| " + " | ".join(r) + " |" for r in rows])


def _records(wd: Path) -> list[dict]:
    out = []
    steps = wd / "steps"
    if steps.is_dir():
        for d in sorted(steps.iterdir()):
            f = d / "DONE.json"
            if f.is_file():
                out.append(json.loads(f.read_text()))
    return out


def aggregate(workdirs: list[Path], digits: int = 3,
              pairs: tuple[tuple[str, str], ...] = PAPER_PAIRS) -> dict[str, Any]:
    """Tables (name -> markdown, mean +- sd over the replicates), the within-replicate differences of the model
    ``pairs`` (name -> markdown, :func:`paired_table`; with >= 2 replicates, for tables that have both rows) and
    costs of finished replicate folders."""
    workdirs = [Path(w) for w in workdirs]
    missing = [str(w) for w in workdirs if not (w / "tables").is_dir()]
    if missing:
        raise FibsynthError(f"no tables in {', '.join(missing)} (replicate not finished?)", param="workdirs")
    names = sorted(p.stem for p in (workdirs[0] / "tables").glob("*.csv"))
    tables, paired = {}, {}
    for name in names:
        csvs = [w / "tables" / f"{name}.csv" for w in workdirs]
        absent = [str(p) for p in csvs if not p.is_file()]
        if absent:
            raise FibsynthError(f"table {name} missing in {', '.join(absent)}", param="workdirs")
        header, rows = aggregate_table(csvs, digits)
        tables[name] = _markdown(header, rows)
        if len(csvs) >= 2:
            header, rows = paired_table(csvs, pairs, digits)
            if rows:
                paired[name] = _markdown(header, rows)
    return {"tables": tables, "paired": paired, "costs": costs(workdirs)}


def costs(workdirs: list[Path]) -> dict[str, Any]:
    """Seconds (wall, CPU) per step kind and per Monte Carlo / fast stack per energy, peak memory, and the finished
    steps per kind in each folder, from the steps' ``DONE.json`` records. Works on unfinished replicates too (an
    interrupted set: the per-kind sums then cover the steps finished so far, ``steps_per_kind`` says which)."""
    workdirs = [Path(w) for w in workdirs]
    steps_per_kind: list[dict[str, int]] = []
    kind_wall: dict[str, list[float]] = defaultdict(list)
    kind_cpu: dict[str, list[float]] = defaultdict(list)
    per_stack: dict[tuple[str, float], list[float]] = defaultdict(list)
    per_stack_cpu: dict[tuple[str, float], list[float]] = defaultdict(list)
    peak = []
    for w in workdirs:
        wall: dict[str, float] = defaultdict(float)
        cpu: dict[str, float] = defaultdict(float)
        no_cpu: set[str] = set()  # kinds with a step recorded before CPU time was: no CPU sum for this replicate
        count: dict[str, int] = defaultdict(int)
        for rec in _records(w):
            kind = rec.get("kind", "?")
            count[kind] += 1
            wall[kind] += float(rec.get("seconds", 0.0))
            if "cpu_seconds" in rec:
                cpu[kind] += float(rec["cpu_seconds"])
            else:
                no_cpu.add(kind)
            if kind in ("montecarlo", "fast") and "energy_kev" in rec.get("params", {}):
                key = (kind, float(rec["params"]["energy_kev"]))
                per_stack[key].append(float(rec.get("seconds", 0.0)))
                if "cpu_seconds" in rec:
                    per_stack_cpu[key].append(float(rec["cpu_seconds"]))
            if rec.get("peak_rss_mb") is not None:
                peak.append(float(rec["peak_rss_mb"]))
        steps_per_kind.append(dict(sorted(count.items())))
        for k, v in wall.items():
            kind_wall[k].append(v)
        for k, v in cpu.items():
            if k not in no_cpu:
                kind_cpu[k].append(v)
    return {
        "replicates": len(workdirs), "steps_per_kind": steps_per_kind,
        "wall_seconds_per_kind": {k: _mean_sd(v) for k, v in sorted(kind_wall.items())},
        "cpu_seconds_per_kind": {k: _mean_sd(v) for k, v in sorted(kind_cpu.items())},  # complete replicates only
        "wall_seconds_per_stack": {f"{k} {e:g} keV": _mean_sd(v) for (k, e), v in sorted(per_stack.items())},
        "cpu_seconds_per_stack": {f"{k} {e:g} keV": _mean_sd(v) for (k, e), v in sorted(per_stack_cpu.items())},
        "peak_rss_mb": max(peak) if peak else None,
    }


def costs_markdown(costs: dict[str, Any]) -> str:
    """The costs of :func:`aggregate` as two small markdown tables (per step kind; Monte Carlo vs fast per stack)."""
    def cell(ms):
        m, sd = ms
        return f"{m:.1f}" if math.isnan(sd) else f"{m:.1f} +- {sd:.1f}"

    lines = ["| step kind | wall s per replicate | CPU s per replicate |", "|---|---|---|"]
    for k, v in costs["wall_seconds_per_kind"].items():
        c = costs["cpu_seconds_per_kind"].get(k)
        lines.append(f"| {k} | {cell(v)} | {cell(c) if c else ''} |")
    lines += ["", "| energy | Monte Carlo s per stack (wall / CPU) | fast path s per stack (wall / CPU) | "
                  "MC / fast (CPU) |", "|---|---|---|---|"]
    energies = sorted({float(k.split()[1]) for k in costs["wall_seconds_per_stack"]})
    for e in energies:
        mc_w = costs["wall_seconds_per_stack"].get(f"montecarlo {e:g} keV")
        fa_w = costs["wall_seconds_per_stack"].get(f"fast {e:g} keV")
        mc_c = costs["cpu_seconds_per_stack"].get(f"montecarlo {e:g} keV")
        fa_c = costs["cpu_seconds_per_stack"].get(f"fast {e:g} keV")
        ratio = f"{mc_c[0] / fa_c[0]:.0f}x" if mc_c and fa_c and fa_c[0] > 0 else ""
        lines.append(f"| {e:g} keV | {cell(mc_w) if mc_w else ''} / {cell(mc_c) if mc_c else ''} | "
                     f"{cell(fa_w) if fa_w else ''} / {cell(fa_c) if fa_c else ''} | {ratio} |")
    if costs.get("peak_rss_mb") is not None:
        lines += ["", f"Peak resident memory (largest over the steps' records): {costs['peak_rss_mb']:.0f} MB."]
    return "\n".join(lines)
