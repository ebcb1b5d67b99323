#!/usr/bin/env python3
"""The SE tally's per-segment work (``kernel.se_segment``, with the open-pore wall search) replayed on the real
calls of an SE slice: time per segment of two kernels, bit-identity of their outputs, and the quadrature error
of the segment rule (issue 17: SE open-pore stacks at <= 1.5x the gold/epoxy stack; issue 16).

A copy of the current kernel that records every ``se_segment`` call (its arguments and the accumulator's state on
entry) runs a few pixel rows of slice 3 of ``se_speed.py``'s gold structure (2 keV, open pores, ``se`` or
``inlens`` detector: every SE counts, or pore view factors). The recorded calls are then replayed, in their
order, through ``se_segment`` of each kernel to compare (a compiled loop: no transport, so the SE code's share is
timed alone and without the scatter of whole stacks; process CPU time, min over interleaved rounds):

    # this checkout's se_segment against a former revision's: ns per segment and per-segment outputs bit for bit
    NUMBA_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/se_segment_replay.py --rev b645767 --kind se
    # the segment rule's error: Simpson on the segment's start, middle and end (the kernel's) and a two-point rule
    # exact for a linear wall distance, against 64-interval Simpson of the same point escape probability
    PYTHONPATH=src .venv/bin/python benchmarks/se_segment_replay.py --quadrature --kind se

Variants are built by patching the kernel's text (like ``mc_kernel_ab.py --se-cost``); a kernel edit that moves
the patched lines makes the script stop with a message.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KERNEL = "src/fibsynth/physics/montecarlo/kernel.py"
NREC = 19  # mat, u_old, u_new, x, y, z, ux, uy, uz, path, zface, wall, seacc[2:9] on entry

_RECORD = """    if seacc.shape[0] > 64:
        nrec = int(seacc[SE_ACC])
        base = SE_ACC + 1 + nrec * 19
        if base + 19 <= seacc.shape[0]:
            seacc[base] = mat
            seacc[base + 1] = u_old
            seacc[base + 2] = u_new
            seacc[base + 3] = x
            seacc[base + 4] = y
            seacc[base + 5] = z
            seacc[base + 6] = ux
            seacc[base + 7] = uy
            seacc[base + 8] = uz
            seacc[base + 9] = path
            seacc[base + 10] = zface
            seacc[base + 11] = 1.0 if wall else 0.0
            for q in range(7):
                seacc[base + 12 + q] = seacc[2 + q]
            seacc[SE_ACC] = nrec + 1
"""
_HEAD = "    lam = sep[mat, 1]\n    if lam <= 0.0:\n        return\n    d2 = z - zface\n"

_REPLAY = '''

@nb.njit(cache=True, fastmath=True, error_model="numpy")
def _replay(rec, sep, ln_e0, inv_dln, vol, nel, backing, repeat_last, dz, dy, dx, kface, segv, out, reps):
    acc = np.zeros(SE_ACC)
    for rep in range(reps):
        for i in range(rec.shape[0]):
            acc[0] = 0.0
            acc[1] = 0.0
            for q in range(7):
                acc[2 + q] = rec[i, 12 + q]
            se_segment(sep, acc, int(rec[i, 0]), ln_e0, inv_dln, rec[i, 1], rec[i, 2], rec[i, 3], rec[i, 4],
                       rec[i, 5], rec[i, 6], rec[i, 7], rec[i, 8], rec[i, 9], rec[i, 10],
                       vol, nel, backing, repeat_last, dz, dy, dx, kface, rec[i, 11] > 0.0, segv)
            for q in range(9):
                out[i, q] = acc[q]
'''

# the segment rule: Simpson on start, middle, end (the kernel's) ...
_SIMPSON = """        if path > 0.0:
            wm, gm, wb, gb = wall_distance2(vol, nel, backing, repeat_last, x - 0.5 * path * ux, y - 0.5 * path * uy,
                                            z - 0.5 * path * uz, x, y, z, dz, dy, dx, kface, cap, segv)
        else:  # energy deposited at one point (a binary collision): the three points coincide
            wm, gm, wb, gb = wa, ga, wa, ga
        if seacc.shape[0] >= SE_ACC:
            seacc[3] = x
            seacc[4] = y
            seacc[5] = z
            seacc[6] = wb
            seacc[7] = gb
            seacc[8] = cap
        # (no wall within the cap at any of the three points: its escape term is below exp(-30), left out)
        if (wa < dmax or wm < dmax or wb < dmax) and (wa < cap or wm < cap or wb < cap):
            pa = _escape(d1, wa, ga, lam)
            pm = _escape(0.5 * (d1 + d2), wm, gm, lam)
            pb = _escape(d2, wb, gb, lam)
            f = (pa + 4.0 * pm + pb) / 6.0
