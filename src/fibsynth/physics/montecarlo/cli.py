"""``fibsynth mc``: electron Monte Carlo on bulk targets, films on substrates, and FIB-SEM stacks."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

import typer

from fibsynth.cliutil import emit_json, parse_list, parse_range
from fibsynth.errors import FibsynthError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

_ELASTIC_HELP = ("Elastic scattering: mott (default: Dirac partial-wave Mott tables, = mott-pwa), browning (Browning et al. 1994 fit to Mott "
                 "cross sections), mott-pwa (Dirac partial-wave tables) or rutherford (Joy's screened Rutherford).")
_ELASTIC_MODELS = ("mott", "browning", "rutherford", "mott-pwa")


_BINARY_HELP = ("Binary collisions with atomic electrons (inelastic deflection + straggling, restricted Joy-Luo "
                "stopping); --no-binary-collisions gives the elastic-only CSDA model.")


def _physics(elastic: str, cutoff_kev: float, binary: bool = True):
    from fibsynth.physics.montecarlo.engine import Physics

    if elastic not in _ELASTIC_MODELS:
        raise FibsynthError(f"--elastic must be one of {', '.join(_ELASTIC_MODELS)} (got {elastic!r})")
    if not (0.02 <= cutoff_kev <= 1.0):
        raise FibsynthError(f"--cutoff-kev must be in [0.02, 1] keV (got {cutoff_kev})")
    return Physics(elastic=elastic, cutoff_kev=cutoff_kev, inelastic_deflection=binary)


def _detector(e_min_kev: float, theta_min: float, theta_max: float):
    from fibsynth.physics.montecarlo.engine import Detector

    if not (0 <= e_min_kev <= 30):
        raise FibsynthError(f"--detector-emin-kev must be in [0, 30] keV (got {e_min_kev})")
    for name, v in (("--detector-theta-min", theta_min), ("--detector-theta-max", theta_max)):
        if not (0 <= v <= 180):
            raise FibsynthError(f"{name} must be in [0, 180] degrees (got {v})")
    if theta_max < theta_min:
        raise FibsynthError("--detector-theta-max must be >= --detector-theta-min")
    return Detector(e_min_kev=e_min_kev, theta_min_deg=theta_min, theta_max_deg=theta_max)


def _check_electrons(n: int, option: str = "--electrons", maximum: int = 10**10) -> int:
    if not (1 <= n <= maximum):
        raise FibsynthError(f"{option} must be in [1, {maximum}] (got {n})")
    return n


def _check_seed(seed: int) -> int:
    if not (0 <= seed < 2**63):
        raise FibsynthError(f"--seed must be in [0, 2^63) (got {seed})")
    return seed


def _material(spec: str, option: str):
    from fibsynth.physics.materials import get_material

    return get_material(spec, option)


def _backend(backend: str, device: str, numba_fn, torch_name: str):
    """The run function for ``--backend``: the numba engine, or the torch path bound to ``--device``."""
    if backend not in ("numba", "torch"):
        raise FibsynthError(f"--backend must be numba or torch (got {backend!r})")
    if backend == "numba":
        if device != "auto":
            raise FibsynthError("--device applies to --backend torch only")
        return numba_fn
    import functools

    from fibsynth.physics.montecarlo import gpu

    return functools.partial(getattr(gpu, torch_name), device=None if device == "auto" else device)


@app.command("bulk")
def bulk(
    material: str = typer.Option(..., "--material", help="Library name (epoxy, gold, ...), element, or FORMULA:DENSITY."),
    energy_kev: float = typer.Option(..., "--energy-kev", help="Beam energy in keV (0.2-30)."),
    electrons: int = typer.Option(100000, "--electrons", help="Number of primary electrons."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    incidence_deg: float = typer.Option(0.0, "--incidence-deg", help="Angle between beam and surface normal."),
    elastic: str = typer.Option("mott", "--elastic", help=_ELASTIC_HELP),
    cutoff_kev: float = typer.Option(0.05, "--cutoff-kev", help="Energy below which electrons are absorbed."),
    binary: bool = typer.Option(True, "--binary-collisions/--no-binary-collisions", help=_BINARY_HELP),
    det_emin: float = typer.Option(0.0, "--detector-emin-kev", help="Detect only BSE with E >= this (keV)."),
    det_tmin: float = typer.Option(0.0, "--detector-theta-min", help="Detector acceptance: min angle to column axis."),
    det_tmax: float = typer.Option(180.0, "--detector-theta-max", help="Detector acceptance: max angle to column axis."),
    backend: str = typer.Option("numba", "--backend", help="numba (CPU kernel) or torch (vectorised; GPU when present)."),
    device: str = typer.Option("auto", "--device", help="With --backend torch: auto, cpu, cuda or cuda:N."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Backscatter coefficient of a bulk target (binomial standard error sqrt(eta(1-eta)/N))."""
    from fibsynth.physics.montecarlo.engine import bulk_eta, check_energy

    check_energy(energy_kev)
    mat = _material(material, "--material")
    run = _backend(backend, device, bulk_eta, "bulk_eta_torch")
    res = run(mat, energy_kev, _check_electrons(electrons), seed=_check_seed(seed),
              physics=_physics(elastic, cutoff_kev, binary), detector=_detector(det_emin, det_tmin, det_tmax),
              incidence_deg=incidence_deg)
    out = {"eta": res.eta, "eta_std": res.eta_std, "electrons": res.electrons,
           "electrons_per_second": res.electrons_per_second}
    if (det_emin, det_tmin, det_tmax) != (0.0, 0.0, 180.0):
        out.update({"detected": res.detected_fraction, "detected_std": res.detected_std})
    if as_json:
        emit_json(out)
    else:
        typer.echo(f"{mat.describe()} at {energy_kev:g} keV: eta = {res.eta:.4f} +- {res.eta_std:.4f} "
                   f"({res.electrons} electrons, {res.electrons_per_second:.0f} electrons/s)")
        if "detected" in out:
            typer.echo(f"detected fraction = {res.detected_fraction:.4f} +- {res.detected_std:.4f}")


