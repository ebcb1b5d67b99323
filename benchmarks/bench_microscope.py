"""Benchmark of fibsynth.microscope: accuracy of alignment, destriping and the estimators against known truth,
and speed, on stacks larger than the tests'.

Run: PYTHONPATH=src .venv/bin/python benchmarks/bench_microscope.py [--quick] [--json out.json]
(one command for every issue-13 target; ``--parts targets`` prints only the summary of the targets, mean +- sd over
seeds, from the parts run before it in the same call).

Structures: a thresholded Gaussian random field (35 % solid, filter sigma 3 px; independent of fibsynth's
generators), a band-pass Gaussian random field (ring spectrum, wavelength 20 px; not fibsynth's), fibsynth's
leveled-wave gold/epoxy (30 % solid, ligament 40 nm at 5 nm voxels = 8 px) and, when
../shared/data/real-structures/sofc_electrolyte_201.tif is present, that real segmented volume. Ideal images:
yield 0.1 (epoxy) / 0.5 (gold), blurred by 0.6 px in-plane.

Parts:
1. alignment: xy drift of 1.5 px per slice (std), shot noise (300 e/px), curtains, shading; mean and max absolute
   error of the cumulative shifts on 3D structures (leveled-wave, band-pass field, leveled-wave with a mirrored wave
   set; 32 slices), several fields of view and 5 seeds (``--align-seeds``), with the default registration (the chain), the previous high-pass (``highpass_px=None``), ``detrend=True``,
   ``method='neighbours'`` (K = 3) and ``method='template'`` (``--align-methods`` picks; ``--align-structures``, ``--align-dose``,
   ``--align-jump`` (a stage jump added between the middle slices));
   each scored anchored at slice 0, with the global offset removed, and as the registration's own error on the
   known applied shifts: the same registration of the clean stack (noise-free, artifact-free, undrifted slices of
   the same structure: the structure's own apparent motion, also reported) subtracted;
   ``align_fiducial``: the same stacks with a fiducial band (the protective cap with milled marks) at the top,
   registered on the whole image and on the band's region (chain, neighbours, template), ``--fid-*`` options;
   ``--fid-wear-contrast`` / ``--fid-wear-blur``: the marks fade / blur over the stack;
   ``align_fiducial_auto``: the band found by ``find_fiducial_region`` (hits, false alarms without a band,
   confidence) and the alignment on it against the hand-given region, ``--fid-auto-*`` options;
   ``align_sources``: the chain's error split into apparent motion, drift and noise parts, its growth with the
   slice index and stack length, other drift shapes (smooth, jumps, none), and paired with the chain a symmetric
   chain and a smoothness prior on the drift (``drift_prior``);
2. destriping (the default; Muench et al. 2009 wavelet-Fourier, db4, default levels (7 here) and 5, sigma 1; the
   phase method): share of the stripe power removed and the mean displacement of the gold/epoxy iso-contour against
   the stripe-free truth, for two stripe strengths, without noise and at 300 e/px;
   ``apparent_motion``: each structure's own apparent motion (ideal undrifted slices registered) and its cause on
   the leveled-wave (the per-wave net shear; the mirrored wave set); ``align_limit``: the same stacks' noise-free, artifact-free, undrifted slices registered (the structure's own
   apparent motion: the information limit of image-only alignment) and an oracle Wiener smoother of the steps;
3. estimators: fit_model on stacks made by a known forward model, relative error of each parameter, several seeds
   (plus the Poisson slope, the blur without a reference, gamma on two gray-level clusters and its identifiability
   flag, charging with shot noise only and with the full microscope);
   ``charging``: presence (detection / false alarms), strength, struck fraction and length on 10 fresh seeds;
   ``charging_values``: the same over true values of the struck fraction, strength and length (5 seeds each);
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


def bandpass_grf(shape, seed, wavelength=20.0, rel_bw=0.3, fraction=0.35, pad=16):
    rng = np.random.default_rng(seed)
    big = tuple(s + 2 * pad for s in shape)
    k = np.sqrt(sum(np.meshgrid(*[np.fft.fftfreq(n) ** 2 for n in big], indexing="ij", sparse=True)))
    filt = np.exp(-0.5 * ((k - 1.0 / wavelength) / (rel_bw / wavelength)) ** 2)
    f = np.fft.ifftn(np.fft.fftn(rng.standard_normal(big)) * filt).real[pad:-pad, pad:-pad, pad:-pad]
    return (f > np.quantile(f, 1 - fraction)).astype(np.uint8)


def lwm(shape, seed):
    from fibsynth.structure.leveled_wave import leveled_wave

    return leveled_wave(shape, 5.0, 0.3, 40.0, seed=seed)


def lwm_mirrored(shape, seed, waves=4000):
    """The leveled-wave with a mirrored wave set (1000 directions x their 3 axis mirrors: no net shear)."""
    from fibsynth.structure.leveled_wave import leveled_wave

    return leveled_wave(shape, 5.0, 0.3, 40.0, waves=waves, seed=seed, wave_set="mirrored")


ALIGN_STRUCTURES = (("leveled-wave", lwm), ("band-pass field", bandpass_grf),
                    ("leveled-wave, mirrored waves (N = 4000)", lwm_mirrored))


def sofc_crop(shape, seed):
    """A crop of the real SOFC layer (slices along its axis 0, in-plane y along the interface, x its normal):
    the ``seed``-th of the 32-slice crops at 0, 28, 56, ... (the apparent_motion part's crops)."""
    from fibsynth.io import read_volume

    v = np.asarray(read_volume(SOFC).data)
    nz, ny, nx = shape
    k = (seed * 28) % (v.shape[0] - nz + 1)
    return (v[k:k + nz, :ny, :nx] > 0).astype(np.uint8)


ALIGN_STRUCTURE_KEYS = {"lw": "leveled-wave", "bp": "band-pass field", "mirrored": "leveled-wave, mirrored waves",
                        "sofc": "real SOFC layer"}
ALIGN_STRUCTURE_NAMES: list[str] | None = None  # --align-structures


def align_structures(quick, n):
    out = list(ALIGN_STRUCTURES[:2] if quick else ALIGN_STRUCTURES)
    if (not quick or ALIGN_STRUCTURE_NAMES) and SOFC.exists() and n <= 201:
        out.append(("real SOFC layer (crops, slices along axis 0)", sofc_crop))
    if ALIGN_STRUCTURE_NAMES:
        heads = [ALIGN_STRUCTURE_KEYS[k] for k in ALIGN_STRUCTURE_NAMES]
        out = [(name, make) for name, make in out
               if any(name == h or (name.startswith(h) and h != "leveled-wave") for h in heads)]
    return out


def ms(values):
    v = np.asarray(values, float)
    return f"{v.mean():.3f} +- {v.std():.3f}"


def ms_worst(values):
    """mean +- sd and the value of largest magnitude (signed), for relative errors."""
    v = np.asarray(values, float)
    return f"{ms(v)}, worst {v[np.argmax(np.abs(v))]:+.3f}"


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


ALIGN_SIZES: list[int] | None = None  # --align-sizes
ALIGN_SEEDS: int | None = None  # --align-seeds
ALIGN_JUMP_PX: float = 0.0  # --align-jump
ALIGN_DOSE: float = 300.0  # --align-dose (detected electrons per pixel)
# registration variants of the align part (--align-methods picks some by name): register_slices keyword arguments
ALIGN_METHODS = {"default": {}, "previous high-pass (field / 8)": {"highpass_px": None}, "detrend": {"detrend": True},
                 "neighbours (K = 2)": {"method": "neighbours", "neighbours": 2},
                 "neighbours (K = 3)": {"method": "neighbours", "neighbours": 3},
                 "neighbours (K = 5)": {"method": "neighbours", "neighbours": 5},
                 "template (AMST, +-3 slices)": {"method": "template", "template_half_width": 3}}
ALIGN_METHOD_NAMES: list[str] | None = None  # --align-methods: default, previous, detrend, neighbours3, ...
ALIGN_METHOD_KEYS = {"default": "default", "previous": "previous high-pass (field / 8)", "detrend": "detrend",
                     "neighbours2": "neighbours (K = 2)", "neighbours3": "neighbours (K = 3)", "neighbours5": "neighbours (K = 5)",
                     "template": "template (AMST, +-3 slices)"}


def part_alignment(quick):
    from fibsynth.microscope import Curtaining, Detector, Drift, MicroscopeModel, Shading, apply, register_slices

    rows = []
    sizes = ALIGN_SIZES or ([192] if quick else [96, 192, 384])
    names = [ALIGN_METHOD_KEYS[k] for k in ALIGN_METHOD_NAMES] if ALIGN_METHOD_NAMES else (
        ["default", "previous high-pass (field / 8)", "detrend", "neighbours (K = 3)", "template (AMST, +-3 slices)"])
    nz = 32
    for n in sizes:
        for name, make in align_structures(quick, n):
            res = {key: [] for key in names}
            times = {key: 0.0 for key in names}
            for seed in range(ALIGN_SEEDS or (2 if quick else 5)):
                lab = make((nz, n, n), seed)
                m = MicroscopeModel(detector=Detector(electrons_per_pixel=ALIGN_DOSE, read_noise=0.005),
                                    drift=Drift(xy_step_px=1.5, blur_px=0.5), curtaining=Curtaining(amplitude=0.02),
                                    shading=Shading(depth=0.3, tilt=0.1), seed=seed + 50)
                ideal = image(lab)
                r = apply(ideal, m)
                true = np.array(r.record["realised"]["shifts_px"])
                img = r.image
                if ALIGN_JUMP_PX:  # a stage jump between slices nz/2 - 1 and nz/2, along the diagonal
                    jump = np.full(2, ALIGN_JUMP_PX / np.sqrt(2))
                    img = img.copy()
                    for k in range(nz // 2, nz):
                        img[k] = ndimage.shift(img[k], jump, order=3, mode="nearest")
                    true = true.copy()
                    true[nz // 2:] += jump
                for key in names:
                    kw = ALIGN_METHODS[key]
                    t0 = time.perf_counter()
                    reg = register_slices(img, **kw)
                    times[key] += time.perf_counter() - t0
                    err = reg + true  # the registration undoes the applied shifts: reg = -true when exact
                    e, c = np.abs(err), np.abs(err - err.mean(0))  # c: the global offset (mean per axis) removed
                    # the clean stack (noise-free, artifact-free, undrifted slices of the same structure) registered
                    # the same way: whatever it reports is the structure's own apparent motion; what is left of the
                    # error after subtracting it is the registration's own error on the known applied shifts
                    clean = register_slices(ideal, **kw)
                    g = err - clean
                    res[key].append((e.mean(), e.max(), np.sqrt((err ** 2).mean()), c.mean(), c.max(),
                                     np.abs(clean).mean(), np.abs(clean).max(), np.abs(g).mean(), np.abs(g).max(),
                                     np.abs(g - g.mean(0)).mean()))
            for key, v in res.items():
                v = np.array(v)
                rows.append({"field_px": n, "slices": nz, "structure": name, "method": key,
                             "jump_px": ALIGN_JUMP_PX, "electrons_per_pixel": ALIGN_DOSE,
                             "mean_abs_error_px": ms(v[:, 0]), "max_abs_error_px": ms(v[:, 1]),
                             "worst_px": round(float(v[:, 1].max()), 3), "per_seed_mean_px": np.round(v[:, 0], 3).tolist(),
                             "rms_error_px": ms(v[:, 2]), "offset_removed_mean_abs_px": ms(v[:, 3]),
                             "offset_removed_max_abs_px": ms(v[:, 4]),
                             "clean_stack_apparent_motion_mean_abs_px": ms(v[:, 5]),
                             "clean_stack_apparent_motion_max_abs_px": ms(v[:, 6]),
                             "clean_subtracted_mean_abs_px": ms(v[:, 7]), "clean_subtracted_max_abs_px": ms(v[:, 8]),
                             "clean_subtracted_worst_px": round(float(v[:, 8].max()), 3),
                             "clean_subtracted_offset_removed_mean_abs_px": ms(v[:, 9]),
                             "per_seed_clean_subtracted_mean_px": np.round(v[:, 7], 3).tolist(),
                             "s_per_stack": round(times[key] / len(v), 3), "seeds": len(v)})
                print("align", rows[-1], flush=True)
    return rows


FID_HEIGHTS: list[int] = [24]  # --fid-heights: rows of the cap band (with --fid-top rows of surface above it)
FID_TOP = 16  # --fid-top
FID_WIDTH: int | None = None  # --fid-width: columns of the region (from x = 0; default the whole width)
FID_CURTAINS: float | None = None  # --fid-curtains: curtain amplitude (default the align part's 0.02)
FID_GRAIN = 0.02  # --fid-grain: rms of the cap's grain (new every slice)
FID_WEAR = {"wear_contrast": 0.0, "wear_blur_px": 0.0}  # --fid-wear-contrast, --fid-wear-blur: the marks' wear
FID_METHODS = {"chain, whole image": ("whole", {}), "chain, whole image, no band": ("noband", {}),
               "chain, fiducial region": ("region", {}),
               "neighbours (K = 3), fiducial region": ("region", {"method": "neighbours", "neighbours": 3}),
               "template (AMST, +-3), fiducial region": ("region", {"method": "template", "template_half_width": 3})}


def part_align_fiducial(quick):
    """Alignment on a fiducial band (``--parts align_fiducial``): the align part's stacks, seeds and microscope,
    with the protective cap and its milled marks (``Fiducial``: ``--fid-heights`` rows, ``--fid-top`` rows of
    surface above it) at the top of the field; error of the cumulative shifts against the true ones (anchored at
    slice 0) for the chain on the whole image (the baseline, same stacks), the chain on the same stacks without the
    band (the align part's stacks: the noise, drift and curtains are drawn the same), and chain / neighbours /
    template registered on the region above the structure (rows 0 .. top + height, columns 0 .. ``--fid-width``)
    -- the rectangle a user draws on the first slice. Paired differences against the whole-image chain."""
    from fibsynth.microscope import (Curtaining, Detector, Drift, Fiducial, MicroscopeModel, Shading, apply,
                                     register_slices)

    rows = []
    sizes = ALIGN_SIZES or ([192] if quick else [96, 192, 384])
    nz = 32
    for n in sizes:
        for name, make in align_structures(quick, n):
            if "mirrored" in name and not ALIGN_STRUCTURE_NAMES:
                continue
            if n > 256 and not name.startswith("leveled-wave") and not ALIGN_STRUCTURE_NAMES:
                continue
            for h in FID_HEIGHTS:
                width = min(FID_WIDTH or n, n)
                region = (0, FID_TOP + h, 0, width)
                res = {key: [] for key in FID_METHODS}
                times = {key: 0.0 for key in FID_METHODS}
                for seed in range(ALIGN_SEEDS or (2 if quick else 5)):
                    lab = make((nz, n, n), seed)
                    kw = dict(detector=Detector(electrons_per_pixel=ALIGN_DOSE, read_noise=0.005),
                              drift=Drift(xy_step_px=1.5, blur_px=0.5),
                              curtaining=Curtaining(amplitude=0.02 if FID_CURTAINS is None else FID_CURTAINS),
                              shading=Shading(depth=0.3, tilt=0.1), seed=seed + 50)
                    ideal = image(lab)
                    r = apply(ideal, MicroscopeModel(**kw, fiducial=Fiducial(height_px=h, top_px=FID_TOP,
                                                                             grain_rms=FID_GRAIN, **FID_WEAR)))
                    r0 = apply(ideal, MicroscopeModel(**kw))
                    true = np.array(r.record["realised"]["shifts_px"])
                    assert np.array_equal(true, r0.record["realised"]["shifts_px"])
                    for key, (on, mk) in FID_METHODS.items():
                        t0 = time.perf_counter()
                        if on == "noband":
                            reg = register_slices(r0.image, **mk)
                        else:
                            reg = register_slices(r.image, **mk, region=region if on == "region" else None)
                        times[key] += time.perf_counter() - t0
                        e = np.abs(reg + true)
                        res[key].append((e.mean(), e.max()))
                base = np.array(res["chain, whole image"])[:, 0]
                for key, v in res.items():
                    v = np.array(v)
                    d = v[:, 0] - base
                    rows.append({"field_px": n, "slices": nz, "structure": name, "method": key,
                                 "band_rows": h, "top_rows": FID_TOP, "region": list(region),
                                 "curtain_amplitude": 0.02 if FID_CURTAINS is None else FID_CURTAINS,
                                 "grain_rms": FID_GRAIN, **FID_WEAR, "electrons_per_pixel": ALIGN_DOSE,
                                 "mean_abs_error_px": ms(v[:, 0]), "max_abs_error_px": ms(v[:, 1]),
                                 "worst_px": round(float(v[:, 1].max()), 3),
                                 "per_seed_mean_px": np.round(v[:, 0], 3).tolist(),
                                 "paired_minus_whole_chain_px": ms(d), "better_on_seeds": int((d < 0).sum()),
                                 "seeds_within_0.5": int((v[:, 0] <= 0.5).sum()),
                                 "s_per_stack": round(times[key] / len(v), 3), "seeds": len(v)})
                    print("align_fiducial", rows[-1], flush=True)
    return rows


FID_AUTO_HEIGHTS: list[int] = [0, 8, 16, 24]  # --fid-auto-heights: band rows (0: no band) for align_fiducial_auto
FID_AUTO_TOPS: list[int] = [16]  # --fid-auto-tops: rows of surface above the band


def part_align_fiducial_auto(quick):
    """Automatic detection of the fiducial band (``--parts align_fiducial_auto``): the align part's stacks,
    seeds and microscope with a band of ``--fid-auto-heights`` rows (0: no band) under ``--fid-auto-tops`` rows of
    surface; ``find_fiducial_region`` on each stack. Detection: how often a band is reported (with a band: the
    true band found -- a row band covering at least half of the band's rows with at most 4 rows of structure
    below it --; without: a false alarm), its confidence; alignment (chain) against the true shifts on the
    detected region, on the hand-given region (rows 0 .. top + height, the whole width: what a user draws) and on
    the whole image, same stacks, and ``neighbours`` (K = 3) on both regions; paired differences auto - hand on
    the stacks where a band was reported."""
    import warnings

    from fibsynth.microscope import (Curtaining, Detector, Drift, Fiducial, MicroscopeModel, Shading, apply,
                                     register_slices)
    from fibsynth.microscope.fiducial import find_fiducial_region

    rows = []
    sizes = ALIGN_SIZES or ([192] if quick else [96, 192])
    nz = 32
    for n in sizes:
        for name, make in align_structures(quick, n):
            if "mirrored" in name and not ALIGN_STRUCTURE_NAMES:
                continue
            for top in FID_AUTO_TOPS:
                for h in FID_AUTO_HEIGHTS:
                    if top + h + 8 > n:
                        continue
                    recs = []
                    for seed in range(ALIGN_SEEDS or (2 if quick else 5)):
                        lab = make((nz, n, n), seed)
                        kw = dict(detector=Detector(electrons_per_pixel=ALIGN_DOSE, read_noise=0.005),
                                  drift=Drift(xy_step_px=1.5, blur_px=0.5), curtaining=Curtaining(amplitude=0.02),
                                  shading=Shading(depth=0.3, tilt=0.1), seed=seed + 50)
                        fid = Fiducial(height_px=h, top_px=top, grain_rms=FID_GRAIN, **FID_WEAR) if h else Fiducial()
                        r = apply(image(lab), MicroscopeModel(**kw, fiducial=fid))
                        true = np.array(r.record["realised"]["shifts_px"])
                        c0 = time.process_time()
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore")
                            f = find_fiducial_region(r.image)
                        cpu = time.process_time() - c0
                        rec = {"seed": seed, **f.as_dict(), "cpu_s": round(cpu, 2)}
                        reg = f.region
                        if h and reg is not None:
                            cover = max(0, min(reg[1], top + h) - max(reg[0], top))
                            rec["band_rows_covered"] = cover
                            rec["structure_rows"] = max(0, reg[1] - (top + h))
                            rec["hit"] = bool(f.orientation == "rows" and cover >= h / 2 and reg[1] - (top + h) <= 4)
                        def err(region, **kw):
                            return float(np.abs(register_slices(r.image, region=region, **kw) + true).mean())

                        rec["err_whole"] = err(None)
                        if reg is not None:
                            rec["err_auto"] = err(tuple(reg))
                            rec["err_auto_neighbours"] = err(tuple(reg), method="neighbours")
                        if h:
                            rec["err_hand"] = err((0, top + h, 0, n))
                            rec["err_hand_neighbours"] = err((0, top + h, 0, n), method="neighbours")
                        recs.append(rec)
                    found = [q for q in recs if q["region"] is not None]
                    row = {"field_px": n, "slices": nz, "structure": name, "band_rows": h, "top_rows": top,
                           "electrons_per_pixel": ALIGN_DOSE, **FID_WEAR, "seeds": len(recs), "reported": len(found),
                           "confidence": ms([q["confidence"] for q in recs]),
                           "correlation": ms([q["correlation"] for q in recs]),
                           "background": ms([q["background"] for q in recs]),
                           "isotropy": ms([q["isotropy"] for q in recs]),
                           "cpu_s_detect": ms([q["cpu_s"] for q in recs]),
                           "err_whole": ms([q["err_whole"] for q in recs]), "per_stack": recs}
                    if h:
                        row["true_band_found"] = sum(bool(q.get("hit")) for q in recs)
                        row["err_hand"] = ms([q["err_hand"] for q in recs])
                        if found:
                            d = [q["err_auto"] - q["err_hand"] for q in found]
                            row["err_auto_reported"] = ms([q["err_auto"] for q in found])
                            row["err_hand_same_stacks"] = ms([q["err_hand"] for q in found])
                            row["auto_minus_hand"] = ms(d)
                            row["auto_within_0.5"] = sum(q["err_auto"] <= 0.5 for q in found)
                            row["err_auto_neighbours_reported"] = ms([q["err_auto_neighbours"] for q in found])
                            row["err_hand_neighbours_same_stacks"] = ms([q["err_hand_neighbours"] for q in found])
                            row["auto_minus_hand_neighbours"] = ms([q["err_auto_neighbours"] - q["err_hand_neighbours"]
                                                                    for q in found])
                            row["auto_within_0.5_neighbours"] = sum(q["err_auto_neighbours"] <= 0.5 for q in found)
                            row["worst_auto"] = round(max(q["err_auto"] for q in found), 3)
                            row["worst_auto_neighbours"] = round(max(q["err_auto_neighbours"] for q in found), 3)
                    else:
                        row["false_alarms"] = len(found)
                    rows.append(row)
                    print("align_fiducial_auto", {k: v for k, v in row.items() if k != "per_stack"}, flush=True)
    return rows


def part_align_limit(quick):
    """Is the alignment error a limit of the information in the images? For each structure and field, 3 seeds:
    (a) the default registration of the full microscope stack (drift, noise, curtains, shading, blur) against the
    applied drift; (b) the default registration of the noise-free, artifact-free, undrifted slices of the same
    structure (whatever it reports is the structure's own apparent motion: no image-only method sees anything
    else); (c) an oracle Wiener smoother of the measured steps that knows the drift is a white random walk of
    1.5 px/step and the apparent-motion steps' autocovariance (measured on (b), pooled over the seeds): the best
    linear use of "the slant-induced shift decorrelates with lag, the drift accumulates"."""
    from fibsynth.microscope import Curtaining, Detector, Drift, MicroscopeModel, Shading, apply, register_slices

    rows = []
    nz, step_std = 32, 1.5
    for n in ([96] if quick else [96, 192]):
        for name, make in (("leveled-wave", lwm), ("band-pass field", bandpass_grf)):
            runs = []
            for seed in range(3):
                lab = make((nz, n, n), seed)
                m = MicroscopeModel(detector=Detector(electrons_per_pixel=300, read_noise=0.005),
                                    drift=Drift(xy_step_px=step_std, blur_px=0.5),
                                    curtaining=Curtaining(amplitude=0.02), shading=Shading(depth=0.3, tilt=0.1),
                                    seed=seed + 50)
                r = apply(image(lab), m)
                true = np.array(r.record["realised"]["shifts_px"])
                runs.append((register_slices(r.image), register_slices(image(lab)), true))
            inc = np.concatenate([np.diff(ideal, axis=0).T for _, ideal, _ in runs])  # (2 x seeds, nz - 1)
            mm = inc.shape[1]
            lags = min(12, mm - 1)
            ac = [float(np.mean([r[: mm - L] @ r[L:] / (mm - L) for r in inc])) for L in range(lags)]
            cov_a = sum(ac[L] * (np.eye(mm, k=L) + (np.eye(mm, k=-L) if L else 0)) for L in range(lags))
            gain = step_std ** 2 * np.linalg.inv(step_std ** 2 * np.eye(mm) + cov_a)
            res = {"(a) default, full microscope": [], "(b) ideal slices, no drift (apparent motion)": [],
                   "(c) oracle Wiener smoother": []}
            for meas, ideal, true in runs:
                wien = np.concatenate([[[0.0, 0.0]], np.cumsum(gain @ np.diff(meas, axis=0), 0)])
                for key, e in zip(res, (meas + true, ideal, wien + true)):
                    res[key].append((np.abs(e).mean(), np.abs(e).max()))
            for key, v in res.items():
                v = np.array(v)
                rows.append({"field_px": n, "structure": name, "case": key, "mean_abs_error_px": ms(v[:, 0]),
                             "max_abs_error_px": ms(v[:, 1]), "worst_px": round(float(v[:, 1].max()), 3),
                             "apparent_step_autocov_px2": [round(a, 4) for a in ac[:6]], "seeds": 3})
                print("align_limit", rows[-1], flush=True)
    return rows


def _drift_paths(nz, seed):
    """Stage-drift paths of other shapes than the forward model's white random walk (seeded apart from it):
    'smooth' -- the velocity an AR(1) series correlated over 30 slices (0.3 px/slice rms per axis) plus a thermal
    settling 6 px (1 - exp(-k / 8)) in a random direction (end to end about the random walk's size); 'smooth + jump'
    -- that plus an 8-px diagonal jump between the middle slices; 'random walk + jump' -- a 1.5 px/step random walk
    plus the same jump; 'none'."""
    from fibsynth.microscope.forward import smooth_series

    rng = np.random.default_rng(1000 + seed)
    rw = np.cumsum(np.vstack([[0, 0], 1.5 * rng.standard_normal((nz - 1, 2))]), 0)
    v = np.stack([0.3 * smooth_series(rng, nz, 30.0) for _ in range(2)], 1)
    v[0] = 0
    ang = rng.uniform(0, 2 * np.pi)
    k = np.arange(nz)
    sm = np.cumsum(v, 0) + 6.0 * (1 - np.exp(-k / 8.0))[:, None] * np.array([np.cos(ang), np.sin(ang)])
    sm -= sm[0]
    jump = np.zeros((nz, 2))
    jump[nz // 2:] = 8.0 / np.sqrt(2)
    return {"smooth": sm, "smooth + jump": sm + jump, "random walk + jump": rw + jump, "none": np.zeros((nz, 2))}


def drift_prior(path, order=2, lams=np.logspace(-2, 4, 25)):
    """A smoothness prior on the stage drift, fitted to registered cumulative shifts: the steps (the drift's
    velocity) smoothed by a Whittaker smoother (penalty on their ``order``-th differences: a steady or slowly
    changing velocity is free), lambda per axis by generalised cross-validation, and a single step that stands out
    from its neighbours' median by > max(6 robust sd, 1 px) kept as measured (a stage jump)."""
    s = np.diff(path, axis=0)
    m = len(s)
    rn = np.hypot(*(s - ndimage.median_filter(s, size=(5, 1), mode="nearest")).T)
    jumps = rn > max(6 * 1.4826 * np.median(rn), 1.0)
    w = (~jumps).astype(float)
    pen = np.diff(np.eye(m), order, axis=0)
    z = s.copy()
    for a in range(2):
        best = None
        for lam in lams:
            h = np.linalg.solve(np.diag(w) + lam * pen.T @ pen, np.diag(w))
            zz = h @ s[:, a]
            dof = np.trace(h[np.ix_(w > 0, w > 0)])
            g = w.sum() * np.sum(w * (s[:, a] - zz) ** 2) / max(w.sum() - dof, 1e-9) ** 2
            if best is None or g < best[0]:
                best = (g, zz)
        z[~jumps, a] = best[1][~jumps]
    return np.vstack([[0.0, 0.0], np.cumsum(z, 0)])


def part_align_sources(quick):
    """Where the chain's error against the true shifts comes from (micro12). Per structure, field and seed (the
    align part's microscope and stacks, 32 slices): the chain on the full stack (forward-model random-walk drift),
    on the clean stack (noise-free, artifact-free, undrifted: the structure's apparent motion), on the clean slices
    drifted by the same path ('clean drifted': what the drift itself adds) and on the full microscope without drift
    ('noisy undrifted'); the error path's mean square split into apparent motion, drift interaction (clean drifted -
    clean) and noise + artifacts (full - clean drifted); error vs slice index and its growth exponent (0.5: random
    walk, 1: steady shear); what a straight line through slice 0 leaves; the error of shorter stacks (the chain is
    causal: the first L slices); the chain on other drift shapes (the ideal slices shifted by the path as apply does,
    the microscope applied without drift); and, paired with the chain on the same stacks, the forward/backward
    symmetric chain and a smoothness prior on the drift (:func:`drift_prior`) on every drift shape."""
    from fibsynth.microscope import Curtaining, Detector, Drift, MicroscopeModel, Shading, apply, register_slices
    from fibsynth.microscope.inverse import _pcc, _prepare_for_registration

    def model(seed, step):
        return MicroscopeModel(detector=Detector(electrons_per_pixel=ALIGN_DOSE, read_noise=0.005),
                               drift=Drift(xy_step_px=step, blur_px=0.5), curtaining=Curtaining(amplitude=0.02),
                               shading=Shading(depth=0.3, tilt=0.1), seed=seed + 50)

    def shifted(ideal, path):
        return np.stack([ndimage.shift(s, p, order=3, mode="nearest") if p.any() else s for s, p in zip(ideal, path)])

    def symmetric(x):
        out, prev = np.zeros((len(x), 2)), _prepare_for_registration(x[0])
        for k in range(1, len(x)):
            cur = _prepare_for_registration(x[k])
            out[k] = out[k - 1] + 0.5 * (_pcc(prev, cur, 20) - _pcc(cur, prev, 20))
            prev = cur
        return out

    def mabs(e):
        return float(np.abs(e).mean())

    def paired(a, b):
        d = np.asarray(b) - np.asarray(a)
        return f"{d.mean():+.3f} +- {d.std():.3f} (better on {int((d < -0.01).sum())}, worse on {int((d > 0.01).sum())} of {len(d)})"

    rows, nz = [], 32
    ks = [4, 8, 16, nz - 1]
    for n in ALIGN_SIZES or [192]:
        for name, make in align_structures(quick, n):
            if "mirrored" in name and not ALIGN_STRUCTURE_NAMES:
                continue
            full, clean, cdrift, nodrift, sym = [], [], [], [], []
            other = {}
            for seed in range(ALIGN_SEEDS or (2 if quick else 5)):
                ideal = image(make((nz, n, n), seed))
                r = apply(ideal, model(seed, 1.5))
                true = np.array(r.record["realised"]["shifts_px"])
                full.append(register_slices(r.image) + true)
                sym.append(symmetric(r.image) + true)
                clean.append(register_slices(ideal))
                cdrift.append(register_slices(shifted(ideal, true)) + true)
                other.setdefault("random walk (forward model)", []).append((full[-1], true))
                for dname, path in _drift_paths(nz, seed).items():
                    reg = register_slices(apply(shifted(ideal, path), model(seed, 0.0)).image)
                    other.setdefault(dname, []).append((reg + path, path))
                nodrift.append(other["none"][-1][0])
            ms_ = lambda es: float(np.mean([np.mean(e ** 2) for e in es]))  # noqa: E731
            noise = [f - c for f, c in zip(full, cdrift)]
            dint = [c - a for c, a in zip(cdrift, clean)]
            kk = np.arange(1, nz)
            rms_k = np.sqrt(np.mean([e ** 2 for e in full], axis=(0, 2)))
            t = np.arange(nz, dtype=float)
            row = {"field_px": n, "slices": nz, "structure": name, "seeds": len(full),
                   "chain_vs_truth_px": ms([mabs(e) for e in full]),
                   "per_seed_px": np.round([mabs(e) for e in full], 3).tolist(),
                   "clean_apparent_motion_px": ms([mabs(e) for e in clean]),
                   "clean_drifted_vs_truth_px": ms([mabs(e) for e in cdrift]),
                   "noisy_undrifted_vs_truth_px": ms([mabs(e) for e in nodrift]),
                   "mean_square_full_apparent_driftint_noise_px2": [round(ms_(v), 4) for v in (full, clean, dint, noise)],
                   "noise_part_mean_abs_px": ms([mabs(e) for e in noise]),
                   "drift_interaction_mean_abs_px": ms([mabs(e) for e in dint]),
                   f"rms_error_at_slices_{'_'.join(map(str, ks))}_px": np.round(rms_k[ks], 3).tolist(),
                   "growth_exponent": round(float(np.polyfit(np.log(kk), np.log(rms_k[1:]), 1)[0]), 2),
                   "apparent_growth_exponent": round(float(np.polyfit(
                       np.log(kk), np.log(np.sqrt(np.mean([e ** 2 for e in clean], axis=(0, 2)))[1:] + 1e-12), 1)[0]), 2),
                   "noise_growth_exponent": round(float(np.polyfit(
                       np.log(kk), np.log(np.sqrt(np.mean([e ** 2 for e in noise], axis=(0, 2)))[1:] + 1e-12), 1)[0]), 2),
                   "mean_abs_error_step_px_per_slice": round(float(np.mean([np.abs(np.diff(e, axis=0).mean(0)) for e in full])), 4),
                   "line_through_slice0_removed_px": ms([mabs(e - np.outer(t, (t @ e) / (t @ t))) for e in full]),
                   "stack_length_8_16_32_px": [ms([mabs(e[:L]) for e in full]) for L in (8, 16, 32)],
                   "symmetric_chain_px": ms([mabs(e) for e in sym]),
                   "symmetric_minus_chain_px": paired([mabs(e) for e in full], [mabs(e) for e in sym])}
            for dname, v in other.items():
                ch = [mabs(e) for e, _ in v]
                pr = [mabs(drift_prior(e - p) + p) for e, p in v]  # e - p: the registered path itself
                row[f"drift {dname}: chain / smoothness prior / prior - chain"] = (
                    f"{ms(ch)} / {ms(pr)} / {paired(ch, pr)}")
            rows.append(row)
            print("align_sources", row, flush=True)
    return rows


def part_align_methods(quick):
    """The alternatives tried against the random walk of 3D structures (leveled-wave and band-pass field, 192 px,
    32 slices, 5 seeds; 2 with --quick): the square-root Hann taper and gradient-magnitude images (both with the
    earlier field / 8 high-pass), the default registration, least squares over registrations against the K = 2 /
    4 previous slices (the default preparation, each pair first moved by the default chain's prediction; lags
    weighted equally or 1/j), the median of 32-px tile shifts, the median of a dense optical flow
    (scikit-image optical_flow_ilk) after the default step."""
    from scipy.signal.windows import tukey
    from skimage.registration import optical_flow_ilk, phase_cross_correlation

    from fibsynth.microscope import Curtaining, Detector, Drift, MicroscopeModel, Shading, apply, register_slices

    def pcc(a, b, up=20):
        return np.asarray(phase_cross_correlation(a, b, upsample_factor=up, normalization=None)[0], float)

    def prep(img, win="tukey", grad=False):
        ny, nx = img.shape
        if grad:
            img = ndimage.gaussian_gradient_magnitude(img, 1.0)
        hp = img - ndimage.gaussian_filter(img, max(ny, nx) / 8.0, mode="nearest")
        w = (np.outer(tukey(ny, 0.3), tukey(nx, 0.3)) if win == "tukey"
             else np.outer(np.hanning(ny), np.hanning(nx)) ** 0.5)
        return (hp - hp.mean()) * w

    def chain(x, **kw):
        p = [prep(s, **kw) for s in x]
        return np.concatenate([[[0.0, 0.0]], np.cumsum([pcc(p[k - 1], p[k]) for k in range(1, len(x))], 0)])

    def multiref(x, K=4, weight=lambda j: 1.0):
        """Least squares over registrations of every slice against the K earlier ones (the default
        preparation; each pair first moved by the default chain's prediction, so that the peak is searched near
        it: without that, K = 8 locked onto wrong peaks), lag j weighted by ``weight(j)``."""
        from fibsynth.microscope.inverse import _prepare_for_registration

        chain = register_slices(x)
        p = [_prepare_for_registration(s) for s in x]
        nz = len(x)
        A, b, w = [np.eye(nz)[0]], [np.zeros(2)], [100.0]
        for k in range(1, nz):
            for j in range(1, min(K, k) + 1):
                pred = chain[k] - chain[k - j]
                moved = _prepare_for_registration(ndimage.shift(x[k], pred, order=3, mode="nearest"))
                r = np.zeros(nz)
                r[k], r[k - j] = 1, -1
                A.append(r)
                b.append(pred + pcc(p[k - j], moved))
                w.append(weight(j))
        w = np.array(w)[:, None]
        return np.linalg.lstsq(np.array(A) * w, np.array(b) * w, rcond=None)[0]

    def tiles(x, tile=32):
        nz, ny, nx = x.shape
        hp = [s - ndimage.gaussian_filter(s, max(ny, nx) / 8.0, mode="nearest") for s in x]
        w = np.outer(np.hanning(tile), np.hanning(tile)) ** 0.5
        out = np.zeros((nz, 2))
        for k in range(1, nz):
            sh = [pcc((a - a.mean()) * w, (b - b.mean()) * w, 10)
                  for y0 in range(0, ny - tile + 1, tile // 2) for x0 in range(0, nx - tile + 1, tile // 2)
                  for a, b in [(hp[k - 1][y0:y0 + tile, x0:x0 + tile], hp[k][y0:y0 + tile, x0:x0 + tile])]]
            out[k] = out[k - 1] + np.median(sh, 0)
        return out

    def flow(x):
        steps = np.diff(register_slices(x), axis=0)
        out = np.zeros((len(x), 2))
        for k in range(1, len(x)):
            v = optical_flow_ilk(x[k - 1], ndimage.shift(x[k], steps[k - 1], order=3, mode="nearest"), radius=7)
            out[k] = out[k - 1] + steps[k - 1] - np.array([np.median(v[0][8:-8, 8:-8]), np.median(v[1][8:-8, 8:-8])])
        return out

    methods = {"sqrt-Hann taper (previous default)": lambda x: chain(x, win="hann"),
               "default (Tukey taper, 4-px high-pass)": register_slices, "gradient-magnitude images": lambda x: chain(x, grad=True),
               "least squares, K = 2 earlier slices": lambda x: multiref(x, 2),
               "least squares, K = 4 earlier slices": multiref,
               "least squares, K = 4, lag j weighted 1/j": lambda x: multiref(x, 4, lambda j: 1.0 / j),
               "median of 32-px tiles": tiles,
               "median of optical flow": flow}
    rows = []
    for name, make in (("leveled-wave", lwm), ("band-pass field", bandpass_grf)):
        res = {m: [] for m in methods}
        for seed in range(2 if quick else 5):
            lab = make((32, 192, 192), seed)
            m = MicroscopeModel(detector=Detector(electrons_per_pixel=300, read_noise=0.005),
                                drift=Drift(xy_step_px=1.5, blur_px=0.5), curtaining=Curtaining(amplitude=0.02),
                                shading=Shading(depth=0.3, tilt=0.1), seed=seed + 50)
            r = apply(image(lab), m)
            true = np.array(r.record["realised"]["shifts_px"])
            for k, f in methods.items():
                t0 = time.perf_counter()
                e = np.abs(f(r.image.astype(np.float64)) + true)
                res[k].append((e.mean(), e.max(), time.perf_counter() - t0))
        for k, v in res.items():
            v = np.array(v)
            rows.append({"structure": name, "method": k, "mean_abs_error_px": ms(v[:, 0]),
                         "max_abs_error_px": ms(v[:, 1]), "per_seed_mean_px": np.round(v[:, 0], 3).tolist(),
                         "s_per_stack": round(float(v[:, 2].mean()), 2), "seeds": len(v)})
            print("align_methods", rows[-1], flush=True)
    return rows


def part_apparent_motion(quick):
    """The structures' own apparent motion: the default registration of noise-free, artifact-free, undrifted ideal
    slices (32 slices, 192 px, 20 seeds; whatever it reports is apparent motion, the floor of image-only alignment), scored
    as the align part (anchored / offset removed), and anchored at ``upsample=200`` with the straight-line slope
    through slice 0 (|px per slice|): the default 1/20 px precision rounds the 0.01-0.04 px steps of undrifted
    slices (in a drifting stack the drift dithers that rounding), so it under-reads small apparent motion.
    Structures: fibsynth's leveled-wave (1000 / 4000 independent directions, the mirrored set of 4000), band-pass
    fields at the leveled-wave's wavelength (14.8 px) with relative bandwidths 0.03 / 0.1 / 0.3 (the bench's
    20 px one too), and 32-slice crops of the real SOFC layer (sliced along its two in-plane axes).
    ``shear_768``: at 768 px (4 seeds) the measured slope against the leveled-wave's per-wave net shear
    (sum w k k^T)^-1 sum w k q_z, each wave weighted by the squared response of the image blur (0.6 px) and the
    registration's high-pass at its in-plane wave number (the finite-N part of the apparent motion)."""
    import math

    from fibsynth.microscope import register_slices
    from fibsynth.structure.leveled_wave import leveled_wave, wave_number

    nz, n = 32, 192
    seeds = range(3 if quick else 20)
    lam = 2 * math.pi / wave_number(40.0, 0.3) / 5.0
    t = np.arange(nz, dtype=float)

    def row(name, labs):
        v = []
        for lab in labs:
            img = image(lab)
            b, b2 = register_slices(img), register_slices(img, upsample=200)
            slope = (t @ b2) / (t @ t)
            v.append((np.abs(b).mean(), np.abs(b - b.mean(0)).mean(), *np.abs(slope), np.abs(b2).mean()))
        v = np.array(v)
        r = {"structure": name, "field_px": n, "slices": nz, "anchored_mean_abs_px": ms(v[:, 0]),
             "offset_removed_mean_abs_px": ms(v[:, 1]), "anchored_mean_abs_px_upsample_200": ms(v[:, 4]),
             "abs_slope_px_per_slice_y_x": [round(float(v[:, 2].mean()), 4), round(float(v[:, 3].mean()), 4)],
             "per_seed_anchored_px": np.round(v[:, 0], 3).tolist(), "n": len(v)}
        print("apparent_motion", r, flush=True)
        return r

    rows = [row("leveled-wave (1000 independent directions, the default)",
                (leveled_wave((nz, n, n), 5.0, 0.3, 40.0, seed=s) for s in seeds)),
            row("leveled-wave, 4000 independent directions",
                (leveled_wave((nz, n, n), 5.0, 0.3, 40.0, waves=4000, seed=s) for s in seeds)),
            row("leveled-wave, mirrored set of 4000 (1000 directions x 4)", (lwm_mirrored((nz, n, n), s) for s in seeds))]
    for bw in (0.03, 0.1, 0.3):
        rows.append(row(f"band-pass field, wavelength {lam:.1f} px, relative bandwidth {bw}",
                        (bandpass_grf((nz, n, n), s, wavelength=lam, rel_bw=bw, fraction=0.3) for s in seeds)))
    rows.append(row("band-pass field, wavelength 20 px, relative bandwidth 0.3 (align part)",
                    (bandpass_grf((nz, n, n), s) for s in seeds)))
    if SOFC.exists():
        from fibsynth.io import read_volume

        sofc = np.asarray(read_volume(SOFC).data)  # layer normal along x (last axis)
        for axis in (0, 1):
            v = np.moveaxis(sofc, axis, 0)
            rows.append(row(f"real SOFC layer, slices along axis {axis} (crops at 0, 28, ..., 168)",
                            (v[k:k + nz, :n, :n] for k in range(0, 201 - nz + 1, 28))))
    else:
        print("apparent_motion: real SOFC volume absent, skipped", flush=True)
    if not quick:  # the per-wave net shear against the measured slope at 768 px
        from fibsynth.microscope.inverse import HIGHPASS_PX

        def h2(k):
            f = k * 5.0 / (2 * math.pi)
            g = lambda sig: np.exp(-2 * math.pi ** 2 * sig ** 2 * f ** 2)  # noqa: E731
            return (g(0.6) * (1 - g(HIGHPASS_PX))) ** 2

        for name, kw in (("independent 1000", {}), ("mirrored 4000", {"waves": 4000, "wave_set": "mirrored"})):
            meas, pred, err = [], [], []
            for s in range(4):
                lab, m = leveled_wave((nz, 768, 768), 5.0, 0.3, 40.0, seed=s, return_model=True, **kw)
                k, qz = m.waves[:, 1:3], m.waves[:, 0]
                c = h2(np.hypot(k[:, 0], k[:, 1]))
                pred.append(np.linalg.solve((k * c[:, None]).T @ k, (k * c[:, None]).T @ qz))  # px/slice (isotropic)
                b = register_slices(image(lab), upsample=200)
                meas.append((t @ b) / (t @ t))
                err.append((np.abs(register_slices(image(lab))).mean(), np.abs(b).mean()))
            meas, pred, err = np.array(meas), np.array(pred), np.array(err)
            r = {"structure": f"leveled-wave {name}", "field_px": 768, "slices": nz, "anchored_mean_abs_px": ms(err[:, 0]),
                 "anchored_mean_abs_px_upsample_200": ms(err[:, 1]),
                 "rms_slope_px_per_slice": round(float(np.sqrt((meas ** 2).mean())), 4),
                 "rms_per_wave_prediction": round(float(np.sqrt((pred ** 2).mean())), 4),
                 "rms_measured_minus_prediction": round(float(np.sqrt(((meas - pred) ** 2).mean())), 4),
                 "n": 4}
            print("apparent_motion shear_768", r, flush=True)
            rows.append(r)
    return rows


def part_destripe(quick):
    """Every structure x (weak narrow, strong broad) curtains x (no noise, 300 e/px), 3 seeds; methods: the default
    (auto), the wavelet filter at the default levels, at 5 levels, and the phase method. Stripe power removed: for
    the (linear) wavelet filter, 1 - |filter(stripes)|^2 / |stripes|^2; for the phase method, which subtracts one
    column profile per slice, 1 - |stripes - profile|^2 / |stripes|^2; for auto, whichever it chose."""
    from fibsynth.microscope import Curtaining, Detector, MicroscopeModel, apply, destripe
    from fibsynth.microscope.inverse import auto_levels, runs_along_y

    rows = []
    for name, make in structures(16, 192, quick):
        for dose in ((None,) if quick else (None, 300.0)):
            for amp, width in ((0.02, 2.0), (0.08, 6.0)):
                res: dict[str, list] = {"auto (default)": [], "wavelet": [], "wavelet, 5 levels": [], "phase": []}
                before, chosen = [], []
                for seed in range(3):
                    eta = image(make(seed))
                    r = apply(eta, MicroscopeModel(detector=Detector(electrons_per_pixel=dose),
                                                   curtaining=Curtaining(amplitude=amp, width_px=width), seed=3 + seed))
                    s = np.repeat(r.stripes[:, None, :], eta.shape[1], 1)
                    before.append(edge_displacement(r.image, eta))
                    layered = runs_along_y(r.image)
                    chosen.append("phase" if layered else "wavelet")
                    out = {}
                    for key, kw in (("wavelet", {"method": "wavelet"}), ("wavelet, 5 levels", {"levels": 5}),
                                    ("phase", {"method": "phase"})):
                        t0 = time.perf_counter()
                        img = destripe(r.image, **kw)
                        dt = (time.perf_counter() - t0) / eta.shape[0]
                        if key == "phase":
                            est = (r.image - img).mean(1)
                            rem = 1 - ((r.stripes - est) ** 2).mean() / (r.stripes ** 2).mean()
                        else:
                            lv = kw.get("levels", auto_levels(*eta.shape[1:]))
                            rem = 1 - (destripe(s, levels=lv) ** 2).mean() / (s ** 2).mean()
                        out[key] = (rem, edge_displacement(img, eta), dt)
                        res[key].append(out[key])
                    res["auto (default)"].append(out["phase" if layered else "wavelet"])
                for key, v in res.items():
                    v = np.array(v)
                    rows.append({"structure": name, "dose": dose or "no noise", "amplitude": amp, "width_px": width,
                                 "method": key, "auto_chose": sorted(set(chosen)) if key.startswith("auto") else "",
                                 "stripe_power_removed": ms(v[:, 0]), "worst_removed": round(float(v[:, 0].min()), 3),
                                 "edge_shift_before_px": ms(before), "edge_shift_after_px": ms(v[:, 1]),
                                 "worst_edge_px": round(float(v[:, 1].max()), 3), "s_per_slice": round(float(v[:, 2].mean()), 3),
                                 "seeds": 3})
                    print("destripe", rows[-1], flush=True)
    return rows


CHARGING = dict(strength=0.1, line_fraction=0.3, length_px=15)


def charged(model, seed):
    """``model`` with the benchmark's charging (strength 0.1 on 30 % of the lines, 15 px); None: shot noise only."""
    from fibsynth.microscope import Charging, Detector, MicroscopeModel

    if model is None:
        return MicroscopeModel(detector=Detector(electrons_per_pixel=400, efficiency=0.5),
                               charging=Charging(**CHARGING), seed=seed)
    return model.model_copy(update={"charging": Charging(**CHARGING)})


def charging_scale(model, result):
    """What a unit of charging strength (yield units) becomes in the stack: gain x mean shading x mean contrast."""
    from fibsynth.microscope.forward import shading_field

    ny, nx = result.image.shape[1:]
    return model.detector.gain * float(shading_field(model, ny, nx).mean()) * float(
        np.mean(result.record["realised"]["contrast"]))


def part_charging(quick):
    """Charging on fresh seeds (10-19; 5 with --quick), 16 x 192 x 192 random-field stacks through the estimate
    part's full microscope, with and without charging (strength 0.1 on 30 % of the lines, 15 px): presence flag
    (detection and false-alarm rates) and the relative errors of strength, struck fraction and build-up length."""
    from fibsynth.microscope import apply, charging_streaks

    seeds = range(10, 15 if quick else 20)
    rows, det, false, zs0, zs1 = [], 0, 0, [], []
    errs = {"strength": [], "line_fraction": [], "line_fraction_moments": [], "length_px": []}
    for seed in seeds:
        eta = image(grf((16, 192, 192), seed))
        m = estimate_model(seed)
        r1 = apply(eta, charged(m, seed))
        c1 = charging_streaks(r1.image)
        c0 = charging_streaks(apply(eta, m).image)
        det += c1["present"]
        false += c0["present"]
        # the presence statistic (f s with the lines' x trends out, over its naive standard error)
        zs1.append(c1.get("f_s_detrended", c1["f_s"]) / c1["f_s_error"])
        zs0.append(c0.get("f_s_detrended", c0["f_s"]) / c0["f_s_error"])
        errs["strength"].append(c1["strength"] / (0.1 * charging_scale(m, r1)) - 1)
        errs["line_fraction"].append(c1["line_fraction"] / 0.3 - 1)
        errs["line_fraction_moments"].append(c1.get("line_fraction_moments", c1["line_fraction"]) / 0.3 - 1)
        errs["length_px"].append(c1["length_px"] / 15.0 - 1)
        print("charging seed", seed, {k: round(v[-1], 3) for k, v in errs.items()},
              "z", round(zs1[-1], 1), "z without", round(zs0[-1], 1), flush=True)
    n = len(seeds)
    row = {"seeds": f"{seeds.start}-{seeds.stop - 1}", "detected": f"{det} of {n}", "false_alarms": f"{false} of {n}",
           "z_with": [round(z, 1) for z in zs1], "z_without": [round(z, 1) for z in zs0]}
    for k, v in errs.items():
        row[f"{k}_rel_error"] = ms_worst(v)
    rows.append(row)
    print("charging", row, flush=True)
    return rows


CHARGING_LIMIT_STRENGTHS = (0.03, 0.04, 0.05, 0.06, 0.07, 0.1)
CHARGING_ESTIMATORS = (("t mixture, nu fitted (default)", None), ("t mixture, nu = 4", 4.0),
                       ("Gaussian mixture (before)", float("inf")))


def part_charging_limit(quick):
    """Weak charging: the struck fraction against the strength (0.03-0.1 yield units, f 0.3, L 15 px), seeds 20-29
    (20-24 with --quick), the estimate part's full microscope on 16 x 192 x 192, for the mixture with Student-t
    components (nu chosen by the likelihood, the default; nu = 4) and the Gaussian mixture before it, on the same
    stacks: detections, mean +- sd of the fraction's relative error, how many seeds read it within 20 % (of the
    model's 0.3 and of the realised share of struck lines, which scatters by ~3 % relative), the strength, the
    modes' ``separation`` and the ``fraction_reliable`` flag (and how often a flagged fraction was outside 20 % of
    0.3). Detection limit: the strength below which the fraction's sd over seeds exceeds 20 % of the truth."""
    from fibsynth.microscope import Charging, apply, charging_streaks

    seeds = range(20, 25 if quick else 30)
    rows = []
    for strength in CHARGING_LIMIT_STRENGTHS:
        res = {name: {"fe": [], "fr": [], "se": [], "sep": [], "nu": [], "det": 0, "rel": 0, "rel_bad": 0}
               for name, _ in CHARGING_ESTIMATORS}
        for seed in seeds:
            m = estimate_model(seed).model_copy(update={"charging": Charging(**dict(CHARGING, strength=strength))})
            r = apply(image(grf((16, 192, 192), seed)), m)
            for name, nu in CHARGING_ESTIMATORS:
                c, o = charging_streaks(r.image, mixture_nu=nu), res[name]
                o["fe"].append(c["line_fraction"] / CHARGING["line_fraction"] - 1)
                o["fr"].append(c["line_fraction"] / r.record["realised"]["struck_line_fraction"] - 1)
                o["se"].append(c["strength"] / (strength * charging_scale(m, r)) - 1)
                o["sep"].append(c.get("separation", 0.0))
                o["nu"].append(c.get("mixture_nu", 0.0))
                o["det"] += c["present"]
                o["rel"] += bool(c.get("fraction_reliable"))
                o["rel_bad"] += bool(c.get("fraction_reliable")) and abs(o["fe"][-1]) > 0.2
            print("charging_limit seed", seed, strength, {k: round(v["fe"][-1], 3) for k, v in res.items()}, flush=True)
        for name, o in res.items():
            fe = np.asarray(o["fe"])
            rows.append({"strength": strength, "estimator": name, "seeds": f"{seeds.start}-{seeds.stop - 1}",
                         "detected": o["det"], "fraction_within_20pc": int(np.sum(np.abs(fe) <= 0.2)),
                         "line_fraction_rel_error": ms_worst(fe), "line_fraction_sd": round(float(fe.std()), 3),
                         "within_20pc_of_realised": int(np.sum(np.abs(o["fr"]) <= 0.2)), "vs_realised": ms_worst(o["fr"]),
                         "strength_rel_error": ms_worst(o["se"]),
                         "separation": f"{min(o['sep']):.2f}-{max(o['sep']):.2f}",
                         "nu_chosen": sorted(set(o["nu"])), "flagged_reliable": o["rel"],
                         "flagged_but_outside_20pc": o["rel_bad"], "n": len(seeds)})
            print("charging_limit", rows[-1], flush=True)
    return rows


def part_charging_side(quick):
    """What charging does to the line-offset and blur estimators (seeds 10-19, 5 with --quick; the charging
    part's stacks: the estimate part's full microscope, line offsets 0.01, with and without the benchmark's
    charging): line offsets without / with the charging's share subtracted, and the total blur without a
    reference (true: sqrt(realised probe blur^2 + 0.6^2), mean over slices) (a) with the line offsets measured
    without the correction (fit_model before), (b) with the true line offsets and no charging correction
    (``blur_series`` alone), (c) with the corrected offsets and ``charging=`` (fit_model now); on the charged
    stacks also fit_model end to end and, as before, charging measured after the alignment."""
    from fibsynth.microscope import apply, blur_series, charging_streaks, scan_line_artifacts

    seeds = range(10, 15 if quick else 20)
    rows = []
    for case in ("without charging", "with charging"):
        res: dict[str, list] = {"offsets, no correction": [], "offsets, charging share out": [],
                                "(a) blur, measured offsets, no correction": [],
                                "(b) blur, true offsets, no correction": [],
                                "(c) blur, corrected offsets and charging=": []}
        for seed in seeds:
            m = estimate_model(seed)
            r = apply(image(grf((16, 192, 192), seed)), charged(m, seed) if case == "with charging" else m)
            x = r.image.astype(np.float64)
            total = float(np.mean(np.sqrt(np.asarray(r.record["realised"]["blur_px"]) ** 2 + 0.36)))
            ch = charging_streaks(x)
            l0 = scan_line_artifacts(x)["offset_std"]
            l1 = scan_line_artifacts(x, charging=ch)["offset_std"]
            res["offsets, no correction"].append(l0 / 0.01 - 1)
            res["offsets, charging share out"].append(l1 / 0.01 - 1)
            for key, kw in (("(a) blur, measured offsets, no correction", {"line_offset_std": l0}),
                            ("(b) blur, true offsets, no correction", {"line_offset_std": 0.01}),
                            ("(c) blur, corrected offsets and charging=", {"line_offset_std": l1, "charging": ch})):
                res[key].append(float(np.mean(blur_series(x, **kw)["blur_px"])) / total - 1)
            if case == "with charging":  # fit_model end to end, and charging measured after the alignment (before)
                from fibsynth.microscope import fit_model, register_slices, shift_slices

                _, rec = fit_model(x, eta_levels=(ETA0, ETA1))
                al = charging_streaks(shift_slices(x, register_slices(x)))
                s_true, f_true = 0.1 * charging_scale(m, r), r.record["realised"]["struck_line_fraction"]
                for key, v in (("fit_model: line offsets", rec["scan_lines"]["offset_std"] / 0.01 - 1),
                               ("fit_model: total blur", rec["blur"]["mean_px"] / total - 1),
                               ("fit_model: charging strength", rec["charging"]["strength"] / s_true - 1),
                               ("fit_model: struck fraction vs realised", rec["charging"]["line_fraction"] / f_true - 1),
                               ("before: charging after the alignment, strength", al["strength"] / s_true - 1),
                               ("before: charging after the alignment, struck fraction vs realised",
                                al["line_fraction"] / f_true - 1)):
                    res.setdefault(key, []).append(v)
        for key, v in res.items():
            rows.append({"case": case, "estimate": key, "rel_error": ms_worst(v),
                         "seeds": f"{seeds.start}-{seeds.stop - 1}"})
            print("charging_side", rows[-1], flush=True)
    return rows


def part_charging_values(quick):
    """The charging estimator over true values: struck fraction 0.1 / 0.3 / 0.6, strength 0.05 / 0.1 / 0.2 and
    build-up length 8 / 15 / 30 px (one changed at a time from 0.3 / 0.1 / 15), 5 seeds each (3 with --quick;
    20-24), the estimate part's full microscope on 16 x 192 x 192 random-field stacks. Relative errors against the
    model's parameters (the realised struck fraction of ~3000 lines scatters by sqrt(f (1 - f) / 3000) around f:
    5 % relative at f = 0.1, 1.5 % at 0.6); ``line_fraction_moments``: the earlier moment estimate, same stacks."""
    from fibsynth.microscope import Charging, apply, charging_streaks

    seeds = range(20, 23 if quick else 25)
    base = dict(CHARGING)
    cases = [dict(base)] + [dict(base, line_fraction=f) for f in (0.1, 0.6)] + \
        [dict(base, strength=s) for s in (0.05, 0.2)] + [dict(base, length_px=L) for L in (8.0, 30.0)]
    rows = []
    for case in cases:
        errs = {"line_fraction": [], "line_fraction_moments": [], "strength": [], "length_px": []}
        det = 0
        for seed in seeds:
            eta = image(grf((16, 192, 192), seed))
            m = estimate_model(seed)
            m = m.model_copy(update={"charging": Charging(**case)})
            r = apply(eta, m)
            c = charging_streaks(r.image)
            det += c["present"]
            errs["line_fraction"].append(c["line_fraction"] / case["line_fraction"] - 1)
            errs["line_fraction_moments"].append(c.get("line_fraction_moments", c["line_fraction"])
                                                 / case["line_fraction"] - 1)
            errs["strength"].append(c["strength"] / (case["strength"] * charging_scale(m, r)) - 1)
            errs["length_px"].append(c["length_px"] / case["length_px"] - 1)
        row = {"case": {k: case[k] for k in ("line_fraction", "strength", "length_px")},
               "seeds": f"{seeds.start}-{seeds.stop - 1}", "detected": f"{det} of {len(seeds)}"}
        for k, v in errs.items():
            row[f"{k}_rel_error"] = ms_worst(v)
        rows.append(row)
        print("charging_values", row, flush=True)
    return rows


def estimate_model(seed):
    """The estimate part's full microscope (every parameter fit_model sets): ``MicroscopeModel.full_reference``
    (shared with tests/microscope/test_estimate.py), seed + 100."""
    from fibsynth.microscope import MicroscopeModel

    return MicroscopeModel.full_reference(seed + 100)


def part_estimators(quick):
    from fibsynth.microscope import (Charging, Curtaining, Detector, Drift, MicroscopeModel, Shading, apply,
                                     blur_series, charging_streaks, fit_model, response_gamma)

    rows = []
    shape = (16, 192, 192)
    for seed in range(3 if quick else 4):
        eta = image(grf(shape, seed))
        ref = image(grf((4,) + shape[1:], 1000 + seed))  # another realisation: the simulation to match the blur to
        true = estimate_model(seed)
        r = apply(eta, true)
        t0 = time.perf_counter()
        fit, rec = fit_model(r.image, eta_levels=(ETA0, ETA1), reference=ref)
        dt = time.perf_counter() - t0
        real = r.record["realised"]
        c, b = np.array(real["contrast"]), np.array(real["brightness"])
        blur, est_blur = np.array(real["blur_px"]), np.array(rec["blur"]["blur_px"])
        step = np.sqrt((np.diff(np.array(real["shifts_px"]), axis=0) ** 2).mean() / 2)
        pairs = {
            # the beam-current drift scales the dose, so the phase levels see gain x mean current, and the fitted
            # model (contrast normalised to mean 1) is the same microscope with gain and dose both x mean current
            "poisson_slope": (rec["noise"]["a"], 0.8 / 200.0),
            "dose": (fit.detector.electrons_per_pixel, 200.0 * c.mean()),
            "gain": (fit.detector.gain, 0.8 * c.mean()),
            "read_noise": (fit.detector.read_noise, 0.02),
            "line_offsets": (fit.detector.line_offset_std, 0.01),
            "line_jitter": (fit.detector.line_jitter_px, 0.3),
            "blur_mean": (est_blur.mean(), blur.mean()),
            "blur_std_over_slices": (est_blur.std(), blur.std()),
            # without a reference: the total blur (the ideal image's 0.6 px and the microscope's)
            "blur_total_no_reference": (np.mean(blur_series(r.image, line_offset_std=rec["scan_lines"]["offset_std"])
                                                ["blur_px"]), np.sqrt(blur ** 2 + 0.36).mean()),
            "curtains": (fit.curtaining.amplitude, float(np.sqrt((r.stripes ** 2).mean()))),
            "shadow_depth": (fit.shading.depth, 0.3),
            "tilt": (fit.shading.tilt, 0.15),
            "contrast_drift": (fit.drift.contrast_rms, float((c / c.mean()).std())),
            "brightness_drift": (fit.drift.brightness_rms, float(b.std())),
            "xy_step": (fit.drift.xy_step_px, float(step)),
        }
        # gamma: the same microscope with a power-law response (0.7 and 1.4), response_gamma alone
        for g in (0.7, 1.4):
            m = true.model_copy(update={"detector": true.detector.model_copy(update={"response": "gamma", "gamma": g})})
            rg = response_gamma(apply(eta, m).image)
            pairs[f"gamma_{g}"] = (rg["gamma"], g)
            pairs[f"gamma_{g} flagged identifiable (1 = yes)"] = (float(rg["identifiable"]) + 1.0, 1.0)
            # two narrow clusters of gray levels (shot and read noise only): not identifiable, and said so
            two = MicroscopeModel(detector=Detector(electrons_per_pixel=400, efficiency=0.5, gain=0.8,
                                                    dark_offset=0.05, read_noise=0.02, response="gamma", gamma=g),
                                  seed=seed)
            rt = response_gamma(apply(eta, two).image)
            pairs[f"gamma_{g} two clusters"] = (rt["gamma"], g)
            pairs[f"gamma_{g} two clusters flagged identifiable (0 = no)"] = (float(rt["identifiable"]) + 1.0, 1.0)
            pairs[f"gamma_{g} two clusters: truth inside gamma_interval (1 = yes)"] = (
                float(rt["gamma_interval"][0] <= g <= rt["gamma_interval"][1]) + 1.0, 1.0)
        # charging: strength / struck fraction / build-up length on a stack with shot noise only and with the full
        # microscope (charging_streaks; strength in the stack's units, compared with 0.1 x gain x mean shading x
        # mean contrast, what a struck, fully charged pixel gains on average)
        ch = charging_streaks(apply(eta, charged(None, seed)).image)
        pairs["charging_strength (noise only)"] = (ch["strength"], 0.1)
        pairs["charging_fraction (noise only)"] = (ch["line_fraction"], 0.3)
        pairs["charging_length (noise only)"] = (ch["length_px"], 15.0)
        rc = apply(eta, charged(true, seed))
        ch2 = charging_streaks(rc.image)
        pairs["charging_strength (full microscope)"] = (ch2["strength"], charging_scale(true, rc) * 0.1)
        pairs["charging_fraction (full microscope)"] = (ch2["line_fraction"], 0.3)
        pairs["charging_length (full microscope)"] = (ch2["length_px"], 15.0)
        # presence (printed in the "relative error" column as 0 = no, 1 = yes)
        ch0 = charging_streaks(r.image)
        pairs["charging flagged present when present (1 = yes)"] = (float(ch2["present"]) + 1.0, 1.0)
        pairs["charging flagged present when absent (0 = no)"] = (float(ch0["present"]) + 1.0, 1.0)
        row = {"shape": list(shape), "seed": seed, "fit_s": round(dt, 2)}
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


def summary(res):
    """Every issue-13 target, mean +- sd over the seeds."""
    out = {}
    for r in res.get("align", []):
        head = f"alignment {r['structure']} {r['field_px']} px x {r['slices']} slices ({r['method']})"
        out[f"{head}: mean / max abs error px, anchored"] = (
            f"{r['mean_abs_error_px']} / {r['max_abs_error_px']} (target 0.5)")
        if r["method"] == "detrend":  # detrend removes the drift's own trend: the decomposition means nothing there
            continue
        out[f"{head}: the clean stack's own apparent motion, mean / max abs px"] = (
            f"{r['clean_stack_apparent_motion_mean_abs_px']} / {r['clean_stack_apparent_motion_max_abs_px']}")
        out[f"{head}: registration error on the known shifts (clean stack's registration subtracted), mean / max "
            f"abs px"] = f"{r['clean_subtracted_mean_abs_px']} / {r['clean_subtracted_max_abs_px']} (target 0.5)"
    for r in res.get("align_limit", []):
        out[f"alignment limit {r['structure']} {r['field_px']} px {r['case']}: mean / max abs error px"] = (
            f"{r['mean_abs_error_px']} / {r['max_abs_error_px']}")
    for r in res.get("destripe", []):
        if r["method"].startswith("auto"):
            out[f"destripe {r['structure']} dose {r['dose']} rms {r['amplitude']} width {r['width_px']} (default, "
                f"{'/'.join(r['auto_chose'])}): power removed / edge px"] = (
                f"{r['stripe_power_removed']} (worst {r['worst_removed']}) / {r['edge_shift_after_px']} (worst "
                f"{r['worst_edge_px']}) (targets >= 0.8 / < 0.5)")
    est = res.get("estimate", [])
    for k in (est[0] if est else {}):
        if k in ("shape", "seed", "fit_s"):
            continue
        out[f"estimator {k}: relative error"] = f"{ms_worst([r[k] for r in est])} (target 0.2)"
    for k, v in out.items():
        print("target", k, "=", v)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer sizes and seeds")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--parts", default="align,destripe,estimate,speed")  # a summary of the targets always ends it
    p.add_argument("--align-sizes", default=None,
                   help="fields of view (px) for the align part, comma-separated (default 96,192,384)")
    p.add_argument("--align-seeds", type=int, default=None, help="seeds per structure in the align part (default 5)")
    p.add_argument("--align-methods", default=None,
                   help="registration variants for the align part, comma-separated, of "
                        + ", ".join(ALIGN_METHOD_KEYS) + " (default: default, previous, detrend, neighbours3, template)")
    p.add_argument("--align-structures", default=None,
                   help="structures for the align part, comma-separated, of " + ", ".join(ALIGN_STRUCTURE_KEYS)
                        + " (default all; sofc only up to 201 px and when the volume is present)")
    p.add_argument("--align-dose", type=float, default=300.0,
                   help="electrons per pixel of the align part's stacks (default 300)")
    p.add_argument("--align-jump", type=float, default=0.0,
                   help="add a stage jump of this many px (diagonal) between the middle slices in the align part")
    p.add_argument("--fid-heights", default=None, help="align_fiducial: rows of the cap band, comma-separated "
                   "(default 24)")
    p.add_argument("--fid-top", type=int, default=16, help="align_fiducial: rows of surface above the band (default 16)")
    p.add_argument("--fid-width", type=int, default=None,
                   help="align_fiducial: columns of the registration region from x = 0 (default the whole width)")
    p.add_argument("--fid-curtains", type=float, default=None,
                   help="align_fiducial: curtain amplitude (default 0.02, the align part's)")
    p.add_argument("--fid-grain", type=float, default=0.02, help="align_fiducial: rms of the cap's grain (0.02)")
    p.add_argument("--fid-wear-contrast", type=float, default=0.0, help="align_fiducial(_auto): fraction of the "
                   "marks' contrast lost by the last slice (default 0)")
    p.add_argument("--fid-wear-blur", type=float, default=0.0, help="align_fiducial(_auto): blur of the marks at "
                   "the last slice, px (default 0)")
    p.add_argument("--fid-auto-heights", default=None, help="align_fiducial_auto: band rows, comma-separated, 0 = "
                   "no band (default 0,8,16,24)")
    p.add_argument("--fid-auto-tops", default=None, help="align_fiducial_auto: rows of surface above the band, "
                   "comma-separated (default 16)")
    p.add_argument("--charging-strengths", default=None,
                   help="strengths for the charging_limit part, comma-separated (default 0.03,0.04,0.05,0.06,0.07,0.1)")
    a = p.parse_args()
    global ALIGN_SIZES, ALIGN_SEEDS, ALIGN_METHOD_NAMES, ALIGN_JUMP_PX
    if a.align_methods:
        ALIGN_METHOD_NAMES = a.align_methods.split(",")
        unknown = [k for k in ALIGN_METHOD_NAMES if k not in ALIGN_METHOD_KEYS]
        if unknown:
            p.error(f"unknown --align-methods {unknown}; expected {', '.join(ALIGN_METHOD_KEYS)}")
    ALIGN_JUMP_PX = a.align_jump
    global ALIGN_DOSE
    ALIGN_DOSE = a.align_dose
    if a.align_structures:
        global ALIGN_STRUCTURE_NAMES
        ALIGN_STRUCTURE_NAMES = a.align_structures.split(",")
        unknown = [k for k in ALIGN_STRUCTURE_NAMES if k not in ALIGN_STRUCTURE_KEYS]
        if unknown:
            p.error(f"unknown --align-structures {unknown}; expected {', '.join(ALIGN_STRUCTURE_KEYS)}")
    if a.align_sizes:
        ALIGN_SIZES = [int(v) for v in a.align_sizes.split(",")]
    ALIGN_SEEDS = a.align_seeds
    global FID_HEIGHTS, FID_TOP, FID_WIDTH, FID_CURTAINS, FID_GRAIN
    if a.fid_heights:
        FID_HEIGHTS = [int(v) for v in a.fid_heights.split(",")]
    FID_TOP, FID_WIDTH, FID_CURTAINS, FID_GRAIN = a.fid_top, a.fid_width, a.fid_curtains, a.fid_grain
    global FID_AUTO_HEIGHTS, FID_AUTO_TOPS
    FID_WEAR.update(wear_contrast=a.fid_wear_contrast, wear_blur_px=a.fid_wear_blur)
    if a.fid_auto_heights:
        FID_AUTO_HEIGHTS = [int(v) for v in a.fid_auto_heights.split(",")]
    if a.fid_auto_tops:
        FID_AUTO_TOPS = [int(v) for v in a.fid_auto_tops.split(",")]
    if a.charging_strengths:
        global CHARGING_LIMIT_STRENGTHS
        CHARGING_LIMIT_STRENGTHS = tuple(float(v) for v in a.charging_strengths.split(","))
    parts = {"align": part_alignment, "align_sources": part_align_sources, "align_fiducial": part_align_fiducial, "align_fiducial_auto": part_align_fiducial_auto, "align_limit": part_align_limit, "align_methods": part_align_methods, "apparent_motion": part_apparent_motion, "destripe": part_destripe, "estimate": part_estimators, "speed": part_speed, "charging": part_charging, "charging_limit": part_charging_limit, "charging_side": part_charging_side,
             "charging_values": part_charging_values}
    res = {}
    t0 = time.perf_counter()
    for k in a.parts.split(","):
        if k == "targets":
            continue
        res[k] = parts[k](a.quick)
    res["targets"] = summary(res)
    res["total_s"] = round(time.perf_counter() - t0, 1)
    print("total", res["total_s"], "s")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