"""
_END = """        if path > 0.0:
            wb, gb = wall_distance(vol, nel, backing, repeat_last, x, y, z, dz, dy, dx, kface, cap, segv)
        else:
            wb, gb = wa, ga
        if seacc.shape[0] >= SE_ACC:
            seacc[3] = x
            seacc[4] = y
            seacc[5] = z
            seacc[6] = wb
            seacc[7] = gb
            seacc[8] = cap
"""
# ... a two-point rule (start and end; the start's search is the last segment's end's): the exact mean of
# max(exp(-d / lam), g exp(-w / lam)) when d, w and ln g are linear along the segment (a flat wall) ...
_TWO_POINT = _END + """        if (wa < dmax or wb < dmax) and (wa < cap or wb < cap):
            il = 1.0 / lam
            fa = -d1 * il
            fb = -d2 * il
            la = ((math.log(ga) if ga < 1.0 else 0.0) - wa * il) if ga > 0.0 else -745.0
            lb = ((math.log(gb) if gb < 1.0 else 0.0) - wb * il) if gb > 0.0 else -745.0
            la = max(la, -745.0)
            lb = max(lb, -745.0)
            da = la - fa
            db = lb - fb
            if da <= 0.0 and db <= 0.0:
                f = _mean_exp(fa, fb)
            elif da >= 0.0 and db >= 0.0:
                f = _mean_exp(la, lb)
            else:
                t = da / (da - db)
                xm = fa + (fb - fa) * t
                if da > 0.0:
                    f = t * _mean_exp(la, xm) + (1.0 - t) * _mean_exp(xm, fb)
                else:
                    f = t * _mean_exp(fa, xm) + (1.0 - t) * _mean_exp(xm, lb)
"""
_MEAN_EXP = '''

@_jit_se_inline
def _mean_exp(a, b):
    dd = b - a
    if abs(dd) > 1e-6:
        return (math.exp(b) - math.exp(a)) / dd
    return math.exp(0.5 * (a + b))
'''
# ... and the reference: 64-interval Simpson of the kernel's point escape probability
_REFERENCE = _END + """        if path > 0.0:
            tot = 0.0
            for q in range(65):
                t = q / 64.0
                w_, g_ = wall_distance(vol, nel, backing, repeat_last, x - (1.0 - t) * path * ux,
                                       y - (1.0 - t) * path * uy, z - (1.0 - t) * path * uz, dz, dy, dx, kface,
                                       cap, segv)
                dq = d1 + (d2 - d1) * t
                p_ = math.exp(-dq / lam) if w_ >= cap else _escape(dq, w_, g_, lam)
                tot += (1.0 if (q == 0 or q == 64) else (4.0 if q % 2 == 1 else 2.0)) * p_
            f = tot / 192.0
            if f < 1e-13:
                f = -1.0
        elif wa < cap:
            f = _escape(d1, wa, ga, lam)
