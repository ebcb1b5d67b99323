"""The calibration set ("sMC-BS" of the paper): Monte Carlo eta of epoxy films over bulk substrates.

For every beam energy E, substrate S and film thickness t the Monte Carlo engine
(:func:`fibsynth.physics.montecarlo.engine.film_eta`) fires ``electrons`` primaries at a laterally infinite film of
``film`` (epoxy) of thickness t on bulk S; t = 0 is the bare substrate. Each row holds eta (fraction of primaries
backscattered) and its binomial standard error sqrt(eta (1 - eta) / N). Every point has its own seed derived from
(seed, E, Z, t), so the statistical errors of different rows are independent.

The CSV is appended to row by row as each point finishes (flushed and fsync'ed). The ``elastic`` column holds the
physics label: the canonical elastic model name (``mott`` is resolved to the engine's current default Mott model,
e.g. ``mott-pwa``), followed by ``+binary`` when the binary-collision (inelastic) channel is on (the engine's
default), so a table says which physics made it; a restart reads the rows
already present and skips them, so an interrupted run resumes where it stopped. A torn last line (the process
was killed mid-write) is dropped on restart.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import numpy as np
from pydantic import Field

from fibsynth.config import StrictModel
from fibsynth.errors import FibsynthError

COLUMNS = ["energy_kev", "film", "substrate", "Z", "thickness_nm", "eta", "eta_std", "electrons", "seed",
           "incidence_deg", "elastic", "seconds"]
REQUIRED = ["energy_kev", "substrate", "Z", "thickness_nm", "eta"]

DEFAULT_ENERGIES = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
DEFAULT_SUBSTRATES = ("C", "Al", "Si", "Ti", "Cu", "Mo", "Ag", "W", "Pt", "Au")
DEFAULT_THICKNESSES = tuple(float(t) for t in range(0, 200, 10))


class CalibrationSettings(StrictModel):
    energies_kev: list[float] = Field(default_factory=lambda: list(DEFAULT_ENERGIES), min_length=1)
    substrates: list[str] = Field(default_factory=lambda: list(DEFAULT_SUBSTRATES), min_length=1)
    thicknesses_nm: list[float] = Field(default_factory=lambda: list(DEFAULT_THICKNESSES), min_length=1)
    film: str = "epoxy"
    electrons: int = Field(15000, ge=1, le=10**9)
    seed: int = Field(0, ge=0, lt=2**63)
    incidence_deg: float = Field(0.0, ge=0.0, le=85.0)
    elastic: str = Field("mott", pattern="^(mott|browning|rutherford|mott-pwa)$")
    binary_collisions: bool = True

    def physics_label(self) -> str:
        from fibsynth.physics.elastic import canonical_model

        return canonical_model(self.elastic) + ("+binary" if self.binary_collisions else "")


def point_seed(seed: int, energy_kev: float, z: float, thickness_nm: float) -> int:
    """Seed of one calibration point, derived from the run seed and the point's (E, Z, t)."""
    ss = np.random.SeedSequence([int(seed), int(round(energy_kev * 1000)), int(round(z * 1000)),
                                 int(round(thickness_nm * 1000))])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def _key(energy_kev: float, film: str, substrate: str, thickness_nm: float) -> tuple:
    return (round(float(energy_kev), 6), film, substrate, round(float(thickness_nm), 6))


def read_table(path: str | Path) -> dict[str, np.ndarray]:
    """Read a calibration CSV into columns (numeric columns as float arrays, names as string arrays)."""
    path = Path(path)
    if not path.is_file():
        raise FibsynthError("calibration table not found", path)
    with open(path, newline="", encoding="utf-8", errors="strict") as fh:
        try:
            head = fh.read(1 << 16)
            fh.seek(0)
            if "\x00" in head:
                raise FibsynthError("is a binary file, not a calibration CSV", path)
        except UnicodeDecodeError as exc:
            raise FibsynthError(f"is not a UTF-8 text file (byte {exc.start}); expected a calibration CSV", path) from None
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise FibsynthError(f"calibration table lacks column(s) {', '.join(missing)} "
                                f"(need at least {','.join(REQUIRED)})", path)
        rows = []
        try:
            for i, row in enumerate(reader, start=2):
                if None in row or any(row.get(c) in (None, "") for c in REQUIRED):
                    raise FibsynthError(f"line {i}: incomplete row", path)
                rows.append(row)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise FibsynthError(f"not a readable CSV ({type(exc).__name__}: {str(exc).splitlines()[0]})", path) from None
    if not rows:
        raise FibsynthError("calibration table has no rows", path)
    out: dict[str, np.ndarray] = {}
    for col in rows[0]:
        vals = [r[col] for r in rows]
        try:
            out[col] = np.array([float(v) for v in vals])
        except ValueError:
            out[col] = np.array(vals)
    for col in ("energy_kev", "Z", "thickness_nm", "eta"):
        if out[col].dtype.kind != "f" or not np.all(np.isfinite(out[col])):
            raise FibsynthError(f"column {col} must be numeric and finite", path)
    return out


