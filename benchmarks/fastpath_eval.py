"""Issue-15 fidelity measures of the fast path against the Monte Carlo on the held-out paired test set
(experiments/fastpath_sets.py): used by bench_fastsim.py (projection, paired translator) and bench_gan.py
(translators side by side). Every number is per held-out structure, then mean +- sd over the structures."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import fastpath_sets as sets  # noqa: E402


def projection_variants(layer_tables=None):
    """name -> callable(structure, energy) -> images of slices 0..SLICES-1 (any gray scale). ``layer_tables``:
    {name: path} of other depth-layer tables (``experiments/fastpath_fit_layers.py --out``), scored as variants
    "depth layers, table NAME" next to the shipped table."""
    from fibsynth.fastsim.fidelity import INCIDENCE_DEG, VOXEL_NM
    from fibsynth.fastsim.projection import project

    def window(s, e):
        return project(s, (VOXEL_NM,) * 3, e, incidence_deg=INCIDENCE_DEG, slices=(0, sets.SLICES))[0]

    out = {"window s=0.5 (default)": window}
    try:
        from fibsynth.fastsim.projection import THIN_SOLID_DEPTH

        def thin(s, e):
            return project(s, (VOXEL_NM,) * 3, e, incidence_deg=INCIDENCE_DEG, slices=(0, sets.SLICES),
                           solid_depth=THIN_SOLID_DEPTH)[0]

        out[f"window + thin solid (solid_depth={THIN_SOLID_DEPTH})"] = thin
    except ImportError:
        pass
    try:
        from fibsynth.fastsim.projection import METHODS  # noqa: F401

        def layered(s, e):
            return project(s, (VOXEL_NM,) * 3, e, incidence_deg=INCIDENCE_DEG, slices=(0, sets.SLICES),
                           method="layered")[0]

        out["layered"] = layered
    except ImportError:
        pass
    if "depth_layers" in METHODS:
        def depth_layers(s, e):
            return project(s, (VOXEL_NM,) * 3, e, incidence_deg=INCIDENCE_DEG, slices=(0, sets.SLICES),
                           method="depth_layers")[0]

        out[SHIPPED_LAYERS] = depth_layers
    for lname, path in (layer_tables or {}).items():
        from fibsynth.fastsim.projection import load_layers_table, project_layers

        def other(s, e, _t=load_layers_table(str(path))):
            return project_layers(s, (VOXEL_NM,) * 3, e, INCIDENCE_DEG, 0, sets.SLICES, solid="gold", pore="epoxy",
                                  table=_t)[0]

        out[f"depth layers, table {lname}"] = other
    return out


#: the projection variant of the shipped depth-layer table (candidate tables are scored paired against it)
SHIPPED_LAYERS = "depth layers (MC-fitted layer weights)"


def mean_image_rows(add, name, m, ref, ref2, ps_mc):
    """Rows of a translator's noiseless mean image ``m`` against the two Monte Carlo realisations."""
    from fibsynth.fastsim import fidelity as F

    add(name, "corr", F.pearson(m, ref))
    add(name, "ssim", F.ssim(m, ref))
    add(name, "hist", F.hist_distance(m, ref))
    add(name, "ps_ratio", (F.radial_power(m) / ps_mc).tolist())
    add(name, "rmse_vs_mc_mean", float(np.sqrt(np.mean((m - 0.5 * (ref + ref2)) ** 2))))
    # histogram diagnosis: (a) is the MC's noise binomial about the true mean?  E[(r1 - r0)^2] / 2 over
    # the binomial variance of the mean image (1 = yes); (b) the mean image's own error against the true
    # mean: E[(m - r)^2] - E[m (1 - m) / N] (the noise part removed), as a standard deviation; (c) its
    # bias (stack mean minus the MCs' mean); (d) its spread: var(m) / cov(r0, r1) (= var of the true mean)
    binom = float(np.mean(m * (1 - m) / sets.ELECTRONS))
    add(name, "mc_noise_var_over_binomial", float(np.mean((ref2 - ref) ** 2) / 2 / binom))
    # the same per gray level (8 quantile bins of this mean image): binomial at every level, not only on average?
    add(name, "mc_noise_var_over_binomial_by_level",
        F.noise_variance_by_level(m, ref, ref2, sets.ELECTRONS)["ratio"])
    ev = 0.5 * (np.mean((m - ref) ** 2) + np.mean((m - ref2) ** 2)) - binom
    add(name, "error_sd_vs_true_mean", float(np.sqrt(max(ev, 0.0))))
    add(name, "bias", float(m.mean() - 0.5 * (ref.mean() + ref2.mean())))
    add(name, "var_over_true_mean_var", float(m.var() / np.cov(ref.ravel(), ref2.ravel())[0, 1]))