@app.command("layers")
def layers(
    film: str = typer.Option(..., "--film", help="Film material."),
    substrate: str = typer.Option(..., "--substrate", help="Substrate material."),
    thickness_nm: str = typer.Option(..., "--thickness-nm", help="START:STOP:STEP (STOP inclusive) or one value, nm."),
    energy_kev: str = typer.Option(..., "--energy-kev", help="Comma-separated beam energies in keV."),
    electrons: int = typer.Option(20000, "--electrons", help="Primary electrons per (energy, thickness)."),
    out: Path = typer.Option(..., "--out", help="CSV table to write."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    incidence_deg: float = typer.Option(0.0, "--incidence-deg", help="Angle between beam and surface normal."),
    elastic: str = typer.Option("mott", "--elastic", help=_ELASTIC_HELP),
    cutoff_kev: float = typer.Option(0.05, "--cutoff-kev", help="Energy below which electrons are absorbed."),
    binary: bool = typer.Option(True, "--binary-collisions/--no-binary-collisions", help=_BINARY_HELP),
    backend: str = typer.Option("numba", "--backend", help="numba (CPU kernel) or torch (vectorised; GPU when present)."),
    device: str = typer.Option("auto", "--device", help="With --backend torch: auto, cpu, cuda or cuda:N."),
) -> None:
    """Backscatter coefficient of a film on a substrate vs thickness and energy; writes a CSV table."""
    from rich.progress import Progress

    from fibsynth.io import atomic_path
    from fibsynth.physics.montecarlo.engine import check_energy, film_eta

    ts = parse_range(thickness_nm, "--thickness-nm", minimum=0.0)
    es = [check_energy(e) for e in parse_list(energy_kev, "--energy-kev")]
    fm = _material(film, "--film")
    sm = _material(substrate, "--substrate")
    phys = _physics(elastic, cutoff_kev, binary)
    film_run = _backend(backend, device, film_eta, "film_eta_torch")
    _check_electrons(electrons)
    _check_seed(seed)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["energy_kev", "film", "substrate", "thickness_nm", "eta", "eta_std"])
    with Progress(transient=True) as prog:
        task = prog.add_task("mc layers", total=len(ts) * len(es))
        for i, e in enumerate(es):
            for j, t in enumerate(ts):
                r = film_run(fm, sm, t, e, electrons, seed=seed, physics=phys, incidence_deg=incidence_deg,
                             stream=i * 100003 + j)
                w.writerow([f"{e:g}", film, substrate, f"{t:g}", f"{r.eta:.6f}", f"{r.eta_std:.6f}"])
                prog.advance(task)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(buf.getvalue())
    typer.echo(f"wrote {out} ({len(ts) * len(es)} rows)", err=True)


