"""Build src/fibsynth/physics/data/mott_tables.npz (Dirac partial-wave Mott tables, see docs/mott.md).

    python benchmarks/build_mott_tables.py [--z 1,6,...] [--out PATH]

Prints per element the wall time, the worst relative error with which the inverse-CDF rows reproduce
sigma_1/sigma_el and sigma_2/sigma_el, and the agreement of sigma_el from the DCS integral with the
phase-shift (unitarity) sum.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from fibsynth.physics import mott_tables as mt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--z", default=",".join(str(z) for z in mt.SHIPPED_Z))
    ap.add_argument("--out", default=str(mt.DATA_FILE))
    a = ap.parse_args()
    zs = [int(z) for z in a.z.split(",")]
    t0 = time.time()
    tprev = [t0]

    def progress(z):
        t = time.time()
        print(f"Z={z:3d} {t - tprev[0]:6.1f} s", flush=True)
        tprev[0] = t

    d = mt.build_mott_tables(zs, path=a.out, progress=progress)
    worst = 0.0
    for j, z in enumerate(zs):
        errs = [
            mt.table_moment_errors(d["mu_icdf"][j, g], d["sigma_el"][j, g], d["sigma_1"][j, g], d["sigma_2"][j, g])
            for g in range(len(d["e_ev"]))
        ]
        e = np.abs(np.array(errs)).max()
        u = np.abs(d["sigma_el"][j] / d["sigma_el_phase"][j] - 1).max()
        worst = max(worst, e)
        print(f"Z={z:3d} max moment error {e:.2e}, max |sigma_el(DCS)/sigma_el(phases) - 1| {u:.1e}, lmax {d['lmax'][j].max()}")
    print(f"total {time.time() - t0:.0f} s; worst moment error {worst:.2e}; wrote {a.out}")


if __name__ == "__main__":
    main()