#: the row of a perfect model with binomial noise (every image, the "Monte Carlo" pair included, drawn from the shipped
#: translator's calibrated mean image): what the targets' measures give when nothing but noise differs
NULL_ROW = "perfect binomial model (null)"
#: rows of the histogram decomposition (fast15): the shipped calibrated mean image with its per-structure level (and
#: spread) set to the Monte Carlo's -- oracles that read the test Monte Carlo, a decomposition, not candidates
ORACLE_LEVEL = "oracle: shipped mean image, level set to the MC's"
ORACLE_LEVEL_SPREAD = "oracle: shipped mean image, level and spread set to the MC's"
#: Monte Carlo stand-in seeds of the null row
NULL_MC_SEEDS = (90001, 90002)
#: noise draws for the higher-resolution noise power (8 pairs instead of the protocol's 2; the first 4 are the
#: protocol's)
HR_DRAWS = 16


def oracle_means(m, ref, ref2) -> dict:
    """The histogram decomposition's oracle mean images (:data:`ORACLE_LEVEL`, :data:`ORACLE_LEVEL_SPREAD`): ``m``
    shifted to the Monte Carlo's stack mean (the mean of both realisations), and also scaled about it to the true
    mean's spread (sd = sqrt(cov(ref, ref2)), the noise-free part of the Monte Carlo's variance); clipped to [0, 1]."""
    m = np.asarray(m, np.float64)
    mu = 0.5 * (float(np.mean(ref)) + float(np.mean(ref2)))
    sd_true = float(np.sqrt(max(np.cov(np.ravel(ref), np.ravel(ref2))[0, 1], 0.0)))
    level = m - m.mean() + mu
    spread = mu + (m - m.mean()) * (sd_true / m.std() if m.std() > 0 else 1.0)
    return {ORACLE_LEVEL: np.clip(level, 0.0, 1.0), ORACLE_LEVEL_SPREAD: np.clip(spread, 0.0, 1.0)}


def structure_seeds(seeds, structure_seed: int, energy_kev: float, shared: bool = False) -> tuple[int, ...]:
    """The noise seeds of one structure and energy: each base seed combined with the structure's seed and the energy,
    so that every structure gets its own noise draws and the per-structure differences that the paired intervals
    treat as independent are independent (fast12: with the same seeds for every structure, the draws share a common
    component -- numpy's binomial sampler turns the same uniforms into similar count histograms --, and a perfect
    binomial model scored 'met' at 1 keV, -0.00028 [-0.00046, -0.00010]). ``shared``: the seeds as given (the
    protocol before fast12)."""
    if shared:
        return tuple(int(v) for v in seeds)
    return tuple(int(v) * 10**7 + int(structure_seed) * 100 + int(round(float(energy_kev) * 10)) for v in seeds)


def nps_rows(add, name, draws, nps_ref, ref_images):
    """Noise power rows of a noisy output with binomial noise: ``nps_ratio`` from the protocol's first 4 draws (2
    pairs), ``nps_ratio_16`` from all (8 pairs), ``nps_level_ratio`` the white level its histogram implies over the
    reference's (:func:`fibsynth.fastsim.fidelity.binomial_noise_level`)."""
    from fibsynth.fastsim import fidelity as F

    def ratio(d):
        return (np.mean([F.radial_nps(d[i], d[i + 1]) for i in range(0, len(d) - 1, 2)], 0) / nps_ref).tolist()

    add(name, "nps_ratio", ratio(draws[:4]))
    add(name, "nps_ratio_16", ratio(draws))
    add(name, "nps_level_ratio", F.binomial_noise_level(list(draws), sets.ELECTRONS)
        / F.binomial_noise_level(list(ref_images), sets.ELECTRONS))


