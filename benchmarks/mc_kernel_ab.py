#!/usr/bin/env python3
"""The numba transport kernel against a former revision of itself, in one process: statistical identity and
paired speed.

The former kernel is read from git (``git show REV:src/fibsynth/physics/montecarlo/kernel.py``) into a temporary
module and compiled beside the current one; both run the same set-ups (bulk/film columns through ``run_point``,
one slice of a gold/epoxy leveled-wave stack through ``run_slice``). A former kernel without ``next_exp`` (before
``mcspeed6``) reads the ``Tables`` fields in their own layout; a later one reads ``Tables.as_tuple()``.

    # bit-identity with the same seeds (a refactoring): BSE and SE stacks, open pores, bulk, films, transport_one
    .venv/bin/python benchmarks/mc_kernel_ab.py --rev dcceba5 --identity --electrons 50000 --per-pixel 10
    # paired speed of the SE kernel (run_slice_se) beside the BSE one; --se-cost: against a copy of the current
    # kernel whose se_segment does nothing (what the per-segment call costs vs the SE arithmetic)
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/mc_kernel_ab.py --rev dcceba5 --se-timing --per-pixel 40
    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/mc_kernel_ab.py --se-cost --per-pixel 40 --repeats 10
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


def module_from_source(src: str, directory: Path, name: str):
    """Kernel source text imported as module ``name`` from ``directory/name.py``. The file is rewritten only when
    its text changes: numba's cache (next to the file) then survives between runs, and a kernel variant compiles
    once (minutes) instead of at every run."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    if not path.exists() or path.read_text() != src:
        path.write_text(src)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod  # numba's cache records the module by name and imports it when loading
    spec.loader.exec_module(mod)
    return mod


def former_kernel(rev: str):
    src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{KERNEL}"], capture_output=True, text=True,
                         check=True).stdout
    return module_from_source(src, Path(tempfile.gettempdir()) / f"mc_kernel_ab_{os.getuid()}" / rev.replace("/", "_"),
                              f"kernel_{rev.replace('/', '_').replace('-', '_').replace('.', '_')}")


def empty_se_kernel():
    """A copy of the current kernel whose ``se_segment`` does nothing but one store (its call and arguments kept):
    ``--se-cost`` times it against the real one to split an SE stack's extra cost into the per-segment call and
    the SE arithmetic."""
    src = (REPO / KERNEL).read_text()
    old = "    lam = sep[mat, 1]\n    if lam <= 0.0:\n        return\n    d2 = z - zface\n"
    if src.count(old) != 1:
        raise SystemExit("mc_kernel_ab: se_segment changed, cannot build the empty copy")
    src = src.replace(old, "    lam = sep[mat, 1]\n    if lam > -1.0:\n        seacc[2] = lam\n        return\n"
                      "    d2 = z - zface\n")
    return module_from_source(src, Path(tempfile.gettempdir()) / f"mc_kernel_ab_{os.getuid()}" / "se_empty",
                              "kernel_se_empty")


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


