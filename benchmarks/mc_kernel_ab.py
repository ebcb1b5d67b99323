#!/usr/bin/env python3
"""The numba transport kernel against a former revision of itself, in one process: statistical identity and
paired speed.

The former kernel is read from git (``git show REV:src/fibsynth/physics/montecarlo/kernel.py``) into a temporary
module and compiled beside the current one; both run the same set-ups (bulk/film columns through ``run_point``,
one slice of a gold/epoxy leveled-wave stack through ``run_slice``). A former kernel without ``next_exp`` (before
``mcspeed6``) reads the ``Tables`` fields in their own layout; a later one reads ``Tables.as_tuple()``.

    # statistical identity: eta of bulk and film targets (z-scores), energy/angle histograms (two-sample
    # chi-square), stack images per pixel (chi-square over the pixels); independent seeds for the two kernels
    .venv/bin/python benchmarks/mc_kernel_ab.py --rev fb7d6a9 --stats --electrons 200000 --per-pixel 200
    # paired speed: one thread, process CPU time, marginal rates (N and 2N), the two kernels interleaved in
    # alternating order; per-repeat ratios new / former (median and quartiles)
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/mc_kernel_ab.py --rev fb7d6a9 --timing --repeats 10

On a shared machine only the paired ratios mean anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KERNEL = "src/fibsynth/physics/montecarlo/kernel.py"


def former_kernel(rev: str):
    src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{KERNEL}"], capture_output=True, text=True,
                         check=True).stdout
    d = Path(tempfile.mkdtemp(prefix="mc_kernel_ab_"))
    path = d / f"kernel_{rev.replace('/', '_')}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Runner:
    def __init__(self, former, current):
        from fibsynth.physics.montecarlo.engine import LATERAL_INFINITE_NM, N_CHUNKS

        self.former, self.current = former, current
        self.lat, self.nchunks = LATERAL_INFINITE_NM, N_CHUNKS
        self._layers, self._stacks = {}, {}

    def tables(self, k, t):
        if k is self.former and not hasattr(k, "next_exp"):
            return (t.ln_e0, t.inv_dln, t.lam_inv, t.rng, t.rinvd, t.rcut, t.nel, t.cum, t.analytic, t.ang_scale,
                    t.ang_off, t.muq, t.prut, t.acoef, t.eloss)
        return t.as_tuple()

    def layers(self, k, layers, substrate, e, n, seed):
        from fibsynth.physics.montecarlo.setup import layer_setup

        key = (tuple(layers), substrate, e)
        if key not in self._layers:
            self._layers[key] = layer_setup(list(layers), substrate, e, 1000, seed=0)
        su, lat = self._layers[key], self.lat
        return k.run_point(n, self.nchunks, seed, 0, su.e0, 0.5 * lat, 0.5 * lat, su.by, su.bz, 0.0, 0.0, su.vol,
                           su.dz, lat, lat, 0, su.substrate_id, False, su.emin, su.cmin, su.cmax,
                           *self.tables(k, su.tables))

    def stack(self, k, per_pixel, seed, e=2.0, backing="pore", npix=32, face=5):
        from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
        from fibsynth.physics.montecarlo.setup import slice_beam, slice_tables, stack_materials
        from fibsynth.physics.montecarlo.stack import block_levels
        from fibsynth.structure.leveled_wave import leveled_wave

        key = (e, backing, npix)
        if key not in self._stacks:
            vol = leveled_wave((64, npix, npix), 4.0, 0.3, 30.0, seed=1)
            st = StackSettings(beam=Beam(energy_kev=e), electrons_per_pixel=1, seed=3,
                               geometry=StackGeometry(solid="gold", pore="epoxy", backing=backing))
            mats, bk, repeat = stack_materials(st)
            self._stacks[key] = (block_levels(vol), st, bk, repeat, slice_tables(st, mats), slice_beam(st))
        codes, st, bk, repeat, t, (by, bz, sx, sy, cmin, cmax) = self._stacks[key]
        return k.run_slice(face, per_pixel, seed, e, by, bz, sx, sy, codes, 4.0, 4.0, 4.0, bk, repeat,
                           np.zeros((1, 1, 1), np.uint8), 0.0, True, float(st.detector.e_min_kev), cmin, cmax,
                           *self.tables(k, t))


def _chi2_hist(x, y):
    m = (x + y) > 20
    x, y = x[m].astype(float), y[m].astype(float)
    kx, ky = math.sqrt(y.sum() / x.sum()), math.sqrt(x.sum() / y.sum())
    return float((((kx * x - ky * y) ** 2) / (x + y)).sum()), int(m.sum())


LAYER_CASES = [("Au", 2.0, ()), ("Au", 1.0, ()), ("Au", 4.0, ()), ("C", 2.0, ()), ("Si", 2.0, ()),
               ("Si", 2.0, (("Au", 5.0),)), ("Au", 2.0, (("C", 10.0),)), ("Au", 2.0, (("C", 30.0),))]
STACK_CASES = [(2.0, "pore"), (1.0, "solid"), (4.0, "repeat")]


def stats(r: Runner, n: int, per_pixel: int) -> None:
    zs = []
    for sub, e, lay in LAYER_CASES:
        out = []
        for k, off in ((r.former, 0), (r.current, 100)):
            tot, he, ha = 0, 0, 0
            for seed in (11, 12):
                tal, h1, h2 = r.layers(k, lay, sub, e, n // 2, seed + off)
                tot, he, ha = tot + int(tal[0]), he + h1, ha + h2
            out.append((tot / n, he, ha))
        (a, hea, haa), (b, heb, hab) = out
        z = (b - a) / math.sqrt((a * (1 - a) + b * (1 - b)) / n)
        zs.append(z)
        ce, ne = _chi2_hist(hea, heb)
        ca, na = _chi2_hist(haa, hab)
        name = "/".join([f"{m} {t:g} nm" for m, t in lay] + [sub])
        print(f"{name:<16} {e:g} keV  eta former {a:.5f} current {b:.5f}  z {z:+.2f}  "
              f"energy chi2 {ce:.1f}/{ne}  angle chi2 {ca:.1f}/{na}")
    print(f"sum of z^2 = {sum(z * z for z in zs):.2f} over {len(zs)} cases (chi-square with {len(zs)} dof)")
    for e, backing in STACK_CASES:
        a0 = r.stack(r.former, per_pixel, 5, e, backing)[0] / per_pixel
        a1 = r.stack(r.current, per_pixel, 6, e, backing)[0] / per_pixel
        var = (a0 * (1 - a0) + a1 * (1 - a1)) / per_pixel
        m = var > 0
        chi = float((((a1 - a0) ** 2)[m] / var[m]).sum())
        npx = int(m.sum())
        print(f"stack {e:g} keV backing {backing:<6} eta former {a0.mean():.5f} current {a1.mean():.5f}  per-pixel "
              f"chi2 {chi:.1f} / {npx} pixels (z {(chi - npx) / math.sqrt(2 * npx):+.2f})")


def timing(r: Runner, n: int, per_pixel: int, repeats: int, e: float) -> None:
    import numba

    numba.set_num_threads(1)
    for k in (r.former, r.current):
        r.layers(k, (), "Au", e, 100, 1)
        r.stack(k, 1, 1, e)

    def t(f):
        c = time.process_time()
        f()
        return time.process_time() - c

    res = {k: [] for k in ("bf", "bc", "sf", "sc")}
    for rep in range(repeats):
        pair = [(r.former, "bf", "sf"), (r.current, "bc", "sc")]
        for k, kb, ks in (pair if rep % 2 == 0 else pair[::-1]):
            t1 = t(lambda: r.layers(k, (), "Au", e, n, 2 * rep))
            t2 = t(lambda: r.layers(k, (), "Au", e, 2 * n, 2 * rep + 1))
            res[kb].append(n / max(t2 - t1, 1e-9))
            t1 = t(lambda: r.stack(k, per_pixel, 2 * rep, e))
            t2 = t(lambda: r.stack(k, 2 * per_pixel, 2 * rep + 1, e))
            res[ks].append(32 * 32 * per_pixel / max(t2 - t1, 1e-9))
    for a, b, what in (("bf", "bc", f"bulk Au {e:g} keV"), ("sf", "sc", f"LW stack slice {e:g} keV")):
        q = sorted(y / x for x, y in zip(res[a], res[b]))
        print(f"{what}: current / former median {statistics.median(q):.3f} (quartiles {q[len(q) // 4]:.3f} - "
              f"{q[(3 * len(q)) // 4]:.3f}, {len(q)} pairs); median e/s former {statistics.median(res[a]):.0f}, "
              f"current {statistics.median(res[b]):.0f}")
    rf = statistics.median(s / b for s, b in zip(res["sf"], res["bf"]))
    rc = statistics.median(s / b for s, b in zip(res["sc"], res["bc"]))
    print(f"stack / bulk (per repeat, median): former {rf:.3f}, current {rc:.3f}")
    print("load average", " ".join(f"{v:.1f}" for v in os.getloadavg()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="fb7d6a9", help="git revision of the former kernel")
    ap.add_argument("--stats", action="store_true")
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--electrons", type=int, default=200_000, help="per bulk/film case (stats) or N (timing)")
    ap.add_argument("--per-pixel", type=int, default=200, help="electrons per pixel (stats) or N per pixel (timing)")
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--energy", type=float, default=2.0)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    from fibsynth.physics.montecarlo import kernel as current

    r = Runner(former_kernel(a.rev), current)
    if a.stats:
        stats(r, a.electrons, a.per_pixel)
    if a.timing:
        timing(r, a.electrons, a.per_pixel, a.repeats, a.energy)
    if not (a.stats or a.timing):
        ap.error("give --stats and/or --timing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