def evaluate(energies=sets.TEST_ENERGIES, seeds=sets.TEST_SEEDS, cache=sets.CACHE, translators=("paired", "gan"),
             noise_seeds=(11, 12, 13, 14), progress=print, candidates=None, layer_tables=None,
             shared_noise_seeds: bool = False) -> dict:
    """``candidates``: {name: weights path} of other paired translators (each with its .json) scored in the same run,
    on the same structures and noise seeds, as rows "candidate NAME" (calibrated, if it has a calibration) and
    "candidate NAME, no histogram calibration". The noise power is also measured with :data:`HR_DRAWS` draws and as
    the histogram-implied level (:func:`nps_rows`), and a null row (:data:`NULL_ROW`) gives the measures' floor.
    Noise draws: ``noise_seeds`` combined with each structure's seed and the energy (:func:`structure_seeds`; the
    same for every translator row, so that translators are compared on the same draws), or, with
    ``shared_noise_seeds``, the same seeds for every structure (the protocol before fast12)."""
    from fibsynth.fastsim import fidelity as F

    res: dict = {"test": {"structures": list(seeds), "size": sets.SIZE, "slices": sets.SLICES,
                          "electrons_per_pixel": sets.ELECTRONS, "voxel_nm": F.VOXEL_NM,
                          "incidence_deg": F.INCIDENCE_DEG,
                          "noise_seeds": {"base": list(noise_seeds), "high_resolution_draws": HR_DRAWS,
                                          "per_structure": not shared_noise_seeds}}, "energies": {}}
    variants = projection_variants(layer_tables)
    paired = None
    if "paired" in translators:
        from fibsynth.fastsim.translator import load_paired

        paired = load_paired()
    cands = {}
    for cname, path in (candidates or {}).items():
        from fibsynth.fastsim.translator import PairedTranslator

        cands[cname] = PairedTranslator(path)
    for e in energies:
        rows: dict = {}

        def add(name, key, value):
            rows.setdefault(name, {}).setdefault(key, []).append(value)

        for seed in seeds:
            s = sets.test_structure(seed)
            mc0 = sets.test_mc(seed, e, 0, cache)
            mc1 = sets.test_mc(seed, e, 1, cache)
            ref, ref2, std = mc0["eta"], mc1["eta"], mc0["std"]
            nps_mc = F.radial_nps(ref, ref2)
            ps_mc = F.radial_power(ref)
            add("mc second realisation", "corr", F.pearson(ref2, ref))
            add("mc second realisation", "ssim", F.ssim(ref2, ref))
            add("mc second realisation", "hist", F.hist_distance(ref2, ref))
            add("mc second realisation", "ceiling_corr",
                float(np.sqrt(max(0.0, 1 - np.mean(std ** 2) / np.var(ref)))))
            add("mc second realisation", "mc_seconds", mc0["seconds"])
            for name, fn in variants.items():
                t0 = time.perf_counter()
                p = fn(s, e)
                add("projection " + name, "seconds", time.perf_counter() - t0)
                add("projection " + name, "corr", F.pearson(p, ref))
                # mean(MC)-vs-projection correlation: average of both realisations removes half the noise
                add("projection " + name, "corr_vs_mc_mean", F.pearson(p, 0.5 * (ref + ref2)))
            if paired is not None:
                from fibsynth.fastsim.fidelity import INCIDENCE_DEG, VOXEL_NM

                from fibsynth.fastsim.translator import shot_noise

                base = tuple(noise_seeds) + tuple(range(100, 100 + HR_DRAWS - len(noise_seeds)))
                hr_seeds = structure_seeds(base, seed, e, shared_noise_seeds)
                ns = hr_seeds[:len(noise_seeds)]
                t0 = time.perf_counter()
                a, m = paired(s, (VOXEL_NM,) * 3, e, electrons_per_pixel=sets.ELECTRONS, seed=ns[0],
                              incidence_deg=INCIDENCE_DEG, slices=(0, sets.SLICES))
                add("paired translator", "seconds", time.perf_counter() - t0)
                outputs = [("paired translator", a, m)]
                if paired.histogram_calibration:  # before/after the histogram calibration, same structures and seeds
                    a0, m0 = paired(s, (VOXEL_NM,) * 3, e, electrons_per_pixel=sets.ELECTRONS, seed=ns[0],
                                    incidence_deg=INCIDENCE_DEG, slices=(0, sets.SLICES), calibrated=False)
                    outputs.append(("paired translator, no histogram calibration", a0, m0))
                for cname, ctr in cands.items():
                    for cal in ((True, False) if ctr.histogram_calibration else (False,)):
                        ca, cm = ctr(s, (VOXEL_NM,) * 3, e, electrons_per_pixel=sets.ELECTRONS, seed=ns[0],
                                     incidence_deg=INCIDENCE_DEG, slices=(0, sets.SLICES), calibrated=cal)
                        cn = f"candidate {cname}" + ("" if cal else ", no histogram calibration")
                        outputs.append((cn, ca, cm))
                        mean_image_rows(add, cn + " mean (no noise)", cm, ref, ref2, ps_mc)
                for vname, va, vm in outputs:
                    # the noisy output's measures: averaged over the noise draws (seeds), so that one draw's luck
                    # does not decide; the noise power from pairs of draws
                    draws = [va] + [shot_noise(vm, sets.ELECTRONS, sd) for sd in ns[1:]]
                    for key, fn in (("corr", F.pearson), ("ssim", F.ssim), ("hist", F.hist_distance)):
                        add(vname, key, float(np.mean([fn(d, ref) for d in draws])))
                    add(vname, "ps_ratio", np.mean([F.radial_power(d) / ps_mc for d in draws], 0).tolist())
                    draws += [shot_noise(vm, sets.ELECTRONS, sd) for sd in hr_seeds[len(draws):]]
                    nps_rows(add, vname, draws, nps_mc, (ref, ref2))
                # the null: every image drawn from the calibrated mean image m (a model as good as can be; only the
                # noise differs): the floor of each measure on this test set and what its verdict then says
                z0, z1 = (shot_noise(m, sets.ELECTRONS, sd) for sd in structure_seeds(NULL_MC_SEEDS, seed, e,
                                                                                        shared_noise_seeds))
                zd = [shot_noise(m, sets.ELECTRONS, sd) for sd in hr_seeds]
                add(NULL_ROW, "hist_minus_mc_mc", float(np.mean([F.hist_distance(d, z0) for d in zd[:4]]))
                    - F.hist_distance(z1, z0))
                nps_rows(add, NULL_ROW, zd, F.radial_nps(z0, z1), (z0, z1))
                # where the histogram gap is (fast15): per quantile band (tails vs body, signed), and what is left once
                # each structure's level, then level and spread, are the Monte Carlo's (same draws' seeds)
                mcmc_h = F.hist_distance(ref2, ref)
                bm = F.hist_distance_bands(ref2, ref)
                for key, part in (("hist_bands_minus_mc_mc", "abs"), ("hist_bands_signed_minus_mc_mc", "signed")):
                    add("paired translator", key, (np.mean([F.hist_distance_bands(shot_noise(m, sets.ELECTRONS, sd), ref)
                                                            [part] for sd in ns], 0) - bm[part]).tolist())
                for oname, om in oracle_means(m, ref, ref2).items():
                    add(oname, "hist_minus_mc_mc", float(np.mean([F.hist_distance(shot_noise(om, sets.ELECTRONS, sd),
                                                                                  ref) for sd in ns])) - mcmc_h)
                mean_image_rows(add, "paired translator mean (no noise)", m, ref, ref2, ps_mc)
                add("mc second realisation", "ps_ratio", (F.radial_power(ref2) / ps_mc).tolist())
            if "gan" in translators and e == 2.0:
                gseeds = structure_seeds(noise_seeds, seed, e, shared_noise_seeds)
                from fibsynth.gan import Translator
                from fibsynth.fastsim.projection import project
                from fibsynth.fastsim.fidelity import INCIDENCE_DEG, VOXEL_NM

                p = project(s, (VOXEL_NM,) * 3, e, incidence_deg=INCIDENCE_DEG, slices=(0, sets.SLICES))[0]
                t0 = time.perf_counter()
                g = Translator("proj2mc-2kev-au-epoxy", seed=gseeds[0])(p)[0]
                add("cyclegan proj2mc-2kev (old)", "seconds", time.perf_counter() - t0)
                g2 = Translator("proj2mc-2kev-au-epoxy", seed=gseeds[1])(p)[0]
                add("cyclegan proj2mc-2kev (old)", "corr", F.pearson(g, ref))
                add("cyclegan proj2mc-2kev (old)", "ssim", F.ssim(g, ref))
                add("cyclegan proj2mc-2kev (old)", "hist", F.hist_distance(g, ref))
                add("cyclegan proj2mc-2kev (old)", "ps_ratio", (F.radial_power(g) / ps_mc).tolist())
                add("cyclegan proj2mc-2kev (old)", "nps_ratio", (F.radial_nps(g, g2) / nps_mc).tolist())
                lin = (p - p.mean()) / p.std() * ref.std() + ref.mean()  # oracle linear match on the test slices
                add("projection mean/std matched", "ssim", F.ssim(lin, ref))
                add("projection mean/std matched", "hist", F.hist_distance(lin, ref))
            progress(f"E {e:g} keV, structure {seed}: done")
        summary = {}
        for name, d in rows.items():
            summary[name] = {}
            for key, vals in d.items():
                if isinstance(vals[0], list):  # per-band ratios: mean +- sd per band, and the worst band's |r - 1|
                    arr = np.asarray(vals)
                    summary[name][key] = {"bands_mean": arr.mean(0).tolist(), "bands_sd": arr.std(0, ddof=1).tolist(),
                                          "max_abs_dev": F.mean_sd(np.abs(arr - 1).max(1)),
                                          "values": arr.tolist()}
                else:
                    summary[name][key] = F.mean_sd(vals)
        res["energies"][e] = summary
    res["targets"] = target_intervals(res)
    return res