def _as_kernel(k):
    """The package's ``kernel`` attribute set to ``k`` for the duration (the stack and SE drivers import it as
    ``from fibsynth.physics.montecarlo import kernel``)."""
    import contextlib

    import fibsynth.physics.montecarlo as pkg

    @contextlib.contextmanager
    def swap():
        old = pkg.kernel
        pkg.kernel = k
        try:
            yield
        finally:
            pkg.kernel = old
    return swap()


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def identity(r: Runner, n: int, per_pixel: int) -> int:
    """Bit-identity of every tally with the same seeds: BSE stack slices (3 backings x 1/2/4 keV), bulk and film
    columns, the SE kernels (bulk/film SE yields; se and inlens stack slices with epoxy and with open pores, block
    and voxel tracking), BSE slices with open pores, and ``transport_one`` (the tests' entry) for single
    electrons with and without the SE tally. Returns the number of differing cases."""
    from fibsynth.config import VoxelSize  # noqa: F401  (the drivers' imports, loaded before timing the cases)
    from fibsynth.physics.montecarlo.detectors import SignalDetector
    from fibsynth.physics.montecarlo.secondary import run_layers_se
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.stack import simulate_slice

    bad = 0

    def check(name, f):
        nonlocal bad
        t0 = time.perf_counter()
        outs = []
        for k in (r.former, r.current):
            with _as_kernel(k):
                outs.append(f(k))
        ok = _same(*outs)
        bad += 0 if ok else 1
        print(f"{'identical' if ok else 'DIFFERENT'}  {name}  ({time.perf_counter() - t0:.1f} s)", flush=True)

    for e in (1.0, 2.0, 4.0):
        for backing in ("pore", "solid", "repeat"):
            check(f"BSE LW stack slice {e:g} keV backing {backing}", lambda k: r.stack(k, per_pixel, 7, e, backing))
        for lay, sub in (((), "Au"), ((("C", 10.0),), "Au"), ((("Au", 5.0),), "Si")):
            name = "/".join([f"{m} {t:g} nm" for m, t in lay] + [sub])
            check(f"BSE {name} {e:g} keV", lambda k: r.layers(k, lay, sub, e, n, 7))
            check(f"SE yield {name} {e:g} keV",
                  lambda k: (lambda x: (x.se1, x.se2, x.bse.backscattered, x.bse.detected, x.bse.energy_hist,
                                        x.bse.angle_hist))(run_layers_se(list(lay), sub, e, n, seed=7)))
    sys.path.insert(0, str(REPO / "benchmarks"))
    from se_speed import structure

    vol = structure()
    for e in (1.0, 2.0, 4.0):
        for kind in ("bse", "se", "inlens"):
            for pore in ("epoxy", "vacuum"):
                for tracking in ("block", "voxel"):
                    if (tracking == "voxel" or kind == "bse") and e != 2.0:
                        continue
                    st = StackSettings(beam=Beam(energy_kev=e), electrons_per_pixel=per_pixel, seed=5,
                                       geometry=StackGeometry(solid="gold", pore=pore, backing="repeat"),
                                       signal=None if kind == "bse" else SignalDetector(kind=kind))
                    check(f"{kind} stack slice 3, {pore} pores, {tracking} tracking, {e:g} keV",
                          lambda k: simulate_slice(vol, (4.0, 4.0, 4.0), 3, st, tracking=tracking))
    # transport_one for single electrons (its defaults: no SE, no rcp), and with the SE tally
    from fibsynth.physics.montecarlo.secondary import se_table
    from fibsynth.physics.montecarlo.setup import layer_setup

    su = layer_setup([("C", 10.0)], "Au", 2.0, 100, seed=0)
    tabs = su.tables.as_tuple()
    sep = se_table(su.materials, None)
    nod = np.zeros((1, 1, 1), np.uint8)

    def single(k, with_se):
        rs = k.max_range(tabs[3], True)
        out = []
        for i in range(300):
            s0, s1 = k.seed_state(7, 0, 0, i)
            acc = np.zeros(3)
            extra = (None, None, sep, acc, False, None, None) if with_se else ()
            out.append((k.transport_one(0.5, 0.5, 0.0, 0.0, 0.0, 1.0, 2.0, np.uint64(s0), np.uint64(s1), su.vol,
                                        su.dz, 1e6, 1e6, 0, su.substrate_id, False, nod, 0.0, rs, *tabs, *extra),
                        acc.copy()))
        return out

    check("transport_one, 300 electrons, C 10 nm/Au 2 keV", lambda k: single(k, False))
    check("transport_one with the SE tally, 300 electrons, C 10 nm/Au 2 keV", lambda k: single(k, True))
    print(f"{bad} case(s) differ")
    return bad


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


