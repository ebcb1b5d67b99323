"""Run an experiment: steps in topological order, cached by content, with a report of what ran and why."""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fibsynth import __version__
from fibsynth.errors import FibsynthError
from fibsynth.experiment.cache import Cache, step_key
from fibsynth.experiment.lock import workdir_lock
from fibsynth.experiment.spec import ExperimentSpec, dependencies, load_experiment, order
from fibsynth.experiment.steps import STEP_KINDS
from fibsynth.io import check_workdir


@dataclass
class StepReport:
    name: str
    kind: str
    key: str
    status: str  # "ran", "cached", "would run", "failed"
    reason: str
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunReport:
    experiment: str
    workdir: str
    steps: list[StepReport]
    seconds: float = 0.0

    @property
    def ran(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "ran"]

    @property
    def cached(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "cached"]

    @property
    def would_run(self) -> list[str]:
        return [s.name for s in self.steps if s.status == "would run"]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def plan(spec: ExperimentSpec, source=None) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """(order, step -> key, step -> validated params)."""
    names = order(spec, source)
    keys: dict[str, str] = {}
    params: dict[str, Any] = {}
    for n in names:
        st = spec.steps[n]
        p = STEP_KINDS[st.kind].Params(**st.params)
        params[n] = p
        in_keys = {role: [keys[r] for r in refs] for role, refs in dependencies(st).items()}
        keys[n] = step_key(st.kind, p.model_dump(mode="json"), in_keys)
    return names, keys, params


