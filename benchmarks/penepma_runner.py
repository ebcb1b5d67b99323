#!/usr/bin/env python3
"""Run PENEPMA (PENELOPE's electron-probe program) for a bulk target, side by side with fibsynth's engine.

PENEPMA comes from PyPI, in its own virtual environment so the project's .venv stays clean::

    python3 -m venv .venv-bench
    .venv-bench/bin/pip install pymontecarlo-penepma more_itertools==8.14.0

The ``pymontecarlo-penepma`` wheel ships statically linked Linux executables (``material``, ``penepma``,
built from PENELOPE **2014**, as their banners say) in ``pymontecarlo_penepma/penepma/bin_linux`` and the
PENELOPE database in ``pymontecarlo_penepma/penepma/pendbase/pdfiles``. Nothing is compiled at install time.
This module does not import pymontecarlo at all: it finds that folder, writes its own input files and drives
the two executables directly (standard library only), which is simpler and more controllable than the
pymontecarlo API (whose default "lazy" parameters use C1 = C2 = 0.2 and X-ray-line-based absorption energies,
unsuitable at 1-4 keV).

Per run, in a fresh temporary folder (removed afterwards):
  1. ``material`` builds the material file from the element's Z and density (about 0.2 s),
  2. ``penepma`` simulates N showers of a pencil beam at normal incidence on a slab 1 mm thick, 2 mm across
     (bulk for any electron energy of interest here), pinned to one CPU with ``taskset -c 0`` when available.

eta is read from PENEPMA's results file ``penepma-res.dat``::

    Simulated primary showers ...............  2.000000E+04
    Upbound primary particles ...............  8.125000E+03

eta = upbound primary particles / simulated primary showers (backscattered primaries only, the definition of
the reference tables). PENEPMA's "Upbound fraction" line is NOT used for eta: it adds the upbound secondary
electrons (energy above the 50 eV absorption energy) to the primaries; it is reported separately as
``upbound_fraction_all_electrons``. eta_std is the binomial standard error sqrt(eta (1 - eta) / N) (1 sigma;
PENELOPE's own "+-" figures are 3 sigma).

Marginal throughput: two runs of N and 2N showers; rate = N / (t(2N) - t(N)), so start-up (reading the
material file, building tables, writing the result files, about 2-3 s) cancels. t is, by default, the CPU
time (user + sys) of the penepma process (``--clock cpu``: throughput per CPU core; on this shared 2-core
machine wall-clock rates were 20-70 % lower under a load average of 6-10, while CPU-time rates matched
PENEPMA's own "Simulation speed"). ``--clock wall`` uses wall-clock time instead; both are always reported
(``showers_per_second_marginal_cpu`` / ``_wall``).

Simulation parameters (defaults, all changeable on the command line):
  EABS = 50 eV for electrons, photons and positrons: PENELOPE's lowest allowed absorption energy, the usual
         low-energy cut-off of BSE work; an electron below it is absorbed (counts as not backscattered).
  C1 = C2 = 0.02: small, so that the mixed (class II) scheme is close to detailed simulation at 1-4 keV
         (PENELOPE's usual production values 0.05-0.1 are meant for higher energies); 0.02 is in the
         0.01-0.05 range recommended for low-energy backscattering.
  WCC = WCR = 10 eV: cut-off energy losses for hard inelastic collisions / hard bremsstrahlung well below
         EABS and below 1 % of E0, so that nearly every energy loss above the absorption energy is
         simulated individually (WCC may not exceed EABS; 10 eV is PENELOPE's usual floor for WCR).
No interaction forcing, no splitting, no variance reduction: each shower is an analogue shower.

CLI (the fibsynth benchmark calls this through subprocess with the .venv-bench interpreter)::

    .venv-bench/bin/python benchmarks/penepma_runner.py --material Au --energy-kev 2 --showers 20000 --json

prints one JSON object::

    {"material": "Au", "energy_kev": 2.0, "eta": ..., "eta_std": ..., "showers": 20000, "seconds": ...,
     "showers_per_second_marginal": ..., ...extra fields...}

Errors: one line on stderr (plus ``{"error": ...}`` on stdout with --json) and exit status
2 (PENEPMA not installed / unsupported platform), 3 (timeout), 1 (any other failure, bad arguments included).

Python API: :func:`run_penepma` (one run), :func:`marginal_rate` (the N / 2N pair).
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import math
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INSTALL_HINT = (
    "python3 -m venv .venv-bench && .venv-bench/bin/pip install pymontecarlo-penepma more_itertools==8.14.0"
)

# Default simulation parameters (see module docstring for the reasons).
DEFAULT_PARAMS = {
    "eabs_electron_eV": 50.0,
    "eabs_photon_eV": 50.0,
    "eabs_positron_eV": 50.0,
    "c1": 0.02,
    "c2": 0.02,
    "wcc_eV": 10.0,
    "wcr_eV": 10.0,
}

# Densities that override PENELOPE's table (pdcompos.pen gives 2.0 g/cm^3 for amorphous carbon).
DENSITY_OVERRIDES = {"C": 2.26}

DEFAULT_TIMEOUT_S = 900.0

SYMBOLS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr "
    "Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb "
    "Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es"
).split()
Z_OF = {s.lower(): i + 1 for i, s in enumerate(SYMBOLS)}


class PenepmaError(RuntimeError):
    """PENEPMA could not be run or its output could not be read."""

    exit_code = 1


class PenepmaNotInstalled(PenepmaError):
    exit_code = 2


class PenepmaTimeout(PenepmaError):
    exit_code = 3


# --------------------------------------------------------------------------------------------------
# Locating the installation


def _candidate_dirs():
    env = os.environ.get("PENEPMA_DIR")
    if env:
        yield Path(env)
    try:
        spec = importlib.util.find_spec("pymontecarlo_penepma")  # does not import the package
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            yield Path(loc) / "penepma"
    # Called with another interpreter: look in the repository's .venv-bench.
    repo = Path(__file__).resolve().parent.parent
    for sp in sorted(glob.glob(str(repo / ".venv-bench" / "lib" / "python3*" / "site-packages"))):
        yield Path(sp) / "pymontecarlo_penepma" / "penepma"


def find_penepma() -> dict:
    """Return paths {'material', 'penepma', 'pdfiles'}; raise PenepmaNotInstalled otherwise."""
    if not sys.platform.startswith("linux"):
        raise PenepmaNotInstalled(
            f"PENEPMA runner supports Linux only (the wheel's bin_linux executables); platform is {sys.platform}"
        )
    tried = []
    for base in _candidate_dirs():
        tried.append(str(base))
        mat = base / "bin_linux" / "material"
        pen = base / "bin_linux" / "penepma"
        pdf = base / "pendbase" / "pdfiles"
        if mat.is_file() and pen.is_file() and pdf.is_dir():
            for exe in (mat, pen):
                if exe.stat().st_size < 500_000:
                    raise PenepmaNotInstalled(f"{exe} is too small to be the PENEPMA executable (broken install?)")
                if not os.access(exe, os.X_OK):
                    raise PenepmaNotInstalled(f"{exe} is not executable (chmod +x it)")
            return {"material": str(mat), "penepma": str(pen), "pdfiles": str(pdf)}
    raise PenepmaNotInstalled(
        "PENEPMA is not installed (no pymontecarlo_penepma/penepma/bin_linux found); install it with: "
        + INSTALL_HINT
        + " (from the repository root) and run this script with .venv-bench/bin/python"
    )


# --------------------------------------------------------------------------------------------------
# Materials


def element_z(material: str) -> int:
    key = material.strip().lower()
    if key.isdigit() and 1 <= int(key) <= 99:
        return int(key)
    if key not in Z_OF:
        raise PenepmaError(f"unknown element {material!r}: give a chemical symbol (H..Es) or Z (1..99)")
    return Z_OF[key]


def _table_density(z: int, pdfiles: str) -> float:
    """Density of element Z from PENELOPE's pdcompos file (entries 1-99 are the elements)."""
    candidates = sorted(glob.glob(os.path.join(pdfiles, "pdcompos.*")))
    if not candidates:
        raise PenepmaError("pdcompos file not found in PENELOPE database; pass --density")
    with open(candidates[0], encoding="latin-1") as fh:
        lines = fh.read().splitlines()
    head = re.compile(r"^\s*%d\s+[A-Z]" % z)
    for i, line in enumerate(lines):
        if head.match(line) and i + 1 < len(lines):
            fields = lines[i + 1].split()
            if len(fields) == 4:
                return float(fields[3])
    raise PenepmaError(f"density of Z={z} not found in {candidates[0]}; pass --density")


