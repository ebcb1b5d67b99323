"""Calibration of the leveled-wave wave number against the mean ligament diameter.

The ligament diameter ``d`` of a structure is the volume-weighted mean of the 3D local thickness of
its solid (diameter of the largest inscribed ball covering each solid voxel, Hildebrand & Ruegsegger
1997), as computed by :func:`fibsynth.metrics.thickness.mean_ligament_diameter`. For a leveled-wave
structure of wavelength ``lambda = 2 pi / q0`` and solid fraction ``phi`` it scales as

    d = c(phi) * lambda,

(the structure is self-similar in ``lambda``; ``c`` depends only on the level cut). ``c(phi)`` is
measured by :func:`run_calibration` (``python -m fibsynth.structure.calibration``) on generated
volumes and stored in :data:`LIGAMENT_FACTOR_TABLE` below; between table entries ``c`` is linearly
interpolated. Re-running the module prints a fresh table (paste it here) and the accuracy check.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

# ---- measured table (printed by python -m fibsynth.structure.calibration) -----------------------------
# solid fraction -> c = mean ligament diameter / wavelength
# Measured with: python -m fibsynth.structure.calibration  (defaults below; 231 s on 2 shared cores)
CALIBRATION_SETUP = {
    "wavelength_voxels": 24.0,
    "volume": [128, 128, 128],
    "voxel_nm": 1.0,
    "waves": 1000,
    "seeds": [0, 1, 2],
    "local_thickness": "fibsynth.metrics.thickness.mean_ligament_diameter (Hildebrand-Ruegsegger, voxel-centre EDT)",
    "note": "mean over 3 seeds; the +- comments are the seed-to-seed standard deviations",
}
LIGAMENT_FACTOR_TABLE: dict[float, float] = {
    0.05: 0.3741,  # +- 0.0033
    0.10: 0.4182,  # +- 0.0040
    0.15: 0.4526,  # +- 0.0054
    0.20: 0.4839,  # +- 0.0052
    0.25: 0.5129,  # +- 0.0047
    0.30: 0.5401,  # +- 0.0046
    0.35: 0.5677,  # +- 0.0044
    0.40: 0.5956,  # +- 0.0048
    0.45: 0.6245,  # +- 0.0050
    0.50: 0.6546,  # +- 0.0054
    0.55: 0.6865,  # +- 0.0055
    0.60: 0.7204,  # +- 0.0062
    0.65: 0.7580,  # +- 0.0075
    0.70: 0.7998,  # +- 0.0080
    0.75: 0.8489,  # +- 0.0081
    0.80: 0.9066,  # +- 0.0070
    0.85: 0.9840,  # +- 0.0094
    0.90: 1.1178,  # +- 0.0035
    0.95: 1.4161,  # +- 0.0126
}
# ---- end of measured table ---------------------------------------------------------------------------


def ligament_factor(solid_fraction: float) -> float:
    """``c(phi) = d / lambda`` interpolated linearly in the calibration table (clamped at its ends,
    0.05 and 0.95; outside that range the ligament size is not calibrated)."""
    phis = np.array(sorted(LIGAMENT_FACTOR_TABLE))
    cs = np.array([LIGAMENT_FACTOR_TABLE[p] for p in phis])
    return float(np.interp(solid_fraction, phis, cs))


def calibrated_range() -> tuple[float, float]:
    phis = sorted(LIGAMENT_FACTOR_TABLE)
    return (phis[0], phis[-1]) if phis else (0.0, 1.0)


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