def _existing(path: Path, settings: CalibrationSettings) -> set[tuple]:
    """Keys of rows already in ``path``; drops a torn last line; checks the run parameters agree."""
    if not path.exists():
        return set()
    text = _text(path)
    lines = text.splitlines(keepends=True)
    if not lines:
        return set()
    if not is_calibration_table(path, text):
        raise FibsynthError("exists but is not a calibration table written by this command "
                            "(different columns); choose another file", path, param="out")
    if not lines[-1].endswith("\n"):  # a torn last row of a killed run (the header is checked first)
        lines = lines[:-1]
        path.write_text("".join(lines))
    done = set()
    for row in csv.DictReader(lines):
        if (int(row["electrons"]) != settings.electrons or int(row["seed"]) != point_seed(
                settings.seed, float(row["energy_kev"]), float(row["Z"]), float(row["thickness_nm"]))
                or float(row["incidence_deg"]) != settings.incidence_deg or row["elastic"] != settings.physics_label()):
            raise FibsynthError("holds rows made with other electrons/seed/incidence_deg/elastic settings; "
                                "use the same settings to resume, or another file", path, param="out")
        done.add(_key(float(row["energy_kev"]), row["film"], row["substrate"], float(row["thickness_nm"])))
    return done


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FibsynthError(f"is not a UTF-8 text file (byte {exc.start}); expected a calibration CSV", path) from None


def is_calibration_table(path: str | Path, text: str | None = None) -> bool:
    """True when ``path`` starts with the header this command writes (the only file it appends to or replaces)."""
    path = Path(path)
    try:
        text = text if text is not None else _text(path)
    except (OSError, FibsynthError):
        return False
    first = text.split("\n", 1)[0].rstrip("\r")
    return first.split(",") == COLUMNS


def generate(out: str | Path, settings: CalibrationSettings, *, progress: bool = True) -> dict:
    """Run the calibration set into ``out`` (CSV), resuming from the rows already there."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from fibsynth.physics.backscatter import effective_z
    from fibsynth.physics.materials import get_material
    from fibsynth.physics.montecarlo.engine import Physics, check_energy, check_incidence, film_eta

    out = Path(out)
    for e in settings.energies_kev:
        check_energy(e, "--energies")
    check_incidence(settings.incidence_deg)
    get_material(settings.film, "--film")
    subs = [(s, get_material(s, "--substrates")) for s in settings.substrates]
    if any(t < 0 for t in settings.thicknesses_nm):
        raise FibsynthError("thicknesses must be >= 0", param="thicknesses_nm")
    done = _existing(out, settings)
    todo = [(e, s, m, t) for e in settings.energies_kev for s, m in subs for t in settings.thicknesses_nm
            if _key(e, settings.film, s, t) not in done]
    total = len(settings.energies_kev) * len(subs) * len(settings.thicknesses_nm)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = not out.exists() or out.stat().st_size == 0
    physics = Physics(elastic=settings.elastic, inelastic_deflection=settings.binary_collisions)
    t_start = time.perf_counter()
    with open(out, "a", newline="") as fh, Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), TimeRemainingColumn(), disable=not progress, transient=False,
    ) as prog:
        writer = csv.writer(fh)
        if new:
            writer.writerow(COLUMNS)
            fh.flush()
        task = prog.add_task("calibration (film eta)", total=total, completed=total - len(todo))
        for e, s, m, t in todo:
            z = effective_z(m)
            sd = point_seed(settings.seed, e, z, t)
            prog.update(task, description=f"calibration E={e:g} keV {s} t={t:g} nm")
            res = film_eta(settings.film, m, t, e, settings.electrons, seed=sd, physics=physics,
                           incidence_deg=settings.incidence_deg)
            writer.writerow([f"{e:g}", settings.film, s, f"{z:g}", f"{t:g}", f"{res.eta:.6f}", f"{res.eta_std:.6f}",
                             settings.electrons, sd, f"{settings.incidence_deg:g}", settings.physics_label(),
                             f"{res.seconds:.3f}"])
            fh.flush()
            os.fsync(fh.fileno())
            prog.advance(task)
    return {"rows": total, "simulated": len(todo), "skipped": total - len(todo),
            "seconds": time.perf_counter() - t_start}
