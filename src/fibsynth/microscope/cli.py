"""``fibsynth microscope ...``: apply the microscope model to a simulated stack, correct a real stack, estimate a
real stack's microscope."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from fibsynth.errors import FibsynthError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)

_OUT_HELP = "Output volume: .tif/.tiff, .npy, a folder name (TIFF slices) or .zarr."

# flat command-line options -> (section, field) of MicroscopeModel
_APPLY_FIELDS: dict[str, tuple[str, str]] = {
    "dose": ("detector", "electrons_per_pixel"),
    "beam_current_pa": ("detector", "beam_current_pa"),
    "dwell_us": ("detector", "dwell_us"),
    "efficiency": ("detector", "efficiency"),
    "gain": ("detector", "gain"),
    "dark_offset": ("detector", "dark_offset"),
    "read_noise": ("detector", "read_noise"),
    "response": ("detector", "response"),
    "gamma": ("detector", "gamma"),
    "bits": ("detector", "bits"),
    "line_jitter_px": ("detector", "line_jitter_px"),
    "line_offset_std": ("detector", "line_offset_std"),
    "curtain_amplitude": ("curtaining", "amplitude"),
    "curtain_width_px": ("curtaining", "width_px"),
    "shading_depth": ("shading", "depth"),
    "tilt": ("shading", "tilt"),
    "contrast_drift": ("drift", "contrast_rms"),
    "brightness_drift": ("drift", "brightness_rms"),
    "xy_drift_px": ("drift", "xy_step_px"),
    "blur_px": ("drift", "blur_px"),
    "focus_drift_px": ("drift", "focus_rms_px"),
    "charging": ("charging", "strength"),
    "fiducial_px": ("fiducial", "height_px"),
}


def _check_out(out: Path, inputs: list, param: str) -> None:
    """Before any work: the output can be written and replaces nothing but fibsynth's own (docs/safety.md)."""
    from fibsynth.io import check_output

    check_output(out, inputs=inputs, param=param)


def _check_file(path: Optional[Path], inputs: list, suffixes: tuple[str, ...], param: str) -> None:
    if path is not None:
        from fibsynth.io import check_output

        check_output(path, inputs=inputs, suffixes=suffixes, kind="file", param=param)


def _write(out: Path, data: Any, meta: Any, dtype: str) -> None:
    import numpy as np

    from fibsynth.io import write_volume

    x = np.asarray(data, np.float64)
    if dtype in ("uint8", "uint16"):
        q = float(np.iinfo(dtype).max)
        x = np.round(np.clip(x, 0, 1) * q).astype(dtype)
    else:
        x = x.astype(np.float32)
    write_volume(out, x, meta)


def _panel(path: Optional[Path], before: Any, after: Any, titles: tuple[str, str]) -> None:
    if path is None:
        return
    from fibsynth.io import atomic_path
    from fibsynth.microscope.panel import before_after_png

    png = before_after_png(before, after, titles=titles)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)


def _slice_list(slices: list[int], most: int = 8) -> str:
    """``0, 5, 9`` (at most ``most`` of them, then ``... (N in all)``), slices counted from 0 as in napari."""
    shown = ", ".join(str(k) for k in slices[:most])
    return shown if len(slices) <= most else f"{shown}, ... ({len(slices)} in all)"


def _dtype(dtype: str) -> str:
    if dtype not in ("float32", "uint8", "uint16"):
        raise FibsynthError(f"one of float32, uint8, uint16 (got {dtype!r})", param="dtype")
    return dtype