#: rows of noisy translator outputs that the issue-15 targets apply to (plus "candidate NAME" rows)
TRANSLATOR_ROWS = ("paired translator", "paired translator, no histogram calibration", "cyclegan proj2mc-2kev (old)")


def target_intervals(res, level=0.95) -> dict:
    """Every issue-15 target as a 95 % Student-t interval over the held-out structures, paired per structure where
    the target is relative to the Monte Carlo's second realisation: projection corr >= 0.93 (interval of the mean);
    SSIM - MC-MC SSIM within +-0.01; hist - MC-MC hist <= 0; NPS ratio per band within 0.9-1.1 (and the old
    criterion, each structure's worst band |r - 1|, <= 0.10); for candidates also candidate - shipped, paired.
    Verdict (``fidelity.verdict``): met (whole interval inside), not met (wholly outside), unresolved."""
    from fibsynth.fastsim import fidelity as F

    out = {}
    for e, rows in res["energies"].items():
        ceil = rows["mc second realisation"]
        te = out[e] = {}
        for name, r in rows.items():
            if name.startswith("projection ") and "corr" in r:
                ci = F.t_interval(r["corr"]["values"], level)
                te[name] = {"corr": {**ci, "verdict": F.verdict(ci, lo=0.93)}}
                shipped = rows.get("projection " + SHIPPED_LAYERS)
                if name.startswith("projection depth layers, table ") and shipped is not None:
                    te[name]["corr_minus_shipped_table"] = F.t_interval(
                        np.subtract(r["corr"]["values"], shipped["corr"]["values"]), level)
            noisy = name in TRANSLATOR_ROWS or (name.startswith("candidate ") and "mean (no noise)" not in name)
            if name == NULL_ROW or name in (ORACLE_LEVEL, ORACLE_LEVEL_SPREAD):
                d = te[name] = {}
                ci = F.t_interval(r["hist_minus_mc_mc"]["values"], level)
                d["hist_minus_mc_mc"] = {**ci, "verdict": F.verdict(ci, hi=0.0)}
            elif not noisy or "ssim" not in r:
                continue
            else:
                d = te[name] = {}
                ci = F.t_interval(np.subtract(r["ssim"]["values"], ceil["ssim"]["values"]), level)
                d["ssim_minus_mc_mc"] = {**ci, "verdict": F.verdict(ci, -0.01, 0.01)}
                ci = F.t_interval(np.subtract(r["hist"]["values"], ceil["hist"]["values"]), level)
                d["hist_minus_mc_mc"] = {**ci, "verdict": F.verdict(ci, hi=0.0)}
            if "nps_ratio" in r:
                bands = np.asarray(r["nps_ratio"]["values"])
                cis = [F.t_interval(bands[:, j], level) for j in range(bands.shape[1])]
                vs = [F.verdict(c, 0.9, 1.1) for c in cis]
                d["nps_ratio_bands"] = {"bands": cis, "verdict": "not met" if "not met" in vs else
                                        ("unresolved" if "unresolved" in vs else "met")}
                ci = F.t_interval(r["nps_ratio"]["max_abs_dev"]["values"], level)
                d["nps_worst_band_per_structure"] = {**ci, "verdict": F.verdict(ci, hi=0.10)}
            if "nps_ratio_16" in r:  # the same with 8 pairs of draws (less of the output's own estimation noise)
                ci = F.t_interval(r["nps_ratio_16"]["max_abs_dev"]["values"], level)
                d["nps_worst_band_per_structure_16_draws"] = {**ci, "verdict": F.verdict(ci, hi=0.10)}
            if "nps_level_ratio" in r:  # the white level implied by the histograms (binomial noise)
                ci = F.t_interval(r["nps_level_ratio"]["values"], level)
                d["nps_level_ratio"] = {**ci, "verdict": F.verdict(ci, 0.9, 1.1)}
            if name.startswith("candidate ") and "paired translator" in rows:
                ref = rows["paired translator" + (", no histogram calibration"
                                                  if name.endswith("no histogram calibration") else "")]
                d["minus_shipped"] = {k: F.t_interval(np.subtract(r[k]["values"], ref[k]["values"]), level)
                                      for k in ("corr", "ssim", "hist")}
                for key, label in (("nps_ratio", "nps_worst_band"), ("nps_ratio_16", "nps_worst_band_16_draws")):
                    if key in r and key in ref:
                        d["minus_shipped"][label] = F.t_interval(
                            np.subtract(r[key]["max_abs_dev"]["values"], ref[key]["max_abs_dev"]["values"]), level)
                if "nps_level_ratio" in r and "nps_level_ratio" in ref:
                    d["minus_shipped"]["nps_level_ratio"] = F.t_interval(
                        np.subtract(r["nps_level_ratio"]["values"], ref["nps_level_ratio"]["values"]), level)
    return out


