"""A large, realistic-looking test stack for ``fibsynth reconstruct`` (big12), made block by block in bounded memory.

Ground truth: a fibsynth leveled-wave structure (an analytic function of position, evaluated per block,
:meth:`fibsynth.structure.leveled_wave.LeveledWave.solid`); imaged with the fast path
(:func:`fibsynth.fastsim.projection.project`, each block of slices with the slices behind it, so the images equal
those of the whole stack); degraded with the artifact model of ``benchmarks/realistic_stack.py`` (:func:`degrade`:
focus drift, xy misalignment random walk applied to image and truth, curtains, shading, gain/offset drift,
gamma + soft saturation, Poisson-Gaussian noise, 8 bits) with the per-slice parameters drawn once for the whole
stack in the same order as ``degrade`` and the noise drawn per block (so the stack differs from ``degrade``'s in its
noise only). Written as a Fiji-style multi-page TIFF (ImageJ metadata: voxel size, unit nm) and the truth beside it.

    python benchmarks/big_stack.py /tmp/big12/big.tif /tmp/big12/big_truth.tif --shape 256 1024 1024

Peak memory ~ the uint8 stack and truth (memory-mapped) + one block of 32 slices in float64.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def make(out: Path, truth_out: Path, shape, voxel_nm=4.0, slice_nm=8.0, energy_kev=2.0, ligament_nm=40.0,
         solid_fraction=0.35, seed=0, strength=1.0, dose=400.0, read_sigma=0.03, block=32) -> dict:
    from scipy.ndimage import gaussian_filter

    from fibsynth.config import VoxelSize
    from fibsynth.fastsim.projection import project
    from fibsynth.io import VolumeMeta, write_volume
    from fibsynth.structure.leveled_wave import LeveledWave, lwm_config

    sys_path = Path(__file__).resolve().parent
    import sys

    sys.path.insert(0, str(sys_path))
    from realistic_stack import _smooth_walk

    nz, ny, nx = shape
    vz = (slice_nm, voxel_nm, voxel_nm)
    t0 = time.perf_counter()
    model = LeveledWave(lwm_config(shape, vz, solid_fraction, ligament_nm, seed=seed))
    # artifact parameters per slice, drawn in degrade()'s order
    rng = np.random.default_rng(seed + 1000)
    blur = np.clip(0.6 + 0.5 * strength * np.abs(_smooth_walk(nz, 0.15, rng)), 0.3, 2.0)
    sh_y = np.round(_smooth_walk(nz, 0.6 * strength, rng, smooth=2.0)).astype(int)
    sh_x = np.round(_smooth_walk(nz, 0.6 * strength, rng, smooth=2.0)).astype(int)
    sh_y -= sh_y[0]
    sh_x -= sh_x[0]
    n_str = int(rng.integers(4, 10))
    xs, widths = rng.uniform(0, nx, n_str), rng.uniform(0.7, 3.0, n_str)
    amps = rng.normal(0, 0.08 * strength, n_str)
    xx = np.arange(nx)
    curt = np.zeros((nz, nx))
    for j in range(n_str):
        prof = np.exp(-0.5 * ((xx - xs[j]) / widths[j]) ** 2)
        ramp = 1.0 + 0.5 * np.sin(np.linspace(0, rng.uniform(1, 4), nz) + rng.uniform(0, 6.3))
        curt += amps[j] * ramp[:, None] * prof[None, :]
    yy = np.linspace(0, 1, ny)[:, None]
    xg = np.linspace(-0.5, 0.5, nx)[None, :]
    shade = (1.0 - 0.25 * strength * yy ** 2) * (1.0 + 0.15 * strength * rng.choice([-1, 1]) * xg)
    gain = 1.0 + 0.08 * strength * np.sin(np.linspace(0, rng.uniform(2, 6), nz))
    off = 0.04 * strength * _smooth_walk(nz, 0.3, rng)

    tmp_dir = out.parent
    img_mm = np.lib.format.open_memmap(tmp_dir / (out.stem + ".img.tmp.npy"), mode="w+", dtype=np.uint8, shape=shape)
    tru_mm = np.lib.format.open_memmap(tmp_dir / (out.stem + ".truth.tmp.npy"), mode="w+", dtype=np.uint8, shape=shape)
    margin = 24  # slices behind the last of a block that its images see (K = 7 at 2 keV, 8 nm slices)
    solid_sum = 0
    rec_proj = None
    for z0 in range(0, nz, block):
        z1 = min(nz, z0 + block)
        ze = min(nz, z1 + margin)
        solid = model.solid((slice(z0, ze), slice(0, ny), slice(0, nx)))
        ideal, rec_proj = project(solid, vz, energy_kev, slices=(0, z1 - z0))
        solid_sum += int(solid[: z1 - z0].sum())
        brng = np.random.default_rng((seed, 77, z0))
        for k in range(z1 - z0):
            z = z0 + k
            x = np.roll(gaussian_filter(np.clip(ideal[k].astype(np.float64), 0, None), blur[z]),
                        (sh_y[z], sh_x[z]), axis=(0, 1))
            tru_mm[z] = np.roll(solid[k], (sh_y[z], sh_x[z]), axis=(0, 1))
            x += curt[z][None, :]
            x *= shade
            x = x * gain[z] + off[z]
            x = np.clip(x, 0, None) ** 0.8
            x = np.tanh(1.4 * x) / np.tanh(1.4)
            x = brng.poisson(np.clip(x, 0, None) * dose) / dose + brng.normal(0, read_sigma, x.shape)
            img_mm[z] = np.clip(np.round(30 + 190 * x), 0, 255).astype(np.uint8)
        print(f"slices {z0}-{z1} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    img_mm.flush()
    tru_mm.flush()
    vox = VoxelSize.from_xy_z(voxel_nm, slice_nm)
    rec = {"kind": "leveled_wave", "shape": list(shape), "ligament_nm": ligament_nm, "solid_fraction": solid_fraction,
           "truth_solid_fraction": solid_sum / float(np.prod(shape)), "engine": "fast", "energy_kev": energy_kev,
           "artifacts": {"seed": seed + 1000, "strength": strength, "dose": dose, "read_sigma": read_sigma,
                         "curtains": n_str, "max_shift_px": int(max(np.abs(sh_y).max(), np.abs(sh_x).max()))},
           "slices_behind": rec_proj["slices_behind"], "seconds": round(time.perf_counter() - t0, 1)}
    write_volume(out, img_mm, VolumeMeta(kind="image", voxel_size_nm=vox, generator="benchmarks/big_stack.py",
                                         parameters=rec, seed=seed, energy_kev=energy_kev,
                                         materials={"0": "epoxy", "1": "gold"}))
    write_volume(truth_out, tru_mm, VolumeMeta(kind="label", voxel_size_nm=vox, seed=seed,
                                               generator="benchmarks/big_stack.py (truth, image coords)"))
    del img_mm, tru_mm
    for p in (tmp_dir / (out.stem + ".img.tmp.npy"), tmp_dir / (out.stem + ".truth.tmp.npy")):
        p.unlink()
    return rec


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("truth")
    ap.add_argument("--shape", type=int, nargs=3, default=(256, 1024, 1024))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dose", type=float, default=400.0)
    a = ap.parse_args(argv)
    rec = make(Path(a.out), Path(a.truth), tuple(a.shape), seed=a.seed, dose=a.dose)
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