def se_timing(r: Runner, per_pixel: int, repeats: int, e: float, scales: str | None = None) -> None:
    """Paired speed of the SE kernel (``run_slice_se``) beside the BSE kernel (``run_slice``) on one slice (k = 3)
    of ``se_speed.py``'s gold structure (24 x 40 x 40, 4 nm, block codes, last slice repeated): BSE with epoxy
    pores, SE (``se``: every SE counts) with epoxy pores and with open pores, in-lens-type (pore view factors, filled
    on first use) with open pores. One thread, process CPU time, marginal rates (N and 2N e/px), the kernels
    interleaved in alternating order. Prints current / former per case and, per kernel, each SE case / BSE (same
    repeat). ``scales`` ("old"): the SE parameters with the (lambda, epsilon) scales stored before se8's
    recalibration, to separate the parameters' share of the cost from the kernel's."""
    import numba

    from fibsynth.physics.montecarlo.detectors import SignalDetector
    from fibsynth.physics.montecarlo.secondary import se_table, se_walls
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.setup import slice_beam, slice_tables, stack_materials
    from fibsynth.physics.montecarlo.stack import block_levels

    numba.set_num_threads(1)
    sys.path.insert(0, str(REPO / "benchmarks"))
    from se_speed import structure

    vol = block_levels(structure())
    kk, vox = 3, 4.0
    nod = np.zeros((1, 1, 1), np.uint8)
    # secondary.SCALES before se8 (git show f800fe5^:src/fibsynth/physics/montecarlo/secondary.py)
    old = {6: (0.425, 0.446), 13: (0.371, 0.348), 14: (0.313, 0.271), 29: (0.336, 0.322), 79: (0.364, 0.267)}
    cases = {}
    for name, kind, pore in (("bse", None, "epoxy"), ("se_epoxy", "se", "epoxy"), ("se_open", "se", "vacuum"),
                             ("inlens_open", "inlens", "vacuum")):
        st = StackSettings(beam=Beam(energy_kev=e), electrons_per_pixel=1, seed=3,
                           geometry=StackGeometry(solid="gold", pore=pore, backing="repeat"),
                           signal=None if kind is None else SignalDetector(kind=kind))
        mats, bk, repeat = stack_materials(st)
        tabs = slice_tables(st, mats).as_tuple()
        by, bz, sx, sy, cmin, cmax = slice_beam(st)
        if scales == "old":
            from fibsynth.physics.montecarlo import secondary

            saved = dict(secondary.SCALES)
            secondary.SCALES.update(old)
            sep = se_table(mats)
            secondary.SCALES.clear()
            secondary.SCALES.update(saved)
        else:
            sep = se_table(mats)
        cone = (np.array([0.0, 0.0, -1.0, 2.0]) if kind is None else st.signal.cone(by, bz)).astype(np.float64)
        wall = pore == "vacuum"
        mode = "all" if kind is None else st.signal.pore_view_mode
        cases[name] = (kind, mats, bk, repeat, tabs, (by, bz, sx, sy, cmin, cmax), sep, wall, cone, mode,
                       float(st.detector.e_min_kev))

    def run(k, name, n, seed):
        kind, mats, bk, repeat, tabs, (by, bz, sx, sy, cmin, cmax), sep, wall, cone, mode, emin = cases[name]
        head = (kk, n, seed, e, by, bz, sx, sy, vol, vox, vox, vox, bk, repeat, nod, 0.0, True, emin, cmin, cmax)
        if kind is None:
            return lambda: k.run_slice(*head, *tabs)
        if wall:
            segv = se_walls(vol, kk, tabs[6], bk, repeat, mode, voxel_zyx=(vox, vox, vox))
        else:
            segv = (np.zeros((0, 1, 1)), np.zeros((1, 1, 1), np.uint32), np.zeros((0, 3)))
        return lambda: k.run_slice_se(*head, *tabs, sep, wall, cone, segv)

    def t(f):
        c = time.process_time()
        f()
        return time.process_time() - c

    for k in (r.former, r.current):
        for name in cases:
            run(k, name, 1, 1)()
    npx = vol.shape[1] * vol.shape[2]
    res = {(w, name): [] for w in ("f", "c") for name in cases}
    for rep in range(repeats):
        pair = [(r.former, "f"), (r.current, "c")]
        for k, w in (pair if rep % 2 == 0 else pair[::-1]):
            for name in cases:
                f1, f2 = run(k, name, per_pixel, 2 * rep), run(k, name, 2 * per_pixel, 2 * rep + 1)
                t1 = t(f1)
                t2 = t(f2)
                res[(w, name)].append(npx * per_pixel / max(t2 - t1, 1e-9))

    def q(v):
        v = sorted(v)
        return f"median {statistics.median(v):.3f} (quartiles {v[len(v) // 4]:.3f} - {v[(3 * len(v)) // 4]:.3f})"

    print(f"SE kernel, slice {kk} of se_speed's structure, {e:g} keV, {per_pixel}/{2 * per_pixel} e/px, {repeats} "
          f"repeats, SE scales {scales or 'current'}")
    for name in cases:
        print(f"{name}: current / former {q([c / f for f, c in zip(res[('f', name)], res[('c', name)])])}; "
              f"median e/s former {statistics.median(res[('f', name)]):.0f}, "
              f"current {statistics.median(res[('c', name)]):.0f}")
    for w, which in (("f", "former"), ("c", "current")):
        for name in list(cases)[1:]:
            print(f"{which}: time {name} / bse {q([b / s for s, b in zip(res[(w, name)], res[(w, 'bse')])])}")
        for name in ("se_open", "inlens_open"):  # issue 17's target: open-pore SE stack <= 1.5x the gold/epoxy one
            print(f"{which}: time {name} / se_epoxy "
                  f"{q([e / s for s, e in zip(res[(w, name)], res[(w, 'se_epoxy')])])}")
    print("load average", " ".join(f"{v:.1f}" for v in os.getloadavg()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="fb7d6a9", help="git revision of the former kernel")
    ap.add_argument("--stats", action="store_true")
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--se-timing", action="store_true", help="paired speed of the SE kernel (run_slice_se)")
    ap.add_argument("--se-cost", action="store_true",
                    help="--se-timing against a copy of the current kernel whose se_segment does nothing "
                    "(--rev unused)")
    ap.add_argument("--se-scales", choices=("current", "old"), default="current",
                    help="SE parameters for --se-timing: the stored scales, or those before se8's recalibration")
    ap.add_argument("--identity", action="store_true",
                    help="bit-identity with the same seeds (a refactoring that must not change any number)")
    ap.add_argument("--electrons", type=int, default=200_000, help="per bulk/film case (stats) or N (timing)")
    ap.add_argument("--per-pixel", type=int, default=200, help="electrons per pixel (stats) or N per pixel (timing)")
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--energy", type=float, default=2.0)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    from fibsynth.physics.montecarlo import kernel as current

    r = Runner(empty_se_kernel() if a.se_cost else former_kernel(a.rev), current)
    if a.se_cost:
        a.se_timing = True
    if a.identity and identity(r, a.electrons, a.per_pixel):
        return 1
    if a.stats:
        stats(r, a.electrons, a.per_pixel)
    if a.timing:
        timing(r, a.electrons, a.per_pixel, a.repeats, a.energy)
    if a.se_timing:
        se_timing(r, a.per_pixel, a.repeats, a.energy, None if a.se_scales == "current" else "old")
    if not (a.stats or a.timing or a.identity or a.se_timing):
        ap.error("give --identity, --stats, --timing and/or --se-timing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