def print_intervals(res, out=print):
    """The table of :func:`target_intervals` (one line per energy, row and target)."""
    def ci(c, dg=4):
        return f"{c['mean']:+.{dg}f} +- {c['sd']:.{dg}f} (95 % CI {c['lo']:+.{dg}f} .. {c['hi']:+.{dg}f})"

    n = len(res["test"]["structures"])
    out(f"\nIssue-15 targets with 95 % t-intervals over {n} held-out structures {res['test']['structures']}")
    for e, rows in res.get("targets", {}).items():
        for name, d in rows.items():
            if "corr" in d and "ssim_minus_mc_mc" not in d:
                c = d["corr"]
                out(f"  {e:g} keV {name}: corr {c['mean']:.4f} +- {c['sd']:.4f} (95 % CI {c['lo']:.4f} .. {c['hi']:.4f})"
                    f" >= 0.93: {c['verdict'].upper()}")
                if "corr_minus_shipped_table" in d:
                    out(f"    minus the shipped depth-layer table (paired): corr {ci(d['corr_minus_shipped_table'])}")
                continue
            out(f"  {e:g} keV {name}:")
            if "ssim_minus_mc_mc" in d:
                out(f"    SSIM - MC-MC {ci(d['ssim_minus_mc_mc'])} within +-0.01: "
                    f"{d['ssim_minus_mc_mc']['verdict'].upper()}")
            out(f"    hist - MC-MC {ci(d['hist_minus_mc_mc'], 5)} <= 0: {d['hist_minus_mc_mc']['verdict'].upper()}")
            if "nps_ratio_bands" in d:
                b = d["nps_ratio_bands"]
                out("    NPS ratio per band " + ", ".join(f"{c['mean']:.3f} [{c['lo']:.3f}, {c['hi']:.3f}]"
                                                        for c in b["bands"])
                    + f" within 0.9-1.1: {b['verdict'].upper()}")
                w = d["nps_worst_band_per_structure"]
                out(f"    NPS worst band per structure |r - 1| {w['mean']:.3f} +- {w['sd']:.3f} (95 % CI {w['lo']:.3f} .. "
                    f"{w['hi']:.3f}) <= 0.10: {w['verdict'].upper()}")
            if "nps_worst_band_per_structure_16_draws" in d:
                w = d["nps_worst_band_per_structure_16_draws"]
                out(f"    NPS worst band per structure, {HR_DRAWS} draws {w['mean']:.3f} +- {w['sd']:.3f} (95 % CI "
                    f"{w['lo']:.3f} .. {w['hi']:.3f}) <= 0.10: {w['verdict'].upper()}")
            if "nps_level_ratio" in d:
                w = d["nps_level_ratio"]
                out(f"    NPS level from the histograms, ratio {w['mean']:.4f} +- {w['sd']:.4f} (95 % CI {w['lo']:.4f} .. "
                    f"{w['hi']:.4f}) within 0.9-1.1: {w['verdict'].upper()}")
            if "minus_shipped" in d:
                out("    minus shipped (paired): " + "; ".join(f"{k} {ci(c)}" for k, c in d["minus_shipped"].items()))


