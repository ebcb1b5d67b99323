"""Open pores (vacuum) on the torch backend (issues 17 item 1, 16): agreement with the numba kernel, and speed.

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/torch_open_pores.py --validate
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/torch_open_pores.py --speed

``--validate``: the same slice simulated by both backends (different random streams) for two open-pore geometries
and two beam energies each, 38 degrees incidence, 4 nm voxels:

* ``trench``: a gold block (20 x 16 x 16 voxels, solid backing) with one open trench (vacuum) 4 voxels wide, open
  at the face of slice 2 and 10 voxels deep -- the beam lands in it and hits its wall and bottom;
* ``porous``: a leveled-wave structure (24 x 16 x 16, solid fraction 0.4, ligament 24 nm) of silicon with open
  pores, ``backing="repeat"`` -- electrons leave walls into pores and re-enter other walls, or come up a pore.

Per pixel: z = (p_torch - p_numba) / sqrt(var_t + var_n) (binomial, each pixel's own n); reported: the sum of z^2
over the pixels (chi^2 with one degree of freedom per pixel if the two agree), max |z|, and the total eta of each
with its z. Also the free-standing film (Au on vacuum, the transmitted share) and the ``transmitted`` / ``lost``
counts of the torch run.

``--speed``: torch (CPU, one thread) electrons/s on one slice of a leveled-wave structure (default 32 x 32 x 32,
4 nm voxels, solid fraction 0.3, ligament 30 nm, 2 keV, 38 deg, slice 8) with gold/epoxy (epoxy backing) and
gold/vacuum (vacuum backing, as ``bench_open_pores.py --timing`` for the numba kernel), interleaved in one process,
medians of ``--repeats``; the ratio t(vacuum) / t(epoxy) at equal electrons and the transport events per electron
(vacuum crossings are one event each in the torch loop).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np

VOX = (4.0, 4.0, 4.0)


def trench(shape=(20, 16, 16)):
    vol = np.ones(shape, np.uint8)
    vol[:12, 6:10, :] = 0  # open at the face of slices 0..11, bottom at layer 12 (gold)
    return vol


def porous(shape=(24, 16, 16), seed=3):
    from fibsynth.pipeline.products import make_structure

    return make_structure(shape, VOX, solid_fraction=0.4, ligament_nm=24.0, seed=seed).data


GEOMETRIES = {
    "trench": (trench, dict(solid="gold", pore="vacuum", backing="solid"), 2),
    "porous": (porous, dict(solid="silicon", pore="vacuum", backing="repeat"), 3),
}


def settings(energy, npp, seed, **geo):
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings

    return StackSettings(beam=Beam(energy_kev=energy, incidence_deg=38.0), electrons_per_pixel=npp, seed=seed,
                         geometry=StackGeometry(**geo))


def compare(a, b, n):
    """Per-pixel and total agreement of two slices' BSE counts (``all``), ``n`` electrons per pixel each."""
    pa, pb = a / n, b / n
    var = (pa * (1 - pa) + pb * (1 - pb)) / n
    ok = var > 0
    z = np.zeros_like(pa)
    z[ok] = (pb - pa)[ok] / np.sqrt(var[ok])
    ea, eb = pa.mean(), pb.mean()
    ntot = n * a.size
    ze = (eb - ea) / math.sqrt((ea * (1 - ea) + eb * (1 - eb)) / ntot)
    return {"pixels": int(ok.sum()), "chi2": float((z[ok] ** 2).sum()), "max_abs_z": float(np.abs(z).max()),
            "eta_numba": float(ea), "eta_torch": float(eb), "eta_z": float(ze)}


