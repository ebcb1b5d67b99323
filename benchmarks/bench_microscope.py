"""Benchmark of fibsynth.microscope: accuracy of alignment, destriping and the estimators against known truth,
and speed, on stacks larger than the tests'.

Run: PYTHONPATH=src .venv/bin/python benchmarks/bench_microscope.py [--quick] [--json out.json]

Structures: a thresholded Gaussian random field (35 % solid, filter sigma 3 px; independent of fibsynth's
generators) and, when ../shared/data/real-structures/sofc_electrolyte_201.tif is present, that real segmented
volume. Ideal images: yield 0.1 (epoxy) / 0.5 (gold), blurred by 0.6 px in-plane.

Parts:
1. alignment: xy drift of 1.5 px per slice (std), shot noise (300 e/px), curtains, shading; error of each
   slice-to-slice step and of the cumulative shift, for a z-invariant structure (pure registration error) and for a
   3D structure (plus the apparent motion of slanted features), at several fields of view;
2. destriping (Muench et al. 2009 wavelet-Fourier, db4, default levels (7 here) and 5, sigma 1): share of the stripe power removed
   (the filter is linear: what is left of the stripes is the filter applied to the stripes alone) and the mean
   displacement of the gold/epoxy iso-contour against the stripe-free truth, for several stripe strengths;
3. estimators: fit_model on stacks made by a known forward model, relative error of each parameter, several seeds;
4. speed of apply / correct / fit_model per slice.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

ETA0, ETA1 = 0.1, 0.5
SOFC = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real-structures" / "sofc_electrolyte_201.tif"


def grf(shape, seed, corr=3.0, fraction=0.35, pad=12):
    rng = np.random.default_rng(seed)
    big = tuple(s + 2 * pad for s in shape)
    f = ndimage.gaussian_filter(rng.standard_normal(big), corr)[pad:-pad, pad:-pad, pad:-pad]
    return (f > np.quantile(f, 1 - fraction)).astype(np.uint8)


def image(labels):
    return ETA0 + (ETA1 - ETA0) * ndimage.gaussian_filter(labels.astype(float), (0, 0.6, 0.6))


def edge_displacement(img, ref, thr=0.5 * (ETA0 + ETA1)):
    from skimage.measure import perimeter

    a, b = img > thr, ref > thr
    return float((a ^ b).sum() / sum(perimeter(b[k]) for k in range(b.shape[0])))


def structures(n_slices, n, quick):
    out = [("random field", lambda s: grf((n_slices, n, n), s))]
    if SOFC.exists() and n <= 201 and n_slices <= 201:
        from fibsynth.io import read_volume

        sofc = np.asarray(read_volume(SOFC).data)  # one rough electrolyte layer, ~25 px thick, normal along x
        out.append(("SOFC layer, interface along y (worst case)",
                    lambda s: sofc[s * 7 % (201 - n_slices):][:n_slices, :n, :n]))
        out.append(("SOFC layer, interface along x",
                    lambda s: sofc[s * 7 % (201 - n_slices):][:n_slices, :n, :n].transpose(0, 2, 1)))
    return out[:1] if quick else out


def part_alignment(quick):
    from fibsynth.microscope import Curtaining, Detector, Drift, MicroscopeModel, Shading, apply, register_slices

    rows = []
    sizes = [96, 192] if quick else [96, 192, 384]
    nz = 16
    for n in sizes:
        for zinv in (True, False):
            steps, cums, t = [], [], 0.0
            for seed in range(3 if quick else 5):
                lab = grf((nz, n, n), seed)
                if zinv:
                    lab = np.repeat(lab[:1], nz, 0)
                m = MicroscopeModel(detector=Detector(electrons_per_pixel=300, read_noise=0.005),
                                    drift=Drift(xy_step_px=1.5, blur_px=0.5), curtaining=Curtaining(amplitude=0.02),
                                    shading=Shading(depth=0.3, tilt=0.1), seed=seed + 50)
                r = apply(image(lab), m)
                true = np.array(r.record["realised"]["shifts_px"])
                t0 = time.perf_counter()
                est = register_slices(r.image)
                t += time.perf_counter() - t0
                e = est + true
                steps.append(np.abs(np.diff(e, axis=0)).max())
                cums.append(np.abs(e).max())
            rows.append({"field_px": n, "slices": nz, "structure": "z-invariant" if zinv else "3D random field",
                         "max_step_error_px": round(float(max(steps)), 3),
                         "max_cumulative_error_px": round(float(max(cums)), 3),
                         "mean_cumulative_error_px": round(float(np.mean(cums)), 3),
                         "s_per_slice": round(t / (len(steps) * nz), 4)})
            print("align", rows[-1], flush=True)
    return rows


def part_destripe(quick):
    from fibsynth.microscope import Curtaining, MicroscopeModel, apply, destripe

    rows = []
    for name, make in structures(16, 192, quick):
        lab = make(0)
        eta = image(lab)
        for amp, width, levels in [(a, w, lv) for a in (0.02, 0.08) for w in (2.0, 6.0) for lv in (None, 5)]:
            r = apply(eta, MicroscopeModel(curtaining=Curtaining(amplitude=amp, width_px=width), seed=3))
            s = np.repeat(r.stripes[:, None, :], eta.shape[1], 1)
            t0 = time.perf_counter()
            ds = destripe(r.image, levels=levels)
            dt = time.perf_counter() - t0
            left = destripe(s, levels=levels)
            rows.append({"structure": name, "amplitude": amp, "width_px": width, "levels": levels or "default (7)",
                         "stripe_power_removed": round(float(1 - (left ** 2).mean() / (s ** 2).mean()), 4),
                         "edge_shift_before_px": round(edge_displacement(r.image, eta), 3),
                         "edge_shift_after_px": round(edge_displacement(ds, eta), 3),
                         "s_per_slice_192px": round(dt / eta.shape[0], 4)})
            print("destripe", rows[-1], flush=True)
    return rows


def part_estimators(quick):
    from fibsynth.microscope import Curtaining, Detector, Drift, MicroscopeModel, Shading, apply, fit_model

    rows = []
    shapes = [(16, 192, 192)] if quick else [(16, 192, 192), (32, 256, 256)]
    for shape in shapes:
        for name, make in structures(*shape[:2], quick):
            for seed in range(2 if quick else 4):
                lab = make(seed) if name != "random field" else grf(shape, seed)
                eta = image(lab)
                true = MicroscopeModel(
                    detector=Detector(electrons_per_pixel=400, efficiency=0.5, gain=0.8, dark_offset=0.05,
                                      read_noise=0.02),
                    curtaining=Curtaining(amplitude=0.04), shading=Shading(depth=0.3, tilt=0.15),
                    drift=Drift(contrast_rms=0.1, brightness_rms=0.03, xy_step_px=0.8, correlation_slices=4),
                    seed=seed + 100)
                r = apply(eta, true)
                t0 = time.perf_counter()
                fit, _ = fit_model(r.image, eta_levels=(ETA0, ETA1))
                dt = time.perf_counter() - t0
                real = r.record["realised"]
                c, b = np.array(real["contrast"]), np.array(real["brightness"])
                step = np.sqrt((np.diff(np.array(real["shifts_px"]), axis=0) ** 2).mean() / 2)
                pairs = {
                    "dose": (fit.detector.electrons_per_pixel, 200.0),
                    "gain": (fit.detector.gain, 0.8),
                    "read_noise": (fit.detector.read_noise, 0.02),
                    "curtains": (fit.curtaining.amplitude, float(np.sqrt((r.stripes ** 2).mean()))),
                    "shadow_depth": (fit.shading.depth, 0.3),
                    "tilt": (fit.shading.tilt, 0.15),
                    "contrast_drift": (fit.drift.contrast_rms, float((c / c.mean()).std())),
                    "brightness_drift": (fit.drift.brightness_rms, float(b.std())),
                    "xy_step": (fit.drift.xy_step_px, float(step)),
                }
                row = {"shape": list(lab.shape), "structure": name, "seed": seed, "s": round(dt, 2)}
                row.update({k: round(e / t - 1, 3) for k, (e, t) in pairs.items()})
                rows.append(row)
                print("estimate", row, flush=True)
    return rows


def part_speed(quick):
    from fibsynth.microscope import CorrectConfig, MicroscopeModel, apply, correct

    n = 256
    eta = image(grf((16, n, n), 0))
    m = MicroscopeModel.sample(1, strength=1.0)
    t0 = time.perf_counter()
    r = apply(eta, m)
    t_apply = time.perf_counter() - t0
    t0 = time.perf_counter()
    correct(r.image, CorrectConfig(align=True, destripe=True, shading=True, drift=True))
    t_corr = time.perf_counter() - t0
    t0 = time.perf_counter()
    correct(r.image, CorrectConfig(denoise="nl_means"))
    t_nlm = time.perf_counter() - t0
    row = {"slice_px": n, "apply_s_per_slice": round(t_apply / 16, 4),
           "correct_align_destripe_shading_drift_s_per_slice": round(t_corr / 16, 4),
           "nl_means_s_per_slice": round(t_nlm / 16, 4)}
    print("speed", row, flush=True)
    return [row]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer sizes and seeds")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--parts", default="align,destripe,estimate,speed")
    a = p.parse_args()
    parts = {"align": part_alignment, "destripe": part_destripe, "estimate": part_estimators, "speed": part_speed}
    res = {}
    t0 = time.perf_counter()
    for k in a.parts.split(","):
        res[k] = parts[k](a.quick)
    res["total_s"] = round(time.perf_counter() - t0, 1)
    print("total", res["total_s"], "s")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