def run_experiment(path: str | Path, *, workdir: str | Path | None = None, force: list[str] | tuple = (),
                   dry_run: bool = False, overrides: dict[str, Any] | None = None, quiet: bool = False) -> RunReport:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    path = Path(path)
    spec = load_experiment(path, overrides)
    for f in force:
        if f not in spec.steps:
            raise FibsynthError(f"--force {f}: no such step (steps: {', '.join(spec.steps)})", path)
    # the work folder: --workdir, else the file's 'workdir' (relative to the current folder), else ./NAME-work
    wd = Path(workdir) if workdir is not None else Path(spec.workdir or f"{path.stem}-work")
    check_workdir(wd, param="workdir")
    cache = Cache(wd)
    names, keys, params = plan(spec, path)
    # --force STEP reruns the step and everything downstream of it
    forced: set[str] = set(force)
    for n in names:
        if any(r in forced for refs in dependencies(spec.steps[n]).values() for r in refs):
            forced.add(n)
    # one run per work folder (WORKDIR/.lock, taken before the cache is inspected); a dry run only reads
    with ExitStack() as stack:
        if not dry_run:
            wd.mkdir(parents=True, exist_ok=True)
            stack.enter_context(workdir_lock(wd))
            cache.clean_stale()  # temporary folders of a run that was killed (we hold the lock: none is live)
        console = Console(stderr=True, quiet=quiet)
        t_start = time.perf_counter()
        reports: list[StepReport] = []
        status: dict[str, str] = {}
        todo = []
        records: dict[str, dict] = {}
        for n in names:
            st = spec.steps[n]
            damaged = None
            if cache.done(keys[n]) and n not in forced:
                rec, damaged = cache.check(keys[n], refresh=not dry_run)
                if rec is not None:
                    records[n] = rec
            if n in forced:
                reason = "forced" if n in force else "downstream of a forced step"
            elif n in records:
                reason = "cached"
            elif damaged:
                reason = f"cached output damaged ({damaged}): computed again"
            else:
                changed = [r for refs in dependencies(st).values() for r in refs if status.get(r) == "run"]
                reason = f"input changed ({', '.join(changed)})" if changed else "not in cache (new or changed parameters)"
            status[n] = "cached" if reason == "cached" else "run"
            todo.append((n, reason))
        if dry_run:
            for n, reason in todo:
                st = "cached" if reason == "cached" else "would run"
                reports.append(StepReport(n, spec.steps[n].kind, keys[n], st, reason))
                console.print(f"{'[dim]cached   ' if st == 'cached' else '[yellow]would run'}[/] {n:28s} {spec.steps[n].kind:16s} {reason}")
            return RunReport(spec.name, str(wd), reports, time.perf_counter() - t_start)
        for n, reason in todo:  # before any work: a step that cannot fit in memory is refused now, not mid-run
            if reason != "cached":
                _memory_guard(spec.steps[n].kind, params[n], n, path)
        (wd / "steps").mkdir(exist_ok=True)
        n_run = sum(1 for _, r in todo if r != "cached")
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, transient=True) as prog:
            task = prog.add_task(f"{spec.name}: {n_run} of {len(todo)} steps to run", total=len(todo))
            for n, reason in todo:
                st = spec.steps[n]
                key = keys[n]
                if reason == "cached":
                    rec = records[n]
                    reports.append(StepReport(n, st.kind, key, "cached", reason, rec.get("seconds", 0.0), rec.get("summary", {})))
                    console.print(f"[dim]cached[/]  {n}")
                else:
                    prog.update(task, description=f"{spec.name}: {n} ({st.kind})")
                    inputs = {role: [cache.path(keys[r]) for r in v] if isinstance(v, list) else cache.path(keys[v])
                              for role, v in st.inputs.items()}
                    ctx = {"dirs": {r: cache.path(keys[r]) for refs in dependencies(st).values() for r in refs},
                           "step": n, "workdir": wd}
                    t0, c0 = time.perf_counter(), time.process_time()
                    record = {"step": n, "kind": st.kind, "params": params[n].model_dump(mode="json"),
                              "inputs": {role: v for role, v in st.inputs.items()}, "fibsynth": __version__}
                    try:
                        with cache.writing(key, record) as tmp:
                            summary = STEP_KINDS[st.kind].run(params[n], inputs, tmp, ctx) or {}
                            record.update(summary=summary, seconds=round(time.perf_counter() - t0, 2),
                                          cpu_seconds=round(time.process_time() - c0, 2),  # all threads; load-free
                                          peak_rss_mb=_peak_rss_mb())
                    except FibsynthError as exc:
                        raise FibsynthError(f"step '{n}': {exc.message}", exc.source or path) from None
                    dt = time.perf_counter() - t0
                    reports.append(StepReport(n, st.kind, key, "ran", reason, round(dt, 2), summary))
                    brief = ", ".join(f"{k} {v}" for k, v in summary.items() if not isinstance(v, (list, dict)))[:100]
                    console.print(f"[green]ran[/]     {n} ({dt:.1f} s) {brief}")
                _link(wd / "steps" / n, cache.path(key))
                if st.kind == "table":
                    (wd / "tables").mkdir(exist_ok=True)
                    for suf in ("md", "csv"):
                        shutil.copyfile(cache.path(key) / f"table.{suf}", wd / "tables" / f"{n}.{suf}")
                prog.advance(task)
        rep = RunReport(spec.name, str(wd), reports, round(time.perf_counter() - t_start, 2))
        (wd / "last_run.json").write_text(rep.to_json())
        console.print(f"[bold]{spec.name}[/]: ran {len(rep.ran)}, cached {len(rep.cached)} steps in {rep.seconds:.1f} s; "
                      f"work folder {wd}")
        return rep


def _peak_rss_mb() -> float | None:
    """The process's peak resident memory so far (MB; a running maximum over the steps run in this process)."""
    try:
        import resource
        import sys

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(kb / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
    except (ImportError, OSError):  # pragma: no cover - not on every platform
        return None


def _memory_guard(kind: str, params: Any, name: str, source: Path) -> None:
    """One line before the run when a step would build more in memory than is available (structure steps build
    their volume whole: the same guard as ``fibsynth structure``, sized from available memory)."""
    if kind != "structure":
        return
    from fibsynth.structure.write import check_structure_memory

    try:
        check_structure_memory(params.shape)
    except FibsynthError as exc:
        raise FibsynthError(f"step '{name}': {exc.message}", source) from None


def _link(link: Path, target: Path) -> None:
    try:
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(target, link.parent), link)
    except OSError:  # file systems without symlinks: the cache key is in last_run.json
        pass
