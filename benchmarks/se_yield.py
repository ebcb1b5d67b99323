"""Secondary-electron yield delta(E) of bulk C, Al, Si, Cu, Au from the Monte Carlo SE tally (issue 17, item 3).

    python benchmarks/se_yield.py --calibrate     # measure the (lambda, epsilon) scales stored in secondary.SCALES
    python benchmarks/se_yield.py                 # yields at 0.5-5 keV (SE1, SE2, eta) vs the published ones
    python benchmarks/se_yield.py --per-set       # ... and measured / model for each measured set
    python benchmarks/se_yield.py --interpolate   # ... and the count against the interpolated spreads (se17)
    python benchmarks/se_yield.py --universal     # the Lin-Joy universal law with the same delta_m, E_m (no MC)
    python benchmarks/se_yield.py --lambda-scan graphite:0.664,1,1.5,2.2   # delta(E) / its maximum per lambda scale

Calibration: for each element the lambda scale is chosen so that the Monte Carlo yield curve peaks at the
handbook's E_m (log-parabola through the five grid points around the largest yield on a log-spaced energy grid, at
six lambda scales; log E_peak against log scale fitted by a straight line and solved for E_m), then the epsilon
scale so that the yield at E_m equals delta_m (delta ~ 1/epsilon).
"""

from __future__ import annotations

import argparse

import numpy as np

from fibsynth.physics.montecarlo.se_reference import COMPARE_ENERGIES, interpolated_spread, measured_spread
from fibsynth.physics.montecarlo.secondary import SCALES, SE_PEAK, bulk_se_yield

ELEMENTS = [("graphite", 6), ("Al", 13), ("Si", 14), ("Cu", 29), ("Au", 79)]

# Measured spreads: fibsynth.physics.montecarlo.se_reference (Joy's database for Al, Si, Cu, Au; the USTC SEY
# database for carbon) -- measurements only, with their sources; nothing was fitted to them.


def peak_energy(name, scales, electrons, seed):
    """Energy of the maximum of the Monte Carlo yield curve: a parabola in log E through the five grid points
    around the largest yield (the curve is flat near its top: three points follow the noise)."""
    es = np.geomspace(0.2, 3.0, 13)
    d = np.array([bulk_se_yield(name, e, electrons, seed=seed, se_scales=scales).delta for e in es])
    i = int(np.clip(np.argmax(d), 2, len(es) - 3))
    x = np.log(es[i - 2:i + 3])
    a, b, _ = np.polyfit(x, d[i - 2:i + 3], 2)
    return float(np.exp(-b / (2 * a))) if a < 0 else float(es[int(np.argmax(d))])


def calibrate(electrons, seed):
    """Per element: the lambda scale that puts the yield maximum at the handbook's E_m (log E_peak is close to
    linear in log scale: a straight line fitted through six scales, solved for E_m), then the epsilon scale
    that makes the yield at E_m equal to delta_m (delta ~ 1 / epsilon)."""
    out = {}
    for name, z in ELEMENTS:
        dm, em = SE_PEAK[z]
        grid = [0.3, 0.42, 0.6, 0.85, 1.2, 1.7]
        peaks = [peak_energy(name, (s, 1.0), electrons, seed) for s in grid]
        slope, icpt = np.polyfit(np.log(grid), np.log(peaks), 1)
        ls = float(np.exp((np.log(em) - icpt) / slope))
        d = bulk_se_yield(name, em, 4 * electrons, seed=seed, se_scales=(ls, 1.0)).delta
        out[z] = (round(ls, 3), round(d / dm, 3))
        print(name, "peaks", [round(p, 3) for p in peaks], f"slope {slope:.3f}", "E_m", em, "-> scales", out[z],
              flush=True)
    print("SCALES =", out)


def per_set(model):
    """Measured / model for every measured set (Joy's database; carbon: the USTC sets), model interpolated
    log-log between the compared energies: a ratio that stays constant over a set's energies means the model has
    the set's shape and differs only in level (surface state), a drifting ratio a different energy dependence."""
    from fibsynth.physics.montecarlo.se_reference import measured_sets

    for el in model:
        es = np.array(sorted(model[el]))
        ds = np.array([model[el][e] for e in es])
        for s in measured_sets(el):
            r = [(e, d / float(np.exp(np.interp(np.log(e), np.log(es), np.log(ds))))) for e, d in s.points
                 if es[0] <= e <= es[-1]]
            if r:
                q = [x for _, x in r]
                lo_e, hi_e = min(e for e, _ in r), max(e for e, _ in r)
                first = np.median([x for e, x in r if e == lo_e])
                last = np.median([x for e, x in r if e == hi_e])
                print(f"{el} ref {s.ref:3d}: measured / model at {len(r):2d} points: median {np.median(q):.2f}, "
                      f"range {min(q):.2f}-{max(q):.2f}, {first:.2f} at {lo_e:g} keV -> {last:.2f} at {hi_e:g} keV"
                      f"  ({s.citation})")