@app.command("apply")
def apply_cmd(
    inp: Path = typer.Argument(..., help="Simulated image stack (backscatter yield; integer stacks are read as "
                               "fractions of full scale)."),
    out: Path = typer.Argument(..., help=_OUT_HELP),
    config: Optional[Path] = typer.Option(None, "--config", help="Microscope model as YAML (sections detector, "
                                          "curtaining, shading, drift, charging; see docs/microscope.md)."),
    random: Optional[float] = typer.Option(None, "--random", help="Draw a random microscope of this strength "
                                           "(0 ideal ... 1 typical ... 2 bad) from --seed; options below override it."),
    seed: int = typer.Option(0, "--seed", help="Seed of the noise and of every random artifact."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Labels of the stack (0 = epoxy): mark the epoxy "
                                          "for charging; moved with the image into --labels-out."),
    labels_out: Optional[Path] = typer.Option(None, "--labels-out", help="Write the labels moved with the image."),
    dtype: str = typer.Option("float32", "--dtype", help="float32, or uint8/uint16 (full scale = 1)."),
    panel: Optional[Path] = typer.Option(None, "--panel", help="Write a before/after PNG."),
    dose: Optional[float] = typer.Option(None, "--dose", help="Primary electrons per pixel (shot noise)."),
    beam_current_pa: Optional[float] = typer.Option(None, "--beam-current-pa", help="Probe current, pA (dose with --dwell-us)."),
    dwell_us: Optional[float] = typer.Option(None, "--dwell-us", help="Pixel dwell time, microseconds."),
    efficiency: Optional[float] = typer.Option(None, "--efficiency", help="Fraction of backscattered electrons counted."),
    gain: Optional[float] = typer.Option(None, "--gain", help="Output units per unit of backscatter yield."),
    dark_offset: Optional[float] = typer.Option(None, "--dark-offset", help="Black level, output units."),
    read_noise: Optional[float] = typer.Option(None, "--read-noise", help="Gaussian amplifier noise std, output units."),
    response: Optional[str] = typer.Option(None, "--response", help="linear, gamma or saturating."),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="Exponent of the gamma response."),
    bits: Optional[int] = typer.Option(None, "--bits", help="Digitiser bit depth (clips to [0, 1] and quantises)."),
    line_jitter_px: Optional[float] = typer.Option(None, "--line-jitter-px", help="Scan-line x jitter std, px."),
    line_offset_std: Optional[float] = typer.Option(None, "--line-offset-std", help="Scan-line offset std, output units."),
    curtain_amplitude: Optional[float] = typer.Option(None, "--curtain-amplitude", help="Curtain stripes' rms, yield units."),
    curtain_width_px: Optional[float] = typer.Option(None, "--curtain-width-px", help="Mean stripe width, px."),
    shading_depth: Optional[float] = typer.Option(None, "--shading-depth", help="Trench shadow at the bottom row (0..1)."),
    tilt: Optional[float] = typer.Option(None, "--tilt", help="Left-right brightness tilt (relative)."),
    contrast_drift: Optional[float] = typer.Option(None, "--contrast-drift", help="rms relative beam-current drift."),
    brightness_drift: Optional[float] = typer.Option(None, "--brightness-drift", help="rms black-level drift."),
    xy_drift_px: Optional[float] = typer.Option(None, "--xy-drift-px", help="Std of the slice-to-slice xy shift, px."),
    blur_px: Optional[float] = typer.Option(None, "--blur-px", help="Probe blur sigma, px."),
    focus_drift_px: Optional[float] = typer.Option(None, "--focus-drift-px", help="rms extra blur from focus drift, px."),
    charging: Optional[float] = typer.Option(None, "--charging", help="Charging-streak strength in epoxy (yield units)."),
    fiducial_px: Optional[int] = typer.Option(None, "--fiducial-px", help="Rows of a static fiducial band at the "
                                              "top (protective cap with milled X marks; 'fiducial' section of "
                                              "--config for the rest); 0 = off."),
) -> None:
    """Give a simulated stack the look of a real FIB-SEM: noise, detector, curtains, shading, drift, charging."""
    import numpy as np

    from fibsynth.errors import register_flag_names
    from fibsynth.io import read_volume
    from fibsynth.microscope.config import MicroscopeModel
    from fibsynth.microscope.forward import apply
    from fibsynth.microscope.inverse import as_full_scale

    register_flag_names(**{f"{sec}.{fld}": "--" + opt.replace("_", "-") for opt, (sec, fld) in _APPLY_FIELDS.items()},
                        strength="--random", out="OUT")
    flat = dict(dose=dose, beam_current_pa=beam_current_pa, dwell_us=dwell_us, efficiency=efficiency, gain=gain,
                dark_offset=dark_offset, read_noise=read_noise, response=response, gamma=gamma, bits=bits,
                line_jitter_px=line_jitter_px, line_offset_std=line_offset_std, curtain_amplitude=curtain_amplitude,
                curtain_width_px=curtain_width_px, shading_depth=shading_depth, tilt=tilt,
                contrast_drift=contrast_drift, brightness_drift=brightness_drift, xy_drift_px=xy_drift_px,
                blur_px=blur_px, focus_drift_px=focus_drift_px, charging=charging, fiducial_px=fiducial_px)
    _dtype(dtype)
    ins = [inp, labels, config]
    _check_out(out, ins, "out")
    if labels_out is not None:
        if labels is None:
            raise FibsynthError("needs --labels", param="labels_out")
        _check_out(labels_out, ins + [out], "labels_out")
    _check_file(panel, ins + [out, labels_out], (".png",), "panel")
    if config is not None and random is not None:
        raise FibsynthError("give either --config or --random, not both", param="random")
    if config is not None:
        base = MicroscopeModel.from_yaml(config).model_dump()
    elif random is not None:
        base = MicroscopeModel.sample(seed, strength=random).model_dump()
    else:
        base = MicroscopeModel().model_dump()
    for opt, v in flat.items():
        if v is not None:
            sec, fld = _APPLY_FIELDS[opt]
            base[sec][fld] = v
    base["seed"] = seed
    model = MicroscopeModel.build(**base)
    vol = read_volume(inp)
    x = as_full_scale(vol.data)
    lab = None
    if labels is not None:
        lab = np.asarray(read_volume(labels).data)
        if lab.shape != x.shape:
            raise FibsynthError(f"shape {lab.shape} differs from the stack's {x.shape}", labels)
    res = apply(x, model, labels=lab)
    params = {**vol.meta.parameters,
              "microscope": {**dict(vol.meta.parameters.get("microscope") or {}), "applied": res.record}}
    meta = vol.meta.with_updates(kind="image", generator=f"microscope model ({vol.meta.generator or 'input'})",
                                 parameters=params, seed=seed)
    _write(out, res.image, meta, dtype)
    if labels_out is not None and res.labels is not None:
        from fibsynth.io import write_volume

        lmeta = meta.with_updates(kind="label", generator="labels moved with the microscope model")
        write_volume(labels_out, np.asarray(res.labels).astype(np.uint8), lmeta)
    _panel(panel, x, res.image, ("simulated", "microscope model"))


