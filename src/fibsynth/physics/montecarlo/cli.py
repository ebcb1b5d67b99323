"""``fibsynth mc``: electron Monte Carlo on bulk targets, films on substrates, and FIB-SEM stacks."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Optional

import typer

from fibsynth.cliutil import emit_json, parse_list, parse_range, set_interrupt_note
from fibsynth.errors import FibsynthError, register_flag_names

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

from fibsynth.physics.elastic import MODELS as _ELASTIC_MODELS  # noqa: E402

_ELASTIC_HELP = (f"Elastic scattering, one of {', '.join(_ELASTIC_MODELS)}: mott (default: Dirac partial-wave Mott "
                 "tables, = mott-pwa), browning (Browning et al. 1994 fit to Mott cross sections), mott-pwa (Dirac "
                 "partial-wave tables) or rutherford (Joy's screened Rutherford).")

_BINARY_HELP = ("Binary collisions with atomic electrons (inelastic deflection + straggling, restricted Joy-Luo "
                "stopping); --no-binary-collisions gives the elastic-only CSDA model.")

# Python parameters (and settings fields) whose flag is not the default --param-name
_FLAGS = {
    "inelastic_deflection": "--binary-collisions",
    "physics.inelastic_deflection": "--binary-collisions",
    "physics.elastic": "--elastic",
    "physics.cutoff_kev": "--cutoff-kev",
    "physics.angular_sampling": "--elastic",
    "e_min_kev": "--detector-emin-kev",
    "theta_min_deg": "--detector-theta-min",
    "theta_max_deg": "--detector-theta-max",
    "detector": "--detector-theta-min/--detector-theta-max",
    "detector.e_min_kev": "--detector-emin-kev",
    "detector.theta_min_deg": "--detector-theta-min",
    "detector.theta_max_deg": "--detector-theta-max",
    "beam.energy_kev": "--energy-kev",
    "beam.incidence_deg": "--incidence-deg",
    "beam.probe_fwhm_nm": "--probe-nm",
    "probe_fwhm_nm": "--probe-nm",
    "shot_noise_dose": "--shot-noise-dose",
    "structure": "STRUCTURE",
    "geometry.materials": "--materials",
    "signal": "--detector",
    "kind": "--detector",
    "se_efficiency": "--se-efficiency",
    "bse_weight": "--bse-weight",
    "inlens_bse_theta_deg": "--inlens-bse-theta",
    "et_elevation_deg": "--et-elevation",
    "et_azimuth_deg": "--et-azimuth",
    "et_half_angle_deg": "--et-half-angle",
    "trench_width_nm": "--trench-width-nm",
    "trench_depth_nm": "--trench-depth-nm",
    "et_se3": "--et-se3",
}

_DETECTOR_HELP = ("Image signal: bse (backscattered electrons, the --detector-* acceptance), se (every escaping "
                  "secondary electron), inlens (SE + BSE near the column axis) or et (Everhart-Thornley: SE and a "
                  "BSE share, shadowed by the trench walls). See docs/montecarlo.md.")


def _signal(kind: str, **values):
    """The SE detector model of ``mc stack --detector`` (None for bse); only the options given are passed."""
    from fibsynth.physics.montecarlo.detectors import DETECTORS, SignalDetector

    kind = kind.strip().lower()
    if kind not in DETECTORS:
        raise FibsynthError(f"must be one of {', '.join(DETECTORS)} (got {kind!r})", param="signal")
    given = {k: v for k, v in values.items() if v is not None}
    if kind == "bse":
        if given:
            raise FibsynthError(f"{', '.join(sorted(given))}: options of an SE detector (inlens, et), not of bse",
                                param="signal")
        return None
    if kind != "et" and given.get("et_se3", 0.0) > 0.0:
        raise FibsynthError(f"SE3 is modelled for the et detector only, not {kind}", param="et_se3")
    return SignalDetector.build(None, kind=kind, **given)


def _physics(elastic: str, cutoff_kev: float, binary: bool = True):
    from fibsynth.physics.montecarlo.settings import Physics

    return Physics.build(None, elastic=elastic, cutoff_kev=cutoff_kev, inelastic_deflection=binary)


def _detector(e_min_kev: float, theta_min: float, theta_max: float):
    from fibsynth.physics.montecarlo.settings import Detector

    return Detector.build(None, e_min_kev=e_min_kev, theta_min_deg=theta_min, theta_max_deg=theta_max)


def _check_backend(backend: str, device: str, *, workers: int = 1, scheduler: str | None = None) -> None:
    """The --backend / --device / --workers combination (CLI wording; the library checks the same in its terms)."""
    if backend not in ("numba", "torch"):
        raise FibsynthError(f"--backend must be numba or torch (got {backend!r})")
    if backend == "numba" and device != "auto":
        raise FibsynthError("--device applies to --backend torch only")
    if backend == "torch" and (scheduler is not None or workers != 1):
        raise FibsynthError("--backend torch runs in one process: use --workers 1 and no --scheduler")


def _table_out(out: Path) -> None:
    """--out of a table command: a file whose suffix is not a volume format, never an existing folder."""
    if out.is_dir():
        raise FibsynthError(f"{out} is a folder: give a file name for the CSV table (e.g. {out / 'eta.csv'})")
    if out.suffix.lower() in (".tif", ".tiff", ".zarr", ".npy", ".png", ".jpg", ".bmp", ".json", ".yaml", ".yml"):
        raise FibsynthError(f"--out {out}: writes a CSV table; use a .csv (or .txt) name, not {out.suffix}")
    from fibsynth.io.outputs import check_output

    check_output(out, kind="table", param="out")


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
    secondary: bool = typer.Option(False, "--secondary", help="Also tally secondary electrons: yield delta = SE1 + "
                                   "SE2 (numba backend; model in docs/montecarlo.md)."),
) -> None:
    """Backscatter coefficient of a bulk target (binomial standard error sqrt(eta(1-eta)/N))."""
    from fibsynth.physics.montecarlo.engine import bulk_eta

    register_flag_names(**_FLAGS)
    _check_backend(backend, device)
    se = None
    if secondary:
        from fibsynth.physics.montecarlo.secondary import bulk_se_yield

        if backend != "numba":
            raise FibsynthError("secondary electrons are tallied by the numba backend only", param="backend")
        se = bulk_se_yield(material, energy_kev, electrons, seed=seed, physics=_physics(elastic, cutoff_kev, binary),
                           detector=_detector(det_emin, det_tmin, det_tmax), incidence_deg=incidence_deg)
        res = se.bse
    else:
        res = bulk_eta(material, energy_kev, electrons, seed=seed, physics=_physics(elastic, cutoff_kev, binary),
                       detector=_detector(det_emin, det_tmin, det_tmax), incidence_deg=incidence_deg,
                       backend=backend, device=None if device == "auto" else device)
    mat = res.parameters["substrate"]
    out = {"eta": res.eta, "eta_std": res.eta_std, "electrons": res.electrons,
           "electrons_per_second": res.electrons_per_second}
    if se is not None:
        out.update({"delta": se.delta, "se1": se.se1, "se2": se.se2})
    if (det_emin, det_tmin, det_tmax) != (0.0, 0.0, 180.0):
        out.update({"detected": res.detected_fraction, "detected_std": res.detected_std})
    if as_json:
        emit_json(out)
    else:
        typer.echo(f"{mat} at {energy_kev:g} keV: eta = {res.eta:.4f} +- {res.eta_std:.4f} "
                   f"({res.electrons} electrons, {res.electrons_per_second:.0f} electrons/s)")
        if "detected" in out:
            typer.echo(f"detected fraction = {res.detected_fraction:.4f} +- {res.detected_std:.4f}")
        if se is not None:
            typer.echo(f"SE yield delta = {se.delta:.4f} (SE1 {se.se1:.4f}, SE2 {se.se2:.4f})")


@app.command("layers")
def layers(
    film: str = typer.Option(..., "--film", help="Film material."),
    substrate: str = typer.Option(..., "--substrate", help="Substrate material (vacuum: a free-standing film)."),
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
    from fibsynth.io import atomic_path
    from fibsynth.physics.materials import get_material
    from fibsynth.physics.montecarlo.engine import film_eta
    from fibsynth.physics.montecarlo.settings import check_energy
    from fibsynth.physics.montecarlo.stack import terminal_progress

    register_flag_names(**_FLAGS)
    _table_out(out)
    _check_backend(backend, device)
    ts = parse_range(thickness_nm, "--thickness-nm", minimum=0.0)
    es = [check_energy(e) for e in parse_list(energy_kev, "--energy-kev")]
    fm = get_material(film, "film")
    sm = get_material(substrate, "substrate", allow_vacuum=True)  # vacuum: a free-standing film
    phys = _physics(elastic, cutoff_kev, binary)
    dev = None if device == "auto" else device
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["energy_kev", "film", "substrate", "thickness_nm", "eta", "eta_std"])
    progress, stop = terminal_progress("mc layers")
    try:
        for i, e in enumerate(es):
            for j, t in enumerate(ts):
                r = film_eta(fm, sm, t, e, electrons, seed=seed, physics=phys, incidence_deg=incidence_deg,
                             stream=i * 100003 + j, backend=backend, device=dev)
                w.writerow([f"{e:g}", film, substrate, f"{t:g}", f"{r.eta:.6f}", f"{r.eta_std:.6f}"])
                progress(i * len(ts) + j + 1, len(ts) * len(es))
    finally:
        stop()
    with atomic_path(out) as tmp:
        Path(tmp).write_text(buf.getvalue())
    typer.echo(f"wrote {out} ({len(ts) * len(es)} rows)", err=True)


@app.command("stack")
def stack(
    structure: Path = typer.Argument(..., help="Binary structure (1 = solid) readable by fibsynth.io."),
    out: Path = typer.Argument(..., help="Output image stack (.tif, .zarr, .npy or folder)."),
    energy_kev: float = typer.Option(..., "--energy-kev", help="Beam energy in keV (0.2-30)."),
    electrons_per_pixel: int = typer.Option(..., "--electrons-per-pixel", help="Primary electrons per pixel."),
    solid: Optional[str] = typer.Option(None, "--solid", help="Material of solid voxels (1); default gold."),
    pore: Optional[str] = typer.Option(None, "--pore", help="Material of pore voxels (0); default epoxy; vacuum = "
                                       "open (empty) pores."),
    materials: Optional[str] = typer.Option(None, "--materials", help="One material per label 0,1,...,n-1, comma-"
                                            "separated (e.g. epoxy,Au,Ni for a 3-phase structure; vacuum allowed); "
                                            "instead of --solid/--pore."),
    backing: str = typer.Option("pore", "--backing", help="Beyond the last slice: pore (label 0's material), solid, "
                                "repeat, or a material (or vacuum)."),
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
    detector: str = typer.Option("bse", "--detector", help=_DETECTOR_HELP),
    se_efficiency: Optional[float] = typer.Option(None, "--se-efficiency", help="inlens/et: fraction of the SE "
                                                  "that reach the detector (default 1)."),
    bse_weight: Optional[float] = typer.Option(None, "--bse-weight", help="inlens/et: signal of one collected BSE "
                                               "in SE (default 1)."),
    inlens_bse_theta: Optional[float] = typer.Option(None, "--inlens-bse-theta", help="inlens: BSE within this "
                                                     "angle of the column axis count (default 10 deg)."),
    et_elevation: Optional[float] = typer.Option(None, "--et-elevation", help="et: detector elevation above the "
                                                 "sample surface (default 30 deg)."),
    et_azimuth: Optional[float] = typer.Option(None, "--et-azimuth", help="et: detector azimuth, 0 = side (+x), "
                                               "90 = out of the trench front (default 45 deg)."),
    et_half_angle: Optional[float] = typer.Option(None, "--et-half-angle", help="et: half-angle of the "
                                                  "scintillator seen from the sample (default 10 deg)."),
    trench_width_nm: Optional[float] = typer.Option(None, "--trench-width-nm", help="et: trench width (default "
                                                    "the face width)."),
    trench_depth_nm: Optional[float] = typer.Option(None, "--trench-depth-nm", help="et: depth of the face's "
                                                    "first row below the sample surface (default 0)."),
    et_se3: Optional[float] = typer.Option(None, "--et-se3", help="et: SE3 -- SE collected per BSE that leaves "
                                           "the trench (made on the pole piece and chamber walls; default 0 = "
                                           "off; depends on the chamber)."),
) -> None:
    """Simulate a FIB-SEM image stack (BSE, or SE with --detector se|inlens|et) of a binary structure (or of
    labels 0..n-1 with --materials), slice by slice."""
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.stack import work_path
    from fibsynth.physics.montecarlo.stack_file import simulate_stack_file

    register_flag_names(**_FLAGS, out="OUT")
    _check_backend(backend, device, workers=workers, scheduler=scheduler)
    geometry_fields = {k: v for k, v in (("solid", solid), ("pore", pore)) if v is not None}
    if materials is not None:
        geometry_fields["materials"] = [m.strip() for m in materials.split(",")]
    settings = StackSettings.build(
        None,
        beam=Beam.build(None, energy_kev=energy_kev, incidence_deg=incidence_deg, probe_fwhm_nm=probe_nm),
        physics=_physics(elastic, cutoff_kev, binary),
        detector=_detector(det_emin, det_tmin, det_tmax),
        geometry=StackGeometry.build(None, backing=backing, **geometry_fields),
        electrons_per_pixel=electrons_per_pixel, seed=seed, shot_noise_dose=dose,
        signal=_signal(detector, se_efficiency=se_efficiency, bse_weight=bse_weight,
                       inlens_bse_theta_deg=inlens_bse_theta, et_elevation_deg=et_elevation,
                       et_azimuth_deg=et_azimuth, et_half_angle_deg=et_half_angle, trench_width_nm=trench_width_nm,
                       trench_depth_nm=trench_depth_nm, et_se3=et_se3),
    )
    set_interrupt_note(f"finished slices kept in {work_path(out)}; --resume continues")
    res = simulate_stack_file(structure, out, settings, slices=slices, voxel_nm=voxel_nm, slice_nm=slice_nm,
                              scheduler=scheduler, workers=workers, resume=resume, backend=backend,
                              device=None if device == "auto" else device, progress=True)
    k0, k1 = res["slices"]
    typer.echo(f"wrote {res['out']} and {res['std']} (slices {k0}:{k1}, {res['simulated']} simulated in "
               f"{res['seconds']:.1f} s)", err=True)

