"""Fidelity of the in-lens SE paired translator (issue 17, item 4: silicon with open pores, 2 keV, 38 degrees,
in-lens) against the Monte Carlo on held-out structures, with the issue-15 measures, and its baselines in the
same run:

* ``mc second realisation``: a second Monte Carlo run of the same slices (the MC-MC ceiling);
* ``se projection``: ``fastsim.se_projection.project_se`` alone (no translator; pixel correlation only -- its gray
  scale is the model's, not the Monte Carlo's);
* ``se projection + mean/std rescale (oracle)``: the projection rescaled to the test Monte Carlo stack's own mean
  and standard deviation (no noise; as ``projection mean/std matched`` of benchmarks/fastpath_eval.py);
* ``se projection + mean/std rescale + noise``: the projection rescaled to the mean and noise-free standard
  deviation of the Monte Carlo's *training* stacks (sqrt(var - mean std^2)), then the translator's noise law at
  the dose: the plain alternative to the translator, scored like it;
* ``se translator``: the shipped translator (or ``--weights``), noisy output at the Monte Carlo's dose, averaged
  over 4 noise draws; ``se translator mean (no noise)``: its mean image.

Per held-out structure, then mean +- sd over the structures (se_fastpath_sets.TEST). The Monte Carlo stacks come
from experiments/se_fastpath_sets.py's cache.

    OMP_NUM_THREADS=1 PYTHONPATH=src nice -n 10 python benchmarks/se_translator_eval.py [--json OUT] [--record-in-shipped]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import se_fastpath_sets as sets  # noqa: E402

NOISE_SEEDS = (11, 12, 13, 14)


def noise_ratio_by_level(level, r0, r1, law, n, bins=8):
    """Per quantile bin of ``level``: the Monte Carlo's noise variance E[(r1 - r0)^2] / 2 over the law's v(m) / N."""
    from fibsynth.fastsim.translator import per_primary_variance

    lv, d = np.ravel(level).astype(float), (np.ravel(r1).astype(float) - np.ravel(r0)) ** 2 / 2
    v = per_primary_variance(lv, law) / n
    edges = np.quantile(lv, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, lv, side="right") - 1, 0, bins - 1)
    return [float(d[idx == k].mean() / v[idx == k].mean()) for k in range(bins)]


def training_stats(tr, cache):
    """Mean and noise-free standard deviation of the Monte Carlo's training stacks, and the SE projection's mean
    and standard deviation on the same slices (for the plain rescale baseline)."""
    from fibsynth.fastsim.se_projection import project_se

    mcs, stds, projs = [], [], []
    for seed, sf, lig in sets.TRAIN:
        s = sets.train_structure(seed, sf, lig)
        m = sets.train_mc(seed, sf, lig, cache, run=False)
        mcs.append(m["eta"].astype(float))
        stds.append(m["std"].astype(float))
        projs.append(project_se(s, (sets.VOXEL_NM,) * 3, sets.ENERGY_KEV, solid=sets.SOLID,
                                incidence_deg=sets.INCIDENCE_DEG, slices=(0, sets.TRAIN_SLICES),
                                yields=tr.signal["yields"])[0].astype(float))
    mc, std, p = np.concatenate(mcs), np.concatenate(stds), np.concatenate(projs)
    return {"mc_mean": float(mc.mean()), "mc_sd_noise_free": float(np.sqrt(mc.var() - np.mean(std**2))),
            "projection_mean": float(p.mean()), "projection_sd": float(p.std())}


def evaluate(weights=None, cache=sets.CACHE, progress=print):
    from fibsynth.fastsim import fidelity as F
    from fibsynth.fastsim.se_projection import project_se
    from fibsynth.fastsim.translator import PairedTranslator, load_paired, per_primary_variance, se_shot_noise

    tr = PairedTranslator(weights) if weights is not None else load_paired(detector=sets.DETECTOR)
    law = tr.signal["noise"]
    n = sets.ELECTRONS
    t0 = time.perf_counter()
    st = training_stats(tr, cache)
    progress(f"training statistics ({time.perf_counter() - t0:.0f} s): {st}")
    rows: dict = {}

    def add(name, key, value):
        rows.setdefault(name, {}).setdefault(key, []).append(value)

    def noisy_rows(name, draws, ref, ps_mc, nps_mc):
        for key, fn in (("corr", F.pearson), ("ssim", F.ssim), ("hist", F.hist_distance)):
            add(name, key, float(np.mean([fn(d, ref) for d in draws])))
        add(name, "ps_ratio", np.mean([F.radial_power(d) / ps_mc for d in draws], 0).tolist())
        add(name, "nps_ratio", (np.mean([F.radial_nps(draws[i], draws[i + 1]) for i in range(0, len(draws) - 1, 2)],
                                        0) / nps_mc).tolist())

    vox = (sets.VOXEL_NM,) * 3
    for seed, sf, lig in sets.TEST:
        s = sets.test_structure(seed, sf, lig)
        mc0 = sets.test_mc(seed, sf, lig, 0, cache, run=False)
        mc1 = sets.test_mc(seed, sf, lig, 1, cache, run=False)
        ref, ref2, std = mc0["eta"], mc1["eta"], mc0["std"]
        mean_mc = 0.5 * (ref + ref2)
        nps_mc, ps_mc = F.radial_nps(ref, ref2), F.radial_power(ref)
        c = "mc second realisation"
        add(c, "corr", F.pearson(ref2, ref))
        add(c, "ssim", F.ssim(ref2, ref))
        add(c, "hist", F.hist_distance(ref2, ref))
        add(c, "ceiling_corr", float(np.sqrt(max(0.0, 1 - np.mean(std ** 2) / np.var(ref)))))
        add(c, "ps_ratio", (F.radial_power(ref2) / ps_mc).tolist())
        add(c, "mc_cpu_seconds", mc0["seconds"])
        # the SE projection alone
        t0 = time.perf_counter()
        p = project_se(s, vox, sets.ENERGY_KEV, solid=sets.SOLID, incidence_deg=sets.INCIDENCE_DEG,
                       slices=(0, sets.TEST_SLICES), yields=tr.signal["yields"])[0]
        add("se projection", "seconds", time.perf_counter() - t0)
        add("se projection", "corr", F.pearson(p, ref))
        add("se projection", "corr_vs_mc_mean", F.pearson(p, mean_mc))
        add("se projection", "bias", float(p.mean() - mean_mc.mean()))
        # plain rescales
        lin = (p - p.mean()) / p.std() * ref.std() + ref.mean()
        o = "se projection + mean/std rescale (oracle, no noise)"
        add(o, "ssim", F.ssim(lin, ref))
        add(o, "hist", F.hist_distance(lin, ref))
        q = (p - st["projection_mean"]) / st["projection_sd"] * st["mc_sd_noise_free"] + st["mc_mean"]
        q = np.clip(q, 0.0, None).astype(np.float32)
        b = "se projection + mean/std rescale + noise"
        noisy_rows(b, [se_shot_noise(q, n, sd, law) for sd in NOISE_SEEDS], ref, ps_mc, nps_mc)
        add(b, "rmse_vs_mc_mean", float(np.sqrt(np.mean((q - mean_mc) ** 2))))
        add(b, "bias", float(q.mean() - mean_mc.mean()))
        # the translator
        t0 = time.perf_counter()
        a, m = tr(s, vox, sets.ENERGY_KEV, electrons_per_pixel=n, seed=NOISE_SEEDS[0],
                  incidence_deg=sets.INCIDENCE_DEG, slices=(0, sets.TEST_SLICES), solid=sets.SOLID, pore="vacuum",
                  detector=sets.DETECTOR)
        add("se translator", "seconds", time.perf_counter() - t0)
        noisy_rows("se translator", [a] + [tr.sample(m, n, sd) for sd in NOISE_SEEDS[1:]], ref, ps_mc, nps_mc)
        t = "se translator mean (no noise)"
        add(t, "corr", F.pearson(m, ref))
        add(t, "corr_vs_mc_mean", F.pearson(m, mean_mc))
        add(t, "ssim", F.ssim(m, ref))
        add(t, "rmse_vs_mc_mean", float(np.sqrt(np.mean((m - mean_mc) ** 2))))
        add(t, "bias", float(m.mean() - mean_mc.mean()))
        add(t, "mc_noise_var_over_law_by_level", noise_ratio_by_level(m, ref, ref2, law, n))
        add(t, "mc_noise_var_over_law", float(np.mean((ref2 - ref) ** 2) / 2 / np.mean(per_primary_variance(m, law) / n)))
        progress(f"structure {seed}: done")
    summary = {}
    for name, d in rows.items():
        summary[name] = {}
        for key, vals in d.items():
            if isinstance(vals[0], list):
                arr = np.asarray(vals)
                summary[name][key] = {"bands_mean": arr.mean(0).tolist(), "bands_sd": arr.std(0, ddof=1).tolist(),
                                      "max_abs_dev": F.mean_sd(np.abs(arr - 1).max(1))}
            else:
                summary[name][key] = F.mean_sd(vals)
    return {"test": {"structures": [s for s, _, _ in sets.TEST], "size": sets.SIZE, "slices": sets.TEST_SLICES,
                     "electrons_per_pixel": n, "voxel_nm": sets.VOXEL_NM, "incidence_deg": sets.INCIDENCE_DEG,
                     "solid": sets.SOLID, "pore": "vacuum", "detector": sets.DETECTOR, "energy_kev": sets.ENERGY_KEV,
                     "noise_seeds": list(NOISE_SEEDS)},
            "training_stats": st, "rows": summary}


def print_table(res, out=print):
    from fibsynth.fastsim.fidelity import fmt

    rows = res["rows"]
    ceil = rows["mc second realisation"]
    t = res["test"]
    out(f"{t['solid']}/open pores, {t['energy_kev']:g} keV, {t['detector']} (held-out structures {t['structures']}, "
        f"{t['slices']} slices {t['size']}x{t['size']}, {t['electrons_per_pixel']} e/px; mean +- sd over structures)")
    for name, r in rows.items():
        parts = []
        for key in ("corr", "corr_vs_mc_mean", "ceiling_corr", "ssim", "hist", "rmse_vs_mc_mean", "bias",
                    "mc_noise_var_over_law", "seconds", "mc_cpu_seconds"):
            if key in r:
                parts.append(f"{key} {fmt(r[key], 4 if key in ('hist', 'rmse_vs_mc_mean', 'bias') else 3)}")
        for key in ("nps_ratio", "ps_ratio", "mc_noise_var_over_law_by_level"):
            if key in r:
                parts.append(f"{key} [{', '.join(f'{v:.3f}' for v in r[key]['bands_mean'])}]"
                             + (f" max|r-1| {fmt(r[key]['max_abs_dev'])}" if key != "mc_noise_var_over_law_by_level"
                                else ""))
        out(f"  {name}: " + "; ".join(parts))
    for name in ("se translator", "se projection + mean/std rescale + noise"):
        r = rows[name]
        d = r["ssim"]["mean"] - ceil["ssim"]["mean"]
        out(f"  target: {name} SSIM within 0.01 of ceiling: {'MET' if abs(d) <= 0.01 else 'NOT MET'} (diff {d:+.4f})")
        out(f"  target: {name} hist <= MC-MC: {'MET' if r['hist']['mean'] <= ceil['hist']['mean'] else 'NOT MET'} "
            f"({r['hist']['mean']:.4f} vs {ceil['hist']['mean']:.4f})")
        m = r["nps_ratio"]["max_abs_dev"]["mean"]
        out(f"  target: {name} NPS within 10 %: {'MET' if m <= 0.10 else 'NOT MET'} (worst band {m:.3f})")


def compact(res):
    """The summary without per-structure values (for the shipped JSON)."""
    def strip(d):
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k != "values"}
        return d
    return strip(res)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=None, help="a translator's .pt (with its .json); default shipped")
    ap.add_argument("--cache", type=Path, default=sets.CACHE)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--record-in-shipped", action="store_true",
                    help="store the measured fidelity in the shipped SE translator's JSON")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    res = evaluate(a.weights, a.cache)
    res["time"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print_table(res)
    if a.json:
        a.json.write_text(json.dumps(res, indent=1, default=float))
    if a.record_in_shipped:
        from fibsynth.fastsim.translator import SHIPPED

        cpath = SHIPPED[sets.DETECTOR].with_suffix(".json")
        cfg = json.loads(cpath.read_text())
        cfg["measured"] = {"by": "benchmarks/se_translator_eval.py --record-in-shipped", **compact(res)}
        cpath.write_text(json.dumps(cfg, indent=1, default=float))
        print("recorded in", cpath)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