@app.command("correct")
def correct_cmd(
    ctx: typer.Context,
    inp: Path = typer.Argument(..., help="Real FIB-SEM stack (any bit depth; integers read as fractions of full scale)."),
    out: Path = typer.Argument(..., help=_OUT_HELP),
    align: bool = typer.Option(False, "--align", help="Register each slice onto the previous one (sub-pixel)."),
    upsample: int = typer.Option(20, "--upsample", help="Registration precision: 1/UPSAMPLE px."),
    max_shift_px: Optional[float] = typer.Option(None, "--max-shift-px", help="Reject slice-to-slice shifts larger "
                                                 "than this (failed registrations)."),
    align_method: str = typer.Option("chain", "--align-method", help="chain (each slice onto the previous one), "
                                     "neighbours (also onto the two before it, robust least squares: averages "
                                     "the registration noise of noisy stacks) or template (onto the median of "
                                     "the aligned neighbours)."),
    align_region: Optional[str] = typer.Option(None, "--align-region", help="Register on this rectangle only, "
                                               "Y0:Y1,X0:X1 (pixels, half-open, as in the first slice): a band that "
                                               "does not change from slice to slice, e.g. fiducial marks milled into "
                                               "the protective cap; the whole slices are moved. 'auto': find "
                                               "the band (rows or columns that are the same in every slice) and "
                                               "print it; an error when there is none."),
    align_search_px: Optional[float] = typer.Option(None, "--align-search-px", help="Largest shift per axis a "
                                                    "registration looks for, px (>= 1; default unlimited on the "
                                                    "whole image, a third of the region's shorter side with "
                                                    "--align-region: marks repeated along the band alias)."),
    destripe: bool = typer.Option(False, "--destripe", help="Remove vertical curtain stripes (wavelet-Fourier filter)."),
    destripe_method: str = typer.Option("auto", "--destripe-method", help="wavelet (wavelet-Fourier filter), phase "
                                        "(column profile of the residual of a two-phase level model: for two-phase "
                                        "stacks; keeps layers) or auto (phase when a phase layer crosses the face "
                                        "and no --destripe-levels are given, else wavelet)."),
    destripe_levels: Optional[int] = typer.Option(None, "--destripe-levels", help="Wavelet levels (default: "
                                                  "ceil(log2(min size)) - 1)."),
    destripe_sigma: float = typer.Option(1.0, "--destripe-sigma", help="Width of the Fourier damping (frequency steps)."),
    shading: bool = typer.Option(False, "--shading", help="Divide by the smooth background (trench shadow, tilt)."),
    shading_method: str = typer.Option("model", "--shading-method", help="model (trench shadow + tilt fitted to the "
                                       "phases' gray levels), polynomial or gaussian (smooth background)."),
    drift: bool = typer.Option(False, "--drift", help="Match every slice's brightness and contrast to the stack's."),
    denoise: str = typer.Option("none", "--denoise", help="none, gaussian, median, bilateral or nl_means."),
    denoise_strength: float = typer.Option(1.0, "--denoise-strength", help="Sigma/radius (px) for gaussian/median; "
                                           "multiple of the noise level for bilateral/nl_means."),
    config: Optional[Path] = typer.Option(None, "--config", help="Corrections as YAML (the options above as keys); "
                                          "options given on the command line override it."),
    dtype: str = typer.Option("float32", "--dtype", help="float32, or uint8/uint16 (full scale = 1)."),
    panel: Optional[Path] = typer.Option(None, "--panel", help="Write a before/after PNG."),
    json_out: bool = typer.Option(False, "--json", help="Print what was applied (shifts, ...) as JSON on stdout."),
) -> None:
    """Correct a real stack: alignment, curtain removal, shading, brightness drift, denoising (in this order)."""
    from fibsynth.cliutil import emit_json
    from fibsynth.errors import register_flag_names
    from fibsynth.io import read_volume
    from fibsynth.microscope.config import CorrectConfig

    register_flag_names(out="OUT")
    from fibsynth.microscope.inverse import as_full_scale, correct

    _dtype(dtype)
    _check_out(out, [inp, config], "out")
    _check_file(panel, [inp, config, out], (".png",), "panel")
    given = {k: v for k, v in ctx.params.items()
             if k in CorrectConfig.model_fields and ctx.get_parameter_source(k).name != "DEFAULT"}
    auto = align_region is not None and align_region.strip().lower() == "auto"
    if auto:
        given.pop("align_region", None)
    elif align_region is not None:
        from fibsynth.microscope.inverse import parse_region

        given["align_region"] = parse_region(align_region, param="align_region")
    base = CorrectConfig.from_yaml(config).model_dump() if config is not None else {}
    cfg = CorrectConfig.build(**{**base, **given})
    if not (cfg.align or cfg.destripe or cfg.shading or cfg.drift or cfg.denoise != "none"):
        raise FibsynthError("nothing to do: give at least one of --align, --destripe, --shading, --drift, --denoise")
    if (cfg.align_region is not None or auto) and not cfg.align:
        raise FibsynthError("needs --align", param="align_region")
    if cfg.align_search_px is not None and not cfg.align:
        raise FibsynthError("needs --align", param="align_search_px")
    vol = read_volume(inp)
    x = as_full_scale(vol.data)
    band = None
    if auto:
        from fibsynth.microscope.fiducial import find_fiducial_region

        if x.shape[0] < 4:
            raise FibsynthError(f"auto needs at least 4 slices (the stack has {x.shape[0]})", param="align_region")
        band = find_fiducial_region(x, warn=False)
        if band.region is None:
            raise FibsynthError(f"auto: no static fiducial band found ({band.reason}); give the region as "
                                "Y0:Y1,X0:X1 or leave --align-region out to register the whole image",
                                param="align_region")
        y0, y1, x0, x1 = band.region
        typer.echo(f"fibsynth: fiducial band found: --align-region {y0}:{y1},{x0}:{x1} ({band.orientation}; "
                   f"correlation {band.correlation:.2f} between slices >= {band.min_lag} apart against "
                   f"{band.background:.2f} elsewhere, confidence {band.confidence:.2f}, isotropy "
                   f"{band.isotropy:.2f}; from the first {band.slices_used} slices)", err=True)
        cfg = cfg.model_copy(update={"align_region": band.region})
    if cfg.align_region is not None:
        from fibsynth.microscope.inverse import check_region

        check_region(cfg.align_region, x.shape, param="align_region")
    y, rec = correct(x, cfg)
    if band is not None:
        rec["fiducial_band"] = band.as_dict()
    params = {**vol.meta.parameters,
              "microscope": {**dict(vol.meta.parameters.get("microscope") or {}), "corrected": rec}}
    meta = vol.meta.with_updates(kind="image", parameters=params)
    _write(out, y, meta, dtype)
    _panel(panel, x, y, ("as recorded", "corrected"))
    if json_out:
        emit_json(rec)