def table(electrons, seed, energies, sets=False, interp=False):
    total = []
    total_i = []
    model = {}
    for name, z in ELEMENTS:
        row = []
        inside = []
        inside_i = []
        for e in energies:
            r = bulk_se_yield(name, e, electrons, seed=seed)
            model.setdefault({"graphite": "C"}.get(name, name), {})[e] = r.delta
            mark = ""
            spread = measured_spread(name, e)
            if spread is not None:
                ok = spread[0] <= r.delta <= spread[1]
                inside.append(ok)
                mark = f" [{'inside' if ok else 'OUTSIDE'} {spread[0]:g}-{spread[1]:g}, {spread[2]} sets]"
            if interp:
                si = interpolated_spread(name, e)
                if si is not None:
                    ok = si[0] <= r.delta <= si[1]
                    inside_i.append(ok)
                    mark += f" [interpolated: {'inside' if ok else 'OUTSIDE'} {si[0]:.3g}-{si[1]:.3g}, {si[2]} sets]"
            row.append(f"{e:g}: {r.delta:.3f} (SE1 {r.se1:.3f}, SE2 {r.se2:.3f}, eta {r.eta:.3f}){mark}")
        total += inside
        total_i += inside_i
        tail = f" -- inside the measured spread at {sum(inside)}/{len(inside)}" if inside else ""
        if inside_i:
            tail += f", the interpolated one at {sum(inside_i)}/{len(inside_i)}"
        print(name, SCALES[z], "\n   " + "\n   ".join(row) + tail, flush=True)
    if total:
        print(f"all elements: inside at {sum(total)}/{len(total)} = {100 * sum(total) / len(total):.0f} %")
    if total_i:
        print(f"all elements, interpolated spreads: inside at {sum(total_i)}/{len(total_i)} = "
              f"{100 * sum(total_i) / len(total_i):.0f} %")
    if sets:
        per_set(model)


def universal(energies):
    """The semi-empirical universal yield law (constant energy loss along a straight range R ~ E^1.67, Lin & Joy
    2005) with each element's handbook delta_m and E_m, against the same spreads: what the constant-loss
    assumption gives where the Monte Carlo has the local (Joy-Luo) stopping power."""
    from fibsynth.physics.montecarlo.secondary import universal_yield

    n = ni = tot = 0
    for name, z in ELEMENTS:
        dm, em = SE_PEAK[z]
        row = []
        for e in energies:
            d = float(universal_yield(e, dm, em))
            a, b = measured_spread(name, e), interpolated_spread(name, e)
            ia, ib = a[0] <= d <= a[1], b[0] <= d <= b[1]
            n, ni, tot = n + ia, ni + ib, tot + 1
            row.append(f"{e:g}: {d:.3f}{'' if ia else ' OUTSIDE'}{'' if ib else ' (interpolated: OUTSIDE)'}")
        print(name, "universal law:", "; ".join(row))
    print(f"universal law: inside at {n}/{tot}; interpolated spreads {ni}/{tot}")


def lambda_scan(spec, electrons, seed):
    """delta(E) / max over the grid for lambda scales ``el:s1,s2,..`` (epsilon scale 1; delta ~ 1/epsilon, so
    the ratios do not depend on it): how far the escape depth alone can move the tail relative to the peak."""
    name, scales = spec.split(":")
    es = [0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 2.0, 3.0, 5.0]
    for ls in (float(x) for x in scales.split(",")):
        d = np.array([bulk_se_yield(name, e, electrons, seed=seed, se_scales=(ls, 1.0)).delta for e in es])
        i = int(np.argmax(d))
        print(f"{name} lambda scale {ls:g}: maximum at {es[i]:g} keV; delta / maximum:",
              " ".join(f"{e:g}: {x / d[i]:.3f}" for e, x in zip(es, d)), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--electrons", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--energies", default=",".join(f"{e:g}" for e in COMPARE_ENERGIES))
    ap.add_argument("--per-set", action="store_true", help="also measured / model per measured set")
    ap.add_argument("--interpolate", action="store_true",
                    help="also the count against se_reference.interpolated_spread (a set's value between its points)")
    ap.add_argument("--universal", action="store_true", help="the universal law's count instead (no Monte Carlo)")
    ap.add_argument("--lambda-scan", default=None, help="EL:S1,S2,..: delta(E) / its maximum per lambda scale")
    a = ap.parse_args()
    if a.calibrate:
        calibrate(a.electrons, a.seed)
    elif a.universal:
        universal([float(x) for x in a.energies.split(",")])
    elif a.lambda_scan:
        lambda_scan(a.lambda_scan, a.electrons, a.seed)
    else:
        table(a.electrons, a.seed, [float(x) for x in a.energies.split(",")], a.per_set, a.interpolate)