def resolve_material(material: str, density: float | None, pdfiles: str) -> tuple[str, int, float]:
    z = element_z(material)
    symbol = SYMBOLS[z - 1]
    if density is None:
        density = DENSITY_OVERRIDES.get(symbol)
    if density is None:
        density = _table_density(z, pdfiles)
    if not (density > 0 and math.isfinite(density)):
        raise PenepmaError(f"density must be positive, got {density}")
    return symbol, z, float(density)


# --------------------------------------------------------------------------------------------------
# Input files


_GEO_SURFACE = """0000000000000000000000000000000000000000000000000000000000000000
SURFACE (   {idx}) {title}
INDICES=({indices})
X-SCALE=({xs},   0)              (DEFAULT=1.0)
Y-SCALE=({ys},   0)              (DEFAULT=1.0)
Z-SCALE=(+1.000000000000000E+00,   0)              (DEFAULT=1.0)
  OMEGA=(+0.000000000000000E+00,   0) DEG          (DEFAULT=0.0)
  THETA=({theta},   0) DEG          (DEFAULT=0.0)
    PHI=(+0.000000000000000E+00,   0) DEG          (DEFAULT=0.0)
X-SHIFT=(+0.000000000000000E+00,   0)              (DEFAULT=0.0)
Y-SHIFT=(+0.000000000000000E+00,   0)              (DEFAULT=0.0)
Z-SHIFT=({zs},   0)              (DEFAULT=0.0)
"""


