#!/usr/bin/env python3
"""Where the numba transport kernel spends its time, per event kind and per material (issue 16).

numba's JIT code carries no symbols for ``perf``, so this builds an *instrumented copy* of the current kernel
(``src/fibsynth/physics/montecarlo/kernel.py``, patched as text at run time, compiled beside the real one) that
reads the CPU's time-stamp counter (``llvm.readcyclecounter``, i.e. ``rdtsc``) at every event of
``transport_one`` and charges the ticks since the previous event to the event that ends the interval:

* a collision, by material and kind (elastic, or binary with an atomic electron): the flight's in-cell test, the
  slowing down, the range rejection test, the channel and angle sampling, the rotation and the next free path;
* a cell-boundary stop, by material, without or with a material change (the stop, the voxel look-up and, on a
  change, the range update and the new free path in the new material);
* per electron (the run loop): its whole ``transport_one`` call, summed separately for escaped (BSE) and other
  electrons -- the time an exact per-electron cut-off could at most remove is the non-escaping electrons' share.

Intervals longer than 8 000 ticks (an event) or 60 000 ticks (an electron) are left out and counted (the process
was descheduled: the machine is shared). rdtsc ticks at a fixed rate (not the core clock) and costs ~20-40 ticks
per read, which each interval includes once; the instrumented copy is slower than the real kernel, so read the
shares and the ratios, not the absolute ticks. The random streams are the real kernel's: the event counts are
the real ones (the tallies are identical to the uninstrumented kernel's).

    NUMBA_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/mc_kernel_profile.py --energies 1,2,4
    # the real kernel's per-energy costs for the projection: stack and bulk Au at each energy, interleaved, process
    # CPU time of fixed-size runs; per-repeat stack/bulk and stack cost per electron relative to the 2 keV stack
    NUMBA_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/mc_kernel_profile.py --rates --energies 1,2,4 \
        --repeats 8 --per-pixel 20
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KERNEL = REPO / "src/fibsynth/physics/montecarlo/kernel.py"

_HEADER = '''
from numba import types as _nbt
from numba.extending import intrinsic as _intrinsic
from llvmlite import ir as _ir
from numba.core import cgutils as _cgutils


@_intrinsic
def rdtsc(typingctx):
    def codegen(context, builder, signature, args):
        fnty = _ir.FunctionType(_ir.IntType(64), [])
        return builder.call(_cgutils.get_or_insert_function(builder.module, fnty, "llvm.readcyclecounter"), [])
    return _nbt.uint64(), codegen
'''

# counter slots in the (enlarged) ``rcp`` array the run loops pass to transport_one
C_COLL, N_COLL = 8, 16  # + 2 mat + kind (0 elastic, 1 binary)
C_STOP, N_STOP = 24, 32  # + 2 mat + (0 same material, 1 material change)
C_ELEC, N_ELEC = 48, 50  # + escaped (0, 1): whole transport_one call
N_DROP = 46  # event intervals left out (descheduled)


def _replace(src: str, old: str, new: str) -> str:
    if src.count(old) < 1:
        raise SystemExit(f"mc_kernel_profile: the kernel changed, cannot instrument at:\n{old}")
    return src.replace(old, new, 1)


def _event(slot: str, count: str, ind: str) -> str:
    return (f"{ind}t1 = rdtsc()\n{ind}dtk = float(t1 - t0)\n{ind}if dtk < 8000.0:\n{ind}    rcp[{slot}] += dtk\n"
            f"{ind}    rcp[{count}] += 1.0\n{ind}else:\n{ind}    rcp[{N_DROP}] += 1.0\n{ind}t0 = t1\n")


def instrumented_source(src: str) -> str:
    src = _replace(src, "import numpy as np\n", "import numpy as np\n" + _HEADER)
    src = src.replace("cache=True", "cache=False")
    entry = "    lev = lookup_code(vol, iz, iy, ix, backing, repeat_last) >> LEVEL_SHIFT\n    while True:\n"
    src = _replace(src, entry, entry.replace("    while True:\n", "    t0 = rdtsc()\n    while True:\n"))
    ind = " " * 12
    coll = "            s, s0, s1 = next_exp(s0, s1)\n            s *= interp_m(lam, mat, u)\n            continue\n"
    src = _replace(src, coll, coll[:-len(f"{ind}continue\n")] + f"{ind}kb = 1 if eloss[mat, j] > 0.0 else 0\n"
                   + _event(f"{C_COLL} + 2 * mat + kb", f"{N_COLL} + 2 * mat + kb", ind) + f"{ind}continue\n")
    change = ("            mat = newmat\n"
              "            lev = lookup_code(vol, iz, iy, ix, backing, repeat_last) >> LEVEL_SHIFT\n"
              "            rr = interp_m(rng, mat, u)\n            rc = rcut[mat]\n            s, s0, s1 = next_exp(s0, s1)\n"
              "            s *= interp_m(lam, mat, u)\n")
    src = _replace(src, change, f"{ind}oldm = mat\n" + change
                   + _event(f"{C_STOP} + 2 * oldm + 1", f"{N_STOP} + 2 * oldm + 1", ind)
                   + "        else:\n" + _event(f"{C_STOP} + 2 * mat", f"{N_STOP} + 2 * mat", ind))
    src = _replace(src, "    out = np.empty(4)\n    out[0] = 1.0 / dx", "    out = np.zeros(64)\n    out[0] = 1.0 / dx")
    # the per-electron loops of run_slice (_slice_row) and run_point (_point_chunk): the whole transport per
    # electron, by outcome; the counters come back as a last output of run_slice / run_point
    for call, ind in (("esc, e, ux, uy, uz = transport_body((x, y, z0, 0.0, by, bz, e0, s0, s1), geo, tabs, mdep, mfull, None,\n"
                       "                                                None,", " " * 12),
                      ("esc, e, ux, uy, uz = transport_body((x, y, z0, 0.0, by, bz, e0, s0, s1), geo, tabs, mdep, mfull, None, None,\n",
                       " " * 8)):
        src = _replace(src, call, "tA = rdtsc()\n" + ind + call)
    for tally, ind in (("            if esc:\n                _tally(tal, he, ha", " " * 12),
                       ("        if esc:\n            _tally(tal, he, ha", " " * 8)):
        src = _replace(src, tally, f"{ind}dtA = float(rdtsc() - tA)\n{ind}if dtA < 60000.0:\n"
                       f"{ind}    rcp[{C_ELEC} + (1 if esc else 0)] += dtA\n"
                       f"{ind}    rcp[{N_ELEC} + (1 if esc else 0)] += 1.0\n" + tally)
    src = _replace(src, "    return allc, det, he.sum(axis=0), ha.sum(axis=0)\n",
                   "    return allc, det, he.sum(axis=0), ha.sum(axis=0), rcp\n")
    src = _replace(src, "    return tal.sum(axis=0), he.sum(axis=0), ha.sum(axis=0)\n",
                   "    return tal.sum(axis=0), he.sum(axis=0), ha.sum(axis=0), rcp\n")
    return src


def load_instrumented():
    d = Path(tempfile.mkdtemp(prefix="mc_kernel_profile_"))
    path = d / "kernel_profiled.py"
    path.write_text(instrumented_source(KERNEL.read_text()))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def breakdown(c: np.ndarray, mats: tuple[str, ...]) -> dict:
    """Per-electron ticks and counts from the counters ``c`` (one run)."""
    n_el = c[N_ELEC] + c[N_ELEC + 1]
    tick_el = (c[C_ELEC] + c[C_ELEC + 1]) / n_el
    rows = []
    for m, name in enumerate(mats):
        for kb, kind in ((0, "collision, elastic"), (1, "collision, binary")):
            rows.append((f"{kind} in {name}", c[C_COLL + 2 * m + kb], c[N_COLL + 2 * m + kb]))
        for ch, kind in ((0, "stop, same material"), (1, "stop, material change")):
            rows.append((f"{kind} in {name}", c[C_STOP + 2 * m + ch], c[N_STOP + 2 * m + ch]))
    return {"n": n_el, "ticks": tick_el, "rows": rows, "drop": c[N_DROP] / n_el,
            "esc": (c[C_ELEC + 1] / max(c[N_ELEC + 1], 1), c[N_ELEC + 1] / n_el),
            "noesc": (c[C_ELEC] / max(c[N_ELEC], 1), c[N_ELEC] / n_el)}


def rates(r, kernel, energies: list[float], n: int, per_pixel: int, repeats: int) -> None:
    """The real kernel: per-energy stack (32 x 32 LW slice) and bulk Au rates in one process, energies interleaved
    (order reversed every other repeat), process CPU time of fixed-size runs."""
    for e in energies:
        r.stack(kernel, 1, 1, e)
        r.layers(kernel, (), "Au", e, 100, 1)

    def t(f):
        c = time.process_time()
        f()
        return time.process_time() - c

    res = {(w, e): [] for w in ("s", "b") for e in energies}
    for rep in range(repeats):
        for e in (energies if rep % 2 == 0 else energies[::-1]):
            res[("s", e)].append(1024 * per_pixel / t(lambda: r.stack(kernel, per_pixel, 100 + rep, e)))
            res[("b", e)].append(n / t(lambda: r.layers(kernel, (), "Au", e, n, 100 + rep)))

    def ms(x):
        return f"{statistics.mean(x):.3f} +- {statistics.stdev(x):.3f}" if len(x) > 1 else f"{x[0]:.3f}"

    ref = 2.0 if 2.0 in energies else energies[0]
    print(f"real kernel, {repeats} repeats, {per_pixel} e/px on the 32 x 32 LW slice, {n} bulk Au electrons")
    for e in energies:
        print(f"{e:g} keV: stack {statistics.median(res[('s', e)]):.0f} e/s, bulk Au {statistics.median(res[('b', e)]):.0f} "
              f"e/s (medians); stack/bulk per repeat {ms([s / b for s, b in zip(res[('s', e)], res[('b', e)])])}; "
              f"stack cost per electron / {ref:g} keV's {ms([a / b for a, b in zip(res[('s', ref)], res[('s', e)])])}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--energies", default="2", help="comma-separated beam energies (keV)")
    ap.add_argument("--electrons", type=int, default=40_000, help="bulk Au electrons per repeat")
    ap.add_argument("--per-pixel", type=int, default=30, help="electrons per pixel on the 32 x 32 LW slice")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rates", action="store_true", help="time the real kernel per energy instead of profiling")
    a = ap.parse_args(argv)
    import numba

    numba.set_num_threads(1)
    sys.path.insert(0, str(REPO / "benchmarks"))
    from mc_kernel_ab import Runner

    if a.rates:
        from fibsynth.physics.montecarlo import kernel

        rates(Runner(kernel, kernel), kernel, [float(v) for v in a.energies.split(",")], a.electrons, a.per_pixel,
              a.repeats)
        print("load average", " ".join(f"{v:.1f}" for v in os.getloadavg()))
        return 0
    k = load_instrumented()
    r = Runner(k, k)
    print(f"instrumented copy of {KERNEL.relative_to(REPO)}; one thread; ticks = rdtsc counts")
    for e in [float(v) for v in a.energies.split(",")]:
        r.layers(k, (), "Au", e, 100, 1)
        r.stack(k, 1, 1, e)
        runs = {"stack": [], "bulk": []}
        for rep in range(a.repeats):
            runs["stack"].append(breakdown(r.stack(k, a.per_pixel, 10 + rep, e)[4], ("epoxy", "gold")))
            runs["bulk"].append(breakdown(r.layers(k, (), "Au", e, a.electrons, 10 + rep)[3], ("Au",)))
        for what, name in (("stack", f"LW slice (gold/epoxy, 4 nm, block tracking) {e:g} keV"),
                           ("bulk", f"bulk Au {e:g} keV")):
            bs = runs[what]
            tick = statistics.median(b["ticks"] for b in bs)
            print(f"\n== {name}: {bs[0]['n']:.0f} electrons x {len(bs)} repeats; ticks per electron "
                  f"{tick:.0f} (repeats {', '.join('%.0f' % b['ticks'] for b in bs)})")
            print(f"   {'event':<40} {'per electron':>12} {'ticks each':>11} {'share':>7}")
            acc = 0.0
            for i, (label, _, _) in enumerate(bs[0]["rows"]):
                cnt = statistics.median(b["rows"][i][2] / b["n"] for b in bs)
                if cnt == 0:
                    continue
                each = statistics.median(b["rows"][i][1] / max(b["rows"][i][2], 1) for b in bs)
                acc += cnt * each
                print(f"   {label:<40} {cnt:12.2f} {each:11.0f} {cnt * each / tick * 100:6.1f} %")
            print(f"   {'rest (entry, last flight, exit)':<40} {'':>12} {'':>11} {(tick - acc) / tick * 100:6.1f} %")
            te, fe = statistics.median(b["esc"][0] for b in bs), statistics.median(b["esc"][1] for b in bs)
            tn, fn = statistics.median(b["noesc"][0] for b in bs), statistics.median(b["noesc"][1] for b in bs)
            print(f"   escaped {fe * 100:.1f} % of the electrons, {te:.0f} ticks each; the others {tn:.0f} ticks each: "
                  f"{fn * tn / (fn * tn + fe * te) * 100:.1f} % of the time; left-out intervals "
                  f"{statistics.median(b['drop'] for b in bs):.4f} per electron")
        ts = statistics.median(b["ticks"] for b in runs["stack"])
        tb = statistics.median(b["ticks"] for b in runs["bulk"])
        print(f"\nstack / bulk per electron (ticks) at {e:g} keV: {tb / ts:.3f}")
    print("load average", " ".join(f"{v:.1f}" for v in os.getloadavg()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
