"""The calibration set: rows, resume, torn last line, mismatched settings, table reading."""

from __future__ import annotations

import csv

import pytest

from fibsynth.errors import FibsynthError
from fibsynth.fastsim.calibration import COLUMNS, CalibrationSettings, generate, point_seed, read_table


def small(**kw):
    base = dict(energies_kev=[1.0, 2.0], substrates=["C", "Au"], thicknesses_nm=[0.0, 20.0], electrons=300, seed=3)
    base.update(kw)
    return CalibrationSettings(**base)


def test_generate_and_resume(tmp_path):
    out = tmp_path / "cal.csv"
    info = generate(out, small(), progress=False)
    assert info == {**info, "rows": 8, "simulated": 8, "skipped": 0}
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == COLUMNS and len(rows) == 8
    au0 = [r for r in rows if r["substrate"] == "Au" and r["thickness_nm"] == "0"]
    c0 = [r for r in rows if r["substrate"] == "C" and r["thickness_nm"] == "0"]
    assert all(float(a["eta"]) > float(c["eta"]) + 0.15 for a, c in zip(au0, c0))  # gold bright, carbon dark
    assert {r["Z"] for r in rows} == {"6", "79"}
    assert all(int(r["seed"]) == point_seed(3, float(r["energy_kev"]), float(r["Z"]), float(r["thickness_nm"]))
               for r in rows)
    # restart: nothing to do
    assert generate(out, small(), progress=False)["simulated"] == 0
    # tear the last line (killed mid-write): it is dropped and recomputed, with the same value
    text = out.read_text()
    last = text.splitlines()[-1]
    out.write_text(text[: -len(last) // 2 - 1])
    info = generate(out, small(), progress=False)
    assert info["simulated"] == 1
    def strip_seconds(t):  # the wall time of a point is the only column that may differ
        return [line.rsplit(",", 1)[0] for line in t.splitlines()]

    assert strip_seconds(out.read_text()) == strip_seconds(text)
    # extend the grid: only the new points run
    assert generate(out, small(thicknesses_nm=[0.0, 20.0, 40.0]), progress=False)["simulated"] == 4
    # other settings on the same file: refused
    with pytest.raises(FibsynthError, match="other electrons"):
        generate(out, small(electrons=400), progress=False)
    t = read_table(out)
    assert t["eta"].size == 12 and t["substrate"].dtype.kind == "U"


def test_read_table_errors(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("energy_kev,Z,eta\n1,6,0.1\n")
    with pytest.raises(FibsynthError, match="thickness_nm"):
        read_table(p)
    with pytest.raises(FibsynthError, match="not found"):
        read_table(tmp_path / "missing.csv")
    p.write_text("energy_kev,substrate,Z,thickness_nm,eta\n1,C,6,x,0.1\n")
    with pytest.raises(FibsynthError, match="numeric"):
        read_table(p)