def geometry_text(thickness_cm: float = 0.1, radius_cm: float = 0.1) -> str:
    """PENGEOM file: one body (material 1) between z = 0 and z = -thickness, inside a cylinder."""
    f = "{:+.15E}".format
    out = [
        "X" * 64,
        "       Bulk substrate (fibsynth PENEPMA benchmark)",
    ]
    text = "\n".join(out) + "\n"
    text += _GEO_SURFACE.format(idx=1, title=f"Cylinder of radius {radius_cm} cm along z-axis",
                                indices=" 1, 1, 0, 0,-1", xs=f(radius_cm), ys=f(radius_cm),
                                theta=f(0.0), zs=f(0.0))
    text += _GEO_SURFACE.format(idx=2, title="Plane Z=0", indices=" 0, 0, 0, 1, 0", xs=f(1.0), ys=f(1.0),
                                theta=f(0.0), zs=f(0.0))
    text += _GEO_SURFACE.format(idx=3, title=f"Plane Z=-{thickness_cm} cm", indices=" 0, 0, 0, 1, 0",
                                xs=f(1.0), ys=f(1.0), theta=f(0.0), zs=f(-thickness_cm))
    text += (
        "0000000000000000000000000000000000000000000000000000000000000000\n"
        "MODULE  (   1) Substrate\n"
        "MATERIAL(   1)\n"
        "SURFACE (   1), SIDE POINTER=(-1)\n"
        "SURFACE (   2), SIDE POINTER=(-1)\n"
        "SURFACE (   3), SIDE POINTER=( 1)\n"
        "1111111111111111111111111111111111111111111111111111111111111111\n"
        "  OMEGA=(+0.000000000000000E+00,   0) DEG          (DEFAULT=0.0)\n"
        "  THETA=(+0.000000000000000E+00,   0) DEG          (DEFAULT=0.0)\n"
        "    PHI=(+0.000000000000000E+00,   0) DEG          (DEFAULT=0.0)\n"
        "X-SHIFT=(+0.000000000000000E+00,   0)              (DEFAULT=0.0)\n"
        "Y-SHIFT=(+0.000000000000000E+00,   0)              (DEFAULT=0.0)\n"
        "Z-SHIFT=(+0.000000000000000E+00,   0)              (DEFAULT=0.0)\n"
        "0000000000000000000000000000000000000000000000000000000000000000\n"
        "END      0000000000000000000000000000000000000000000000000000000\n"
    )
    return text


def material_input(symbol: str, z: int, density: float, filename: str = "mat01.mat") -> str:
    # 1 = composition entered by hand; name; 1 element; Z; 2 = default mean excitation energy;
    # density; 2 = default plasmon parameters; output file name.
    return f"1\n{symbol}\n1\n{z}\n2\n{density:.6f}\n2\n{filename}\n"