@app.command("estimate")
def estimate_cmd(
    inp: Path = typer.Argument(..., help="Real FIB-SEM stack."),
    eta_levels: Optional[str] = typer.Option(None, "--eta-levels", help="EPOXY,GOLD backscatter yields of the "
                                             "simulation to match (gain and black level from the phases' gray levels)."),
    no_align: bool = typer.Option(False, "--no-align", help="Do not register the slices (no xy-drift estimate)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="An ideal simulated image stack of the same "
                                             "kind of structure: the blur is then the extra blur the model must add "
                                             "(default: the stack's total edge blur)."),
    estimate_response: bool = typer.Option(False, "--estimate-response", help="Fit a gamma detector response and "
                                           "linearise the stack with it before the other estimates."),
    estimate_charging: bool = typer.Option(False, "--estimate-charging", help="Put the measured charging streaks "
                                           "into the fitted model when they are found (always measured and printed)."),
    model_out: Optional[Path] = typer.Option(None, "--model-out", help="Write the fitted microscope model as YAML "
                                             "(for 'fibsynth microscope apply --config')."),
    json_out: bool = typer.Option(False, "--json", help="Print the estimates and the fitted model as JSON."),
) -> None:
    """Measure a real stack's noise, curtain stripes, shading and drift; fit the forward model to it."""
    from fibsynth.cliutil import emit_json, parse_list
    from fibsynth.io import atomic_path, read_volume
    from fibsynth.microscope.estimate import fit_model
    from fibsynth.microscope.inverse import as_full_scale

    _check_file(model_out, [inp], (".yaml", ".yml"), "model_out")
    levels = None
    if eta_levels is not None:
        v = parse_list(eta_levels, "--eta-levels", minimum=0.0, maximum=1.0)
        if len(v) != 2:
            raise FibsynthError(f"expected EPOXY,GOLD (two numbers), got {eta_levels!r}", param="eta_levels")
        levels = (v[0], v[1])
    x = as_full_scale(read_volume(inp).data)
    ref = as_full_scale(read_volume(reference).data) if reference is not None else None
    model, rec = fit_model(x, eta_levels=levels, align=not no_align, reference=ref,
                           estimate_response=estimate_response, estimate_charging=estimate_charging)
    if model_out is not None:
        with atomic_path(model_out) as tmp:
            tmp.write_text(model.to_yaml())
    if json_out:
        emit_json({"model": model.model_dump(mode="json"), "measured": rec})
        return
    d, c, s, dr = model.detector, model.curtaining, model.shading, model.drift
    n = rec["noise"]
    lines = [
        f"noise: var = {n['a']:.4g} * mean + {n['b']:.4g} (Poisson-Gaussian); wavelet sigma {n['sigma_wavelet']:.4g}",
        f"detector: {'%.4g' % d.electrons_per_pixel if d.electrons_per_pixel else 'no shot noise'} detected e/px, "
        f"gain {d.gain:.4g}, black level {d.dark_offset:.4g}, read noise {d.read_noise:.4g}",
        f"curtains: stripe rms {rec['stripe_rms']:.4g} (stack units), {c.amplitude:.4g} (yield units)",
        f"shading: trench shadow {s.depth:.3f} (power {s.power:g}), tilt {s.tilt:.3f}",
        f"drift: contrast rms {dr.contrast_rms:.4g}, brightness rms {dr.brightness_rms:.4g}, "
        f"xy step {dr.xy_step_px:.3g} px",
        f"scan lines: offset std {d.line_offset_std:.4g}, jitter {d.line_jitter_px:.3g} px",
        f"blur: {dr.blur_px:.3g} px + focus drift rms {dr.focus_rms_px:.3g} px ({rec['blur']['relative_to']})"
        + (f"; not measured on slice(s) {_slice_list(rec['blur']['unmeasured_slices'])} (no edges above the noise)"
           if rec["blur"].get("unmeasured_slices") else ""),
        f"response: gamma {rec['response'].get('gamma', float('nan')):.3g} measured, "
        f"{'applied' if d.response == 'gamma' else 'not applied (--estimate-response)'}"
        + (f"; range {rec['response']['gamma_interval'][0]:.3g}-{rec['response']['gamma_interval'][1]:.3g}"
           f"{'' if rec['response']['identifiable'] else ' (not identifiable: too few gray levels)'}"
           if "gamma_interval" in rec["response"] else ""),
    ]
    ch = rec.get("charging", {})
    if "strength" in ch:
        lines.append(f"charging: {'found' if ch['present'] else 'not found'}; strength {ch['strength']:.4g} (stack "
                     f"units) on {ch['line_fraction']:.2f} of the lines, build-up {ch['length_px']:g} px"
                     f"{'' if model.charging.strength > 0 else ' (not in the model: --estimate-charging)'}")
    typer.echo("\n".join(lines))