@app.command("stack")
def stack(
    structure: Path = typer.Argument(..., help="Binary structure (1 = solid) readable by fibsynth.io."),
    out: Path = typer.Argument(..., help="Output image stack (.tif, .zarr, .npy or folder)."),
    energy_kev: float = typer.Option(..., "--energy-kev", help="Beam energy in keV (0.2-30)."),
    electrons_per_pixel: int = typer.Option(..., "--electrons-per-pixel", help="Primary electrons per pixel."),
    solid: str = typer.Option("gold", "--solid", help="Material of solid voxels (1)."),
    pore: str = typer.Option("epoxy", "--pore", help="Material of pore voxels (0)."),
    backing: str = typer.Option("pore", "--backing", help="Beyond the last slice: pore, solid, repeat, or a material."),
    incidence_deg: float = typer.Option(38.0, "--incidence-deg", help="Beam angle to the face normal (52-deg tilt = 38)."),
    probe_nm: float = typer.Option(0.0, "--probe-nm", help="Probe size: FWHM of the Gaussian probe in nm (0 = point)."),
    slices: Optional[str] = typer.Option(None, "--slices", help="K0:K1 simulates slices K0..K1-1 only."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    voxel_nm: Optional[float] = typer.Option(None, "--voxel-nm", help="Pixel size x = y in nm (overrides metadata)."),
    slice_nm: Optional[float] = typer.Option(None, "--slice-nm", help="Slice thickness z in nm (overrides metadata)."),
    elastic: str = typer.Option("mott", "--elastic", help=_ELASTIC_HELP),
    cutoff_kev: float = typer.Option(0.05, "--cutoff-kev", help="Energy below which electrons are absorbed."),
    binary: bool = typer.Option(True, "--binary-collisions/--no-binary-collisions", help=_BINARY_HELP),
    det_emin: float = typer.Option(0.0, "--detector-emin-kev", help="Detect only BSE with E >= this (keV)."),
    det_tmin: float = typer.Option(0.0, "--detector-theta-min", help="Detector acceptance: min angle to column axis."),
    det_tmax: float = typer.Option(180.0, "--detector-theta-max", help="Detector acceptance: max angle to column axis."),
    dose: float = typer.Option(0.0, "--shot-noise-dose", help="Add Poisson shot noise of a real dose of this many electrons per pixel (0 = none)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a dask scheduler to use."),
    workers: int = typer.Option(0, "--workers", help="Local dask workers (0 = one per CPU; 1 = in-process, no dask)."),
    resume: bool = typer.Option(False, "--resume", help="Skip slices already done in OUT's work store."),
    backend: str = typer.Option("numba", "--backend", help="numba (CPU kernel, dask slices) or torch (vectorised, "
                                "one process; GPU when present: use with --workers 1)."),
    device: str = typer.Option("auto", "--device", help="With --backend torch: auto, cpu, cuda or cuda:N."),
) -> None:
    """Simulate a FIB-SEM backscatter image stack of a binary structure, slice by slice."""
    from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack_cli

    settings = StackSettings.build(
        None,
        energy_kev=energy_kev, electrons_per_pixel=electrons_per_pixel, solid=solid, pore=pore, backing=backing,
        incidence_deg=incidence_deg, probe_fwhm_nm=probe_nm, seed=seed, elastic=elastic, cutoff_kev=cutoff_kev,
        inelastic_deflection=binary, detector_emin_kev=det_emin, detector_theta_min_deg=det_tmin, detector_theta_max_deg=det_tmax,
        shot_noise_dose=dose,
    )
    simulate_stack_cli(structure, out, settings, slices=slices, voxel_nm=voxel_nm, slice_nm=slice_nm,
                       scheduler=scheduler, workers=workers, resume=resume, backend=backend,
                       device=None if device == "auto" else device)