def penepma_input(symbol: str, energy_ev: float, showers: int, params: dict, seed_index: int) -> str:
    p = params
    lines = [
        f"TITLE  bulk {symbol} {energy_ev:g} eV (fibsynth benchmark)",
        f"SENERG {energy_ev:.6g}",
        "SPOSIT 0 0 1",  # 1 cm above the surface, in vacuum
        "SDIREC 180 0",  # straight down (-z): normal incidence
        "SAPERT 0",
        "MFNAME mat01.mat",
        "MSIMPA {} {} {} {} {} {} {}".format(
            p["eabs_electron_eV"], p["eabs_photon_eV"], p["eabs_positron_eV"], p["c1"], p["c2"], p["wcc_eV"],
            p["wcr_eV"]),
        "GEOMFN sample.geo",
        f"NBE    0 {energy_ev:.6g} 100",
        "NBANGL 45 30",
        "PDANGL 0 90 0 360 0",
        f"PDENER 0 {energy_ev:.6g} 100",
        f"RSEED  -{seed_index} 1",
        f"NSIMSH {int(showers)}",
        "TIME   2e9",
        "END",
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Running


def _taskset_prefix(cpu: int | None) -> list[str]:
    if cpu is None:
        return []
    ts = shutil.which("taskset")
    return [ts, "-c", str(cpu)] if ts else []


def _run_exe(args, stdin_path, cwd, log_path, timeout_s, what):
    """Run one executable with stdin from a file; return (wall_s, cpu_s). Kills it on timeout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(stdin_path, "rb") as fin, open(log_path, "wb") as flog:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdin=fin, stdout=flog, stderr=subprocess.STDOUT, cwd=cwd,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise PenepmaTimeout(f"{what} exceeded the {timeout_s:g} s timeout (killed)")
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
        wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if rc != 0:
        tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-3:]
        raise PenepmaError(f"{what} exited with status {rc}: {' | '.join(tail)}")
    return wall, cpu


_RES_PATTERNS = {
    "showers_done": r"Simulated primary showers \.+\s*([-+0-9.Ee]+)",
    "upbound_primaries": r"Upbound primary particles \.+\s*([-+0-9.Ee]+)",
    "downbound_primaries": r"Downbound primary particles \.+\s*([-+0-9.Ee]+)",
    "absorbed_primaries": r"Absorbed primary particles \.+\s*([-+0-9.Ee]+)",
    "upbound_fraction_all_electrons": r"Upbound fraction \.+\s*([-+0-9.Ee]+)",
    "penepma_sim_seconds": r"Simulation time \.+\s*([-+0-9.Ee]+)",
    "penepma_showers_per_second": r"Simulation speed \.+\s*([-+0-9.Ee]+)",
}


def parse_results(text: str) -> dict:
    out = {}
    for key, pat in _RES_PATTERNS.items():
        m = re.search(pat, text)
        if m is None:
            raise PenepmaError(f"could not find {key!r} in penepma-res.dat")
        out[key] = float(m.group(1))
    return out


def run_penepma(material: str, energy_kev: float, showers: int, density: float | None = None, *,
                params: dict | None = None, seed_index: int = 1, cpu: int | None = 0,
                timeout_s: float = DEFAULT_TIMEOUT_S, keep_dir: str | None = None) -> dict:
    """One PENEPMA run of `showers` primary electrons at `energy_kev` on a bulk element.

    Returns a dict with eta (= upbound primaries / showers), eta_std (binomial, 1 sigma), seconds (wall time
    of the penepma process, start-up included), cpu_seconds, material_seconds, and PENEPMA's own figures.
    `cpu`: pin to this CPU with taskset (None: no pinning). `seed_index`: PENELOPE RSEED -k (1..1001).
    """
    showers = int(showers)
    if showers < 1:
        raise PenepmaError("showers must be >= 1")
    if not (0.05 <= energy_kev <= 1000):
        raise PenepmaError(f"energy_kev out of range: {energy_kev}")
    if not 1 <= seed_index <= 1001:
        raise PenepmaError("seed_index must be in 1..1001")
    prm = dict(DEFAULT_PARAMS)
    prm.update(params or {})
    exes = find_penepma()
    symbol, z, dens = resolve_material(material, density, exes["pdfiles"])
    energy_ev = float(energy_kev) * 1000.0
    if energy_ev <= prm["eabs_electron_eV"]:
        raise PenepmaError("beam energy must exceed the electron absorption energy")

    workdir = tempfile.mkdtemp(prefix="penepma-")
    try:
        wd = Path(workdir)
        os.symlink(exes["pdfiles"], wd / "pdfiles")  # `material` reads ./pdfiles/
        (wd / "material.in").write_text(material_input(symbol, z, dens))
        (wd / "sample.geo").write_text(geometry_text())
        (wd / "penepma.in").write_text(penepma_input(symbol, energy_ev, showers, prm, seed_index))

        t_mat, _ = _run_exe([exes["material"]], wd / "material.in", workdir, wd / "material.log",
                            min(timeout_s, 300), "PENELOPE material program")
        if not (wd / "mat01.mat").is_file():
            raise PenepmaError("material program did not write mat01.mat")

        wall, cpu_s = _run_exe(_taskset_prefix(cpu) + [exes["penepma"]], wd / "penepma.in", workdir,
                               wd / "penepma.log", timeout_s, "penepma")
        res_path = wd / "penepma-res.dat"
        if not res_path.is_file():
            tail = (wd / "penepma.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise PenepmaError("penepma wrote no penepma-res.dat: " + " | ".join(tail))
        res = parse_results(res_path.read_text(errors="replace"))
        if int(round(res["showers_done"])) != showers:
            raise PenepmaError(f"penepma simulated {res['showers_done']:g} showers, asked for {showers}")
        eta = res["upbound_primaries"] / showers
        result = {
            "material": symbol,
            "z": z,
            "density_g_cm3": dens,
            "energy_kev": float(energy_kev),
            "showers": showers,
            "eta": eta,
            "eta_std": math.sqrt(max(eta * (1 - eta), 0.0) / showers),
            "upbound_primaries": int(round(res["upbound_primaries"])),
            "upbound_fraction_all_electrons": res["upbound_fraction_all_electrons"],
            "transmitted_primaries": int(round(res["downbound_primaries"])),
            "seconds": wall,
            "cpu_seconds": cpu_s,
            "material_seconds": t_mat,
            "penepma_sim_seconds": res["penepma_sim_seconds"],
            "penepma_showers_per_second": res["penepma_showers_per_second"],
            "params": prm,
            "seed_index": seed_index,
            "pinned_cpu": cpu if _taskset_prefix(cpu) else None,
        }
        if keep_dir:
            dest = Path(keep_dir)
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("penepma.in", "sample.geo", "material.in", "penepma-res.dat", "penepma.dat"):
                if (wd / name).exists():
                    shutil.copy2(wd / name, dest / name)
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def marginal_rate(material: str, energy_kev: float, n: int, density: float | None = None, *,
                  params: dict | None = None, repeats: int = 1, cpu: int | None = 0,
                  timeout_s: float = DEFAULT_TIMEOUT_S, clock: str = "cpu") -> dict:
    """Runs of n and 2n showers (`repeats` pairs, one process at a time); marginal rate n / (t(2n) - t(n)).

    With repeats > 1 the median t(n) and median t(2n) are used. eta pools all runs (independent seeds).
    `clock`: which time gives "showers_per_second_marginal": "cpu" (default: the penepma process's user + sys
    CPU time, i.e. throughput per CPU core, robust to other jobs on this shared 2-core machine) or "wall"
    (perf_counter around the process); both are always reported, as ..._cpu and ..._wall.
    """
    n = int(n)
    if repeats < 1:
        raise PenepmaError("repeats must be >= 1")
    if clock not in ("wall", "cpu"):
        raise PenepmaError("clock must be 'wall' or 'cpu'")
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    runs_n, runs_2n = [], []
    seed = 1
    for _ in range(repeats):
        runs_n.append(run_penepma(material, energy_kev, n, density, params=params, seed_index=seed, cpu=cpu,
                                  timeout_s=timeout_s))
        runs_2n.append(run_penepma(material, energy_kev, 2 * n, density, params=params, seed_index=seed + 1,
                                   cpu=cpu, timeout_s=timeout_s))
        seed += 2

    def median(xs):
        xs = sorted(xs)
        k = len(xs)
        return xs[k // 2] if k % 2 else 0.5 * (xs[k // 2 - 1] + xs[k // 2])

    t_n = median([r["seconds"] for r in runs_n])
    t_2n = median([r["seconds"] for r in runs_2n])
    c_n = median([r["cpu_seconds"] for r in runs_n])
    c_2n = median([r["cpu_seconds"] for r in runs_2n])
    allruns = runs_n + runs_2n
    total = sum(r["showers"] for r in allruns)
    up = sum(r["upbound_primaries"] for r in allruns)
    eta = up / total
    dt, dc = t_2n - t_n, c_2n - c_n
    rate_wall = (n / dt) if dt > 0 else None
    rate_cpu = (n / dc) if dc > 0 else None
    first = runs_n[0]
    return {
        "material": first["material"],
        "energy_kev": float(energy_kev),
        "eta": eta,
        "eta_std": math.sqrt(eta * (1 - eta) / total),
        "showers": n,
        "seconds": t_n,
        "showers_per_second_marginal": rate_wall if clock == "wall" else rate_cpu,
        "clock": clock,
        "showers_per_second_marginal_wall": rate_wall,
        "showers_per_second_marginal_cpu": rate_cpu,
        "seconds_2n": t_2n,
        "cpu_seconds": c_n,
        "cpu_seconds_2n": c_2n,
        "startup_seconds_est": (t_n - (t_2n - t_n)),
        "penepma_showers_per_second": median([r["penepma_showers_per_second"] for r in runs_2n]),
        "upbound_fraction_all_electrons": sum(r["upbound_fraction_all_electrons"] * r["showers"]
                                              for r in allruns) / total,
        "showers_total_for_eta": total,
        "density_g_cm3": first["density_g_cm3"],
        "z": first["z"],
        "params": first["params"],
        "repeats": repeats,
        "pinned_cpu": first["pinned_cpu"],
        "program": "PENEPMA (PENELOPE 2014 build shipped in pymontecarlo-penepma)",
        "eta_source": "penepma-res.dat: Upbound primary particles / Simulated primary showers",
        "rate_source": f"{clock} time of the penepma process, N / (t(2N) - t(N))",
        "loadavg_1min_before": load_before,
        "loadavg_1min_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "warning": None if (rate_wall and rate_cpu) else "t(2N) <= t(N) for some clock: increase showers",
    }


# --------------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Run PENEPMA on a bulk element; eta and marginal showers/s.")
    p.add_argument("--material", required=True, help="element symbol or Z (e.g. Au, C, 29)")
    p.add_argument("--energy-kev", type=float, required=True, help="beam energy in keV")
    p.add_argument("--showers", type=int, default=20000, help="N: runs of N and 2N showers (default 20000)")
    p.add_argument("--density", type=float, default=None,
                   help="g/cm^3 (default: C 2.26, others from PENELOPE's pdcompos table)")
    p.add_argument("--single", action="store_true", help="one run of N showers only (no marginal rate)")
    p.add_argument("--repeats", type=int, default=1, help="N/2N pairs to run; medians are used (default 1)")
    p.add_argument("--cpu", type=int, default=0, help="pin penepma to this CPU with taskset (default 0)")
    p.add_argument("--no-pin", action="store_true", help="do not use taskset")
    p.add_argument("--clock", choices=("wall", "cpu"), default="cpu",
                   help="time behind showers_per_second_marginal (default cpu; both are reported)")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per penepma process")
    for key, val in DEFAULT_PARAMS.items():
        opt = "--" + key.replace("_eV", "").replace("_", "-")
        p.add_argument(opt, type=float, default=val, dest=key, help=f"default {val}")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _fmt(rate) -> str:
    return "n/a" if rate is None else f"{rate:.0f}"


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    params = {k: getattr(args, k) for k in DEFAULT_PARAMS}
    cpu = None if args.no_pin else args.cpu
    try:
        if args.single:
            out = run_penepma(args.material, args.energy_kev, args.showers, args.density, params=params,
                              cpu=cpu, timeout_s=args.timeout)
            out["showers_per_second_marginal"] = None
        else:
            out = marginal_rate(args.material, args.energy_kev, args.showers, args.density, params=params,
                                repeats=args.repeats, cpu=cpu, timeout_s=args.timeout, clock=args.clock)
    except PenepmaError as exc:
        msg = " ".join(str(exc).split())
        print(f"penepma_runner: error: {msg}", file=sys.stderr)
        if args.json:
            print(json.dumps({"error": msg, "material": args.material, "energy_kev": args.energy_kev}))
        return exc.exit_code
    except KeyboardInterrupt:
        print("penepma_runner: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(out))
    else:
        rate = out.get("showers_per_second_marginal")
        print(f"{out['material']} {out['energy_kev']:g} keV: eta = {out['eta']:.4f} +- {out['eta_std']:.4f}"
              f" ({out.get('showers_total_for_eta', out['showers'])} showers); "
              + (f"marginal {_fmt(out['showers_per_second_marginal_cpu'])} showers/s (cpu),"
                 f" {_fmt(out['showers_per_second_marginal_wall'])} (wall); t(N) = {out['seconds']:.2f} s"
                 if rate else f"t(N) = {out['seconds']:.2f} s"
                 + ("" if args.single else "; marginal rate undefined (t(2N) <= t(N)): increase --showers")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
