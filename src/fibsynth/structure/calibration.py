"""Calibration of the leveled-wave wave number against the mean ligament diameter.

The ligament diameter ``d`` of a structure is the volume-weighted mean of the 3D local thickness of
its solid (diameter of the largest inscribed ball covering each solid voxel, Hildebrand & Ruegsegger
1997), as computed by :func:`fibsynth.metrics.thickness.mean_ligament_diameter`. For a leveled-wave
structure of wavelength ``lambda = 2 pi / q0`` and solid fraction ``phi`` it scales as

    d = c(phi) * lambda,

(the structure is self-similar in ``lambda``; ``c`` depends only on the level cut). ``c(phi)`` is
measured by :func:`run_calibration` (``python -m fibsynth.structure.calibration``) on generated
volumes and stored in :data:`fibsynth.structure.ligament_table.LIGAMENT_FACTOR_TABLE`; between table entries
``c`` is linearly interpolated. Re-running the module prints a fresh table (paste it into ``ligament_table.py``)
and the accuracy check. The table is a module of its own so that the generator (``leveled_wave``) reads it
without importing the script that measures it (which imports the generator).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

# The run-time table lives in ``fibsynth.structure.ligament_table`` (read by ``leveled_wave``); this module
# measures it. Re-exported here for scripts that read it from the calibration module.
from fibsynth.structure.ligament_table import (  # noqa: E402,F401
    CALIBRATION_SETUP,
    LIGAMENT_FACTOR_TABLE,
    calibrated_range,
    ligament_factor,
)


def measure_factor(phi: float, wavelength_vox: float, size: int, seed: int, waves: int) -> float:
    """Generate a ``size^3`` structure of wavelength ``wavelength_vox`` voxels and return ``d / lambda``."""
    from fibsynth.metrics.thickness import mean_ligament_diameter
    from fibsynth.structure.leveled_wave import LeveledWave, LWMConfig
    from fibsynth.config import VoxelSize

    cfg = LWMConfig.build(
        None,
        shape=(size, size, size),
        voxel_size=VoxelSize(x=1.0, y=1.0, z=1.0),
        solid_fraction=phi,
        ligament_nm=max(2.0, 0.5 * wavelength_vox),  # placeholder; q0 is set below
        waves=waves,
        seed=seed,
    )
    model = LeveledWave.with_wave_number(cfg, 2 * math.pi / wavelength_vox)
    solid = model.solid()
    return mean_ligament_diameter(solid, (1.0, 1.0, 1.0)) / wavelength_vox


def run_calibration(
    phis=None, wavelength_vox: float = 24.0, size: int = 128, seeds=(0, 1, 2), waves: int = 1000
) -> dict:
    phis = phis if phis is not None else [round(0.05 * k, 2) for k in range(1, 20)]
    table = {}
    for phi in phis:
        vals = [measure_factor(phi, wavelength_vox, size, s, waves) for s in seeds]
        table[phi] = (float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
        print(f"phi = {phi:.2f}: c = {table[phi][0]:.4f} +- {table[phi][1]:.4f} (seeds {list(seeds)})", flush=True)
    return table


def accuracy_check(phis=(0.2, 0.3, 0.4, 0.5), lig_vox=(6, 8, 12, 16), seeds=(10, 11), waves: int = 1000) -> list:
    """Generate structures with the committed table and compare measured with requested ligament size."""
    from fibsynth.metrics.thickness import mean_ligament_diameter
    from fibsynth.structure.leveled_wave import leveled_wave

    rows = []
    for phi in phis:
        for d in lig_vox:
            size = int(min(160, max(64, 8 * d)))
            for s in seeds:
                solid = leveled_wave((size,) * 3, 1.0, phi, float(d), waves=waves, seed=s)
                meas = mean_ligament_diameter(solid, (1.0, 1.0, 1.0))
                rows.append((phi, d, size, s, float(solid.mean()), meas, meas / d - 1.0))
                print(
                    f"phi = {phi:.2f} d = {d:>2} vox ({size}^3, seed {s}): solid fraction {solid.mean():.4f}, "
                    f"measured d = {meas:.3f} vox ({100 * (meas / d - 1):+.1f} %)",
                    flush=True,
                )
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wavelength", type=float, default=24.0, help="wavelength in voxels (default 24)")
    ap.add_argument("--size", type=int, default=128, help="edge of the calibration volumes (default 128)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--waves", type=int, default=1000)
    ap.add_argument("--check", action="store_true", help="only run the accuracy check with the committed table")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if not args.check:
        table = run_calibration(wavelength_vox=args.wavelength, size=args.size, seeds=tuple(range(args.seeds)), waves=args.waves)
        print("\nLIGAMENT_FACTOR_TABLE = {")
        for phi, (c, sd) in table.items():
            print(f"    {phi:.2f}: {c:.4f},  # +- {sd:.4f}")
        print("}")
    else:
        accuracy_check(waves=args.waves)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