def print_table(res, out=print):
    from fibsynth.fastsim.fidelity import fmt

    for e, rows in res["energies"].items():
        ceil = rows["mc second realisation"]
        out(f"\n{e:g} keV (held-out structures {res['test']['structures']}, {res['test']['slices']} slices "
            f"{res['test']['size']}x{res['test']['size']}, {res['test']['electrons_per_pixel']} e/px; mean +- sd over "
            f"structures)")
        out(f"  MC vs MC (ceiling): corr {fmt(ceil['corr'])}, SSIM {fmt(ceil['ssim'])}, hist {fmt(ceil['hist'], 4)}, "
            f"noise-limited corr {fmt(ceil['ceiling_corr'])}")
        for name, r in rows.items():
            if name == "mc second realisation":
                continue
            parts = []
            for key in ("corr", "corr_vs_mc_mean", "ssim", "hist", "hist_minus_mc_mc", "rmse_vs_mc_mean",
                        "error_sd_vs_true_mean", "bias", "mc_noise_var_over_binomial", "var_over_true_mean_var",
                        "nps_level_ratio", "seconds"):
                if key in r:
                    parts.append(f"{key} {fmt(r[key], 4 if key in ('hist', 'hist_minus_mc_mc', 'rmse_vs_mc_mean', 'bias', 'error_sd_vs_true_mean', 'nps_level_ratio') else 3)}")
            if "mc_noise_var_over_binomial_by_level" in r:
                parts.append("MC noise var / binomial per level (8 bins of the mean, low -> high) ["
                             + ", ".join(f"{v:.3f}" for v in r["mc_noise_var_over_binomial_by_level"]["bands_mean"])
                             + "]")
            for key in ("hist_bands_minus_mc_mc", "hist_bands_signed_minus_mc_mc"):
                if key in r:
                    parts.append(f"{key} (quantile bands 0-1-10-50-90-99-100 %) ["
                                 + ", ".join(f"{v:+.5f}" for v in r[key]["bands_mean"]) + "]")
            for key in ("nps_ratio", "nps_ratio_16", "ps_ratio"):
                if key in r:
                    parts.append(f"{key} bands [{', '.join(f'{v:.3f}' for v in r[key]['bands_mean'])}] "
                                 f"max|r-1| {fmt(r[key]['max_abs_dev'])}")
            out(f"  {name}: " + "; ".join(parts))
        checks = []
        for name, r in rows.items():
            if "corr" in r and name.startswith("projection "):
                checks.append(f"{name} corr >= 0.93: {'MET' if r['corr']['mean'] >= 0.93 else 'NOT MET'} "
                              f"({r['corr']['mean']:.3f})")
            if "ssim" in r and (name in ("paired translator", "paired translator, no histogram calibration",
                                         "cyclegan proj2mc-2kev (old)")
                                or (name.startswith("candidate ") and "mean (no noise)" not in name)):
                d = r["ssim"]["mean"] - ceil["ssim"]["mean"]
                checks.append(f"{name} SSIM within 0.01 of ceiling: {'MET' if abs(d) <= 0.01 else 'NOT MET'} "
                              f"(diff {d:+.4f})")
                h = r["hist"]["mean"] - ceil["hist"]["mean"]
                checks.append(f"{name} hist <= MC-MC: {'MET' if h <= 0 else 'NOT MET'} "
                              f"({r['hist']['mean']:.4f} vs {ceil['hist']['mean']:.4f})")
            if "nps_ratio" in r:
                m = r["nps_ratio"]["max_abs_dev"]["mean"]
                checks.append(f"{name} NPS within 10 %: {'MET' if m <= 0.10 else 'NOT MET'} (worst band {m:.3f})")
        for c in checks:
            out("  target: " + c)