def validate(npp, energies, seed):
    from fibsynth.physics.montecarlo.backend_torch import simulate_slice_torch
    from fibsynth.physics.montecarlo.stack import simulate_slice

    rows = []
    for name, (make, geo, k) in GEOMETRIES.items():
        vol = make()
        for e in energies:
            s = settings(e, npp, seed, **geo)
            t0 = time.perf_counter()
            a = simulate_slice(vol, VOX, k, s)
            tn = time.perf_counter() - t0
            b = simulate_slice_torch(vol, VOX, k, s.model_copy(update={"seed": seed + 1}), threads=1, batch=20000)
            row = {"geometry": name, "energy_kev": e, "slice": k, "electrons_per_pixel": npp,
                   **compare(a["all"], b["all"], npp),
                   "detected": compare(a["detected"], b["detected"], npp)["eta_z"],
                   "transmitted": b["transmitted"], "lost": b.get("lost", 0),
                   "vacuum_events_per_e": b.get("vacuum_events", 0) / b["launched"],
                   "events_per_e": b["events"] / b["launched"], "numba_s": tn, "torch_s": b["seconds"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def film(electrons, seed):
    from fibsynth.physics.montecarlo.backend_torch import film_eta_torch
    from fibsynth.physics.montecarlo.engine import film_eta

    rows = []
    for t, e in ((5.0, 5.0), (20.0, 10.0)):
        a = film_eta("Au", "vacuum", t, e, electrons, seed=seed)
        b = film_eta_torch("Au", "vacuum", t, e, electrons, seed=seed + 1, threads=1, batch=20000)
        z = (b.eta - a.eta) / math.hypot(a.eta_std, b.eta_std)
        row = {"film": f"Au {t:g} nm on vacuum", "energy_kev": e, "eta_numba": a.eta, "eta_torch": b.eta, "z": z,
               "transmitted_share_torch": b.parameters["transmitted"] / electrons}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def speed(size, npp, repeats, k=8, seed=1):
    import torch

    from fibsynth.physics.montecarlo.backend_torch import TorchTables, simulate_slice_torch
    from fibsynth.physics.montecarlo.setup import slice_tables, stack_materials
    from fibsynth.pipeline.products import make_structure

    vol = make_structure((size, size, size), VOX, solid_fraction=0.3, ligament_nm=30.0, seed=seed).data
    cases = {}
    for pore in ("epoxy", "vacuum"):
        s = settings(2.0, npp, 7, solid="gold", pore=pore, backing="pore")
        mats, _, _ = stack_materials(s)
        cases[pore] = (s, TorchTables(slice_tables(s, mats), torch.device("cpu"), torch.float32))
    times = {p: [] for p in cases}
    info = {}
    for pore, (s, tt) in cases.items():  # warm-up
        simulate_slice_torch(vol, VOX, k, s.model_copy(update={"electrons_per_pixel": 1}), tables=tt, threads=1)
    for _ in range(repeats):
        for pore, (s, tt) in cases.items():
            r = simulate_slice_torch(vol, VOX, k, s, tables=tt, threads=1, batch=20000)
            times[pore].append(r["seconds"])
            info[pore] = {"eta": float(r["all"].sum() / r["launched"]), "events_per_e": r["events"] / r["launched"],
                          "vacuum_events_per_e": r.get("vacuum_events", 0) / r["launched"]}
    n = size * size * npp
    out = {"structure": f"{size}^3 LW 0.3/30 nm (seed {seed}), 4 nm voxels, slice {k}, 2 keV, 38 deg, {npp} e/px",
           "electrons": n}
    for pore in cases:
        t = statistics.median(times[pore])
        out[pore] = {"median_s": t, "electrons_per_s": n / t, "times": times[pore], **info[pore]}
    out["ratio_vacuum_over_epoxy"] = [tv / te for tv, te in zip(times["vacuum"], times["epoxy"])]
    out["ratio_median"] = statistics.median(out["ratio_vacuum_over_epoxy"])
    print(json.dumps(out, indent=1), flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--validate", action="store_true")
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--per-pixel", type=int, default=400)
    ap.add_argument("--energies", default="2,5")
    ap.add_argument("--film-electrons", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--speed-per-pixel", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--structure-seeds", default="1", help="comma-separated structure seeds for --speed")
    a = ap.parse_args(argv)
    if a.validate:
        validate(a.per_pixel, [float(x) for x in a.energies.split(",")], a.seed)
        film(a.film_electrons, a.seed)
    if a.speed:
        for sd in a.structure_seeds.split(","):
            speed(a.size, a.speed_per_pixel, a.repeats, seed=int(sd))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