"""


def _module(name: str, src: str):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from mc_kernel_ab import module_from_source

    return module_from_source(src, Path(tempfile.gettempdir()) / f"se_segment_replay_{os.getuid()}", f"kernel_{name}")


def _patched(src: str, patches) -> str:
    for old, new in patches:
        if src.count(old) != 1:
            raise SystemExit(f"se_segment_replay: the kernel changed, cannot patch {old.strip().splitlines()[0]!r}")
        src = src.replace(old, new)
    return src


def kernel_text(rev: str | None) -> str:
    if rev is None:
        return (REPO / KERNEL).read_text()
    return subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{KERNEL}"], capture_output=True, text=True,
                          check=True).stdout


def record(kind: str, per_pixel: int, rows: int, seed: int = 11) -> dict:
    """The se_segment calls of ``rows`` pixel rows of slice 3 (``per_pixel`` electrons per pixel)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from se_speed import structure

    from fibsynth.physics.montecarlo.detectors import SignalDetector
    from fibsynth.physics.montecarlo.secondary import se_table, se_walls
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.setup import slice_beam, slice_tables, stack_materials
    from fibsynth.physics.montecarlo.stack import block_levels

    k = _module("record", _patched(kernel_text(None), [(_HEAD, _RECORD + _HEAD)]))
    vol = block_levels(structure())
    kk, vox, e = 3, 4.0, 2.0
    st = StackSettings(beam=Beam(energy_kev=e), electrons_per_pixel=1, seed=3, signal=SignalDetector(kind=kind),
                       geometry=StackGeometry(solid="gold", pore="vacuum", backing="repeat"))
    mats, bk, repeat = stack_materials(st)
    tabs = slice_tables(st, mats).as_tuple()
    by, bz, sx, sy, cmin, cmax = slice_beam(st)
    sep = se_table(mats)
    segv = se_walls(vol, kk, tabs[6], bk, repeat, st.signal.pore_view_mode, voxel_zyx=(vox, vox, vox))
    nz, ny, nx = vol.shape
    geo = (vol, vox, vox, vox, kk, bk, repeat, np.zeros((1, 1, 1), np.uint8), 0.0, k.max_range(tabs[3], True))
    mdep, mfull = k.matter_layers(vol, tabs[6], bk, repeat)
    rcp = k.reciprocals(vox, vox, vox, tabs[1])
    beam = (seed, per_pixel, e, by, bz, sx, sy, nx * vox, ny * vox, kk * vox, float(st.detector.e_min_kev), cmin, cmax)
    cone = st.signal.cone(by, bz).astype(np.float64)
    n_max = 200 * nx * per_pixel
    recs = []
    for iy in range(0, ny, max(ny // rows, 1))[:rows]:
        acc = np.zeros(k.SE_ACC + 1 + NREC * n_max)
        out = tuple(np.zeros(nx, t) for t in (np.int64, np.int64, float, float, float, float, np.int64, float))
        k._slice_row_se(iy, beam, geo, tabs, mdep, mfull, rcp, sep, True, cone, segv, np.zeros(k.N_TALLY, np.int64),
                        acc, np.zeros(k.NE_BINS, np.int64), np.zeros(k.NA_BINS, np.int64), out)
        n = int(acc[k.SE_ACC])
        recs.append(acc[k.SE_ACC + 1: k.SE_ACC + 1 + NREC * n].reshape(n, NREC).copy())
    return {"rec": np.concatenate(recs), "vol": vol, "nel": tabs[6], "backing": int(bk), "repeat": bool(repeat),
            "kface": kk, "vox": vox, "sep": sep, "ln_e0": float(tabs[0]), "inv_dln": float(tabs[1]),
            "views": segv[0], "masks": segv[1], "dirs": segv[2], "electrons": rows * nx * per_pixel}


def replay(k, d: dict, reps: int = 1):
    """Per-segment accumulator after each call (SE1, SE2 increments and the state) and the CPU seconds."""
    views = d["views"].copy()
    views[:] = -1.0  # filled on first use, as in a slice
    out = np.zeros((d["rec"].shape[0], 9))
    t = time.process_time()
    k._replay(d["rec"], d["sep"], d["ln_e0"], d["inv_dln"], d["vol"], d["nel"], d["backing"], d["repeat"],
              d["vox"], d["vox"], d["vox"], d["kface"], (views, d["masks"], d["dirs"]), out, reps)
    return out, time.process_time() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default=None, help="former revision to time against (--timing)")
    ap.add_argument("--quadrature", action="store_true", help="the segment rule's error against 64-interval Simpson")
    ap.add_argument("--kind", choices=("se", "inlens"), default="se")
    ap.add_argument("--per-pixel", type=int, default=4)
    ap.add_argument("--rows", type=int, default=40, help="pixel rows of the 40 x 40 slice recorded")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=3, help="replays per timed call")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    d = record(a.kind, a.per_pixel, a.rows)
    rec = d["rec"]
    print(f"{a.kind}: {len(rec)} se_segment calls from {d['electrons']} electrons "
          f"({len(rec) / d['electrons']:.1f} per electron), median path {np.median(rec[:, 9]):.3f} nm", flush=True)
    cur = _module("current", kernel_text(None) + _REPLAY)
    if a.rev:
        former = _module(f"rev_{a.rev}".replace("^", "_").replace("~", "_"), kernel_text(a.rev) + _REPLAY)
        o0, o1 = replay(former, d)[0], replay(cur, d)[0]
        print(f"per-segment outputs {'bit-identical' if np.array_equal(o0, o1) else 'DIFFERENT'} "
              f"(max |diff| {np.abs(o0 - o1).max():.3g})")
        ts = {"former": [], "current": []}
        for r in range(a.rounds):
            for name, k in (((("former", former), ("current", cur))) if r % 2 == 0 else
                            (("current", cur), ("former", former))):
                ts[name].append(replay(k, d, a.reps)[1])
        n = len(rec) * a.reps
        for name, v in ts.items():
            v = sorted(v)
            print(f"{name} ({a.rev if name == 'former' else 'this checkout'}): {1e9 * v[0] / n:.1f} ns per segment "
                  f"(min of {a.rounds}; median {1e9 * v[len(v) // 2] / n:.1f})")
        print(f"current / former (min): {min(ts['current']) / min(ts['former']):.3f}")
    if a.quadrature:
        src = kernel_text(None)
        two = _module("two_point", _patched(src, [(_SIMPSON, _TWO_POINT), ("\n\n@_jit_se\ndef se_segment(",
                                                                           _MEAN_EXP + "\n\n@_jit_se\ndef se_segment(")])
                      + _REPLAY)
        ref = _module("reference", _patched(src, [(_SIMPSON, _REFERENCE)]) + _REPLAY)
        s = {name: (lambda o: o[:, 0] + o[:, 1])(replay(k, d)[0]) for name, k in
             (("kernel (Simpson, 3 points)", cur), ("two-point, exact for a flat wall", two),
              ("reference (Simpson, 65 points)", ref))}
        sr = s["reference (Simpson, 65 points)"]
        tot = sr.sum()
        for name, v in s.items():
            print(f"{name:<34} total SE {v.sum():.2f}  vs reference {v.sum() / tot - 1:+.4f}  "
                  f"sum |diff| / total {np.abs(v - sr).sum() / tot:.4f}")
        lam = d["sep"][:, 1].max()
        p = rec[:, 9] / lam
        for lo, hi in ((0, 1e-9), (1e-9, 0.3), (0.3, 1.0), (1.0, 2.0), (2.0, 1e9)):
            m = (p >= lo) & (p < hi)
            print(f"  path/lambda in [{lo:g}, {hi:g}): {m.mean():.3f} of the segments, {sr[m].sum() / tot:.3f} of the "
                  f"SE; error vs reference: " + ", ".join(f"{(v[m] - sr[m]).sum() / tot:+.4f}"
                                                          for name, v in s.items() if name != next(reversed(s))))
        ts = {"kernel": [], "two-point": []}
        for r in range(a.rounds):
            for name, k in (("kernel", cur), ("two-point", two)):
                ts[name].append(replay(k, d, a.reps)[1])
        print("ns per segment (min): " + ", ".join(f"{n} {1e9 * min(v) / (len(rec) * a.reps):.1f}"
                                                   for n, v in ts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