def stack_time(n=160, energies=sets.TEST_ENERGIES, mc_slices=1, electrons_per_pixel=sets.ELECTRONS, seed=1):
    """Seconds per n^3 stack: the fast path (projection + paired translator + shot noise, all n slices, measured)
    against the Monte Carlo (``mc_slices`` slices of n x n measured, times n / mc_slices: an extrapolation)."""
    from fibsynth.fastsim.fidelity import INCIDENCE_DEG, VOXEL_NM, make_structure
    from fibsynth.pipeline import fast_stack, montecarlo_stack

    s = make_structure(seed, n, n, 0.3, 40.0)
    out = {"n": n, "electrons_per_pixel": electrons_per_pixel, "energies": {}}
    fast_stack(s[:8, :32, :32], VOXEL_NM, 2.0, translation="paired")  # JIT / weights
    for e in energies:
        t0 = time.perf_counter()
        p = fast_stack(s, VOXEL_NM, e, translation="paired", electrons_per_pixel=electrons_per_pixel,
                       incidence_deg=INCIDENCE_DEG, seed=seed)
        t_fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        montecarlo_stack(s, VOXEL_NM, slices=(0, mc_slices), energy_kev=e, electrons_per_pixel=electrons_per_pixel,
                         seed=seed, incidence_deg=INCIDENCE_DEG)
        t_mc = (time.perf_counter() - t0) * n / mc_slices
        out["energies"][e] = {"fast_seconds": t_fast, "mc_seconds_extrapolated": t_mc,
                              "mc_seconds_per_slice": t_mc / n, "speedup": t_mc / t_fast,
                              "fast_shape": list(p.data.shape)}
        print(f"{n}^3 at {e:g} keV: fast path {t_fast:.1f} s, Monte Carlo {t_mc / n:.1f} s/slice -> "
              f"{t_mc / 60:.0f} min per stack (extrapolated from {mc_slices} slice(s)), x{t_mc / t_fast:.0f}",
              flush=True)
    return out
