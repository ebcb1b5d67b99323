"""Realistic test stacks for ``fibsynth reconstruct``: ground truth from generators that are NOT fibsynth's own,
imaged, then degraded by an artifact model written for the test and kept apart from the microscope model that
reconstruct uses for training (``fibsynth.reconstruct.augment`` / ``fibsynth.microscope``), so that a test stack is
not drawn from the training distribution.

Ground truth (``kind``):

* ``grf``  -- a band-pass filtered Gaussian random field (a *broad* Gaussian annulus in Fourier space, not the
  leveled-wave method's single wave-number shell), cut at the solid-fraction quantile, then morphologically
  cleaned (opening + closing with a ball, islands below a minimum size removed in both phases);
* ``hier`` -- a two-scale structure: the AND of a coarse and a fine band-pass field of the kind above (a
  hierarchical, gold-like network made by another recipe than ``fibsynth.structure.hierarchical``);
* ``sofc`` -- a crop of the real segmented SOFC electrolyte volume in ``../shared/data/real-structures``.

Imaging (``engine``): ``fast`` (fibsynth's shine-through projection, *without* the shipped CycleGAN) or ``mc``
(fibsynth's Monte Carlo at a few electrons per pixel; ~200k electrons/s on one core).

Artifacts (:func:`degrade`), each with its own seeded random parameters: non-linear detector response (gamma and
soft saturation), shading (trench-wall shadow towards the bottom, left-right tilt), curtains (vertical stripes of
random width and strength that drift slowly over the slices), drift over the stack (brightness, contrast, focus
blur and an integer xy misalignment random walk, applied to the image *and* to the truth so that the truth stays
in image coordinates), Poisson-Gaussian noise and 8-bit quantisation with clipping.

    python benchmarks/realistic_stack.py OUT.tif TRUTH.tif --kind hier --shape 64 96 96 --voxel-nm 4 --slice-nm 8
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

SOFC = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-structures" / "sofc_electrolyte_201.tif"


# ------------------------------------------------------------------------------------------ ground truth

def bandpass_field(shape, voxel_zyx, length_nm: float, rel_width: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with a Gaussian annulus spectrum centred at |k| = 1/length_nm (cycles/nm) and
    relative width ``rel_width`` (0.5 = broad)."""
    noise = rng.standard_normal(shape)
    ks = np.meshgrid(*[np.fft.fftfreq(n, d=h) for n, h in zip(shape, voxel_zyx)], indexing="ij", sparse=True)
    k = np.sqrt(sum(kk**2 for kk in ks))
    k0 = 1.0 / length_nm
    filt = np.exp(-0.5 * ((k - k0) / (rel_width * k0)) ** 2)
    f = np.fft.ifftn(np.fft.fftn(noise) * filt).real
    return (f - f.mean()) / (f.std() + 1e-12)


def _cleanup(solid: np.ndarray, voxel_zyx, min_nm: float) -> np.ndarray:
    from scipy import ndimage as ndi

    def remove_small_objects(a, size):
        lab, n = ndi.label(a)
        if n == 0:
            return a
        counts = np.bincount(lab.ravel())
        keep = counts >= size
        keep[0] = False
        return keep[lab]

    r = [max(1, int(round(0.5 * min_nm / h))) for h in voxel_zyx]
    zz, yy, xx = np.ogrid[-r[0]:r[0] + 1, -r[1]:r[1] + 1, -r[2]:r[2] + 1]
    ball = (zz / max(r[0], 1)) ** 2 + (yy / r[1]) ** 2 + (xx / r[2]) ** 2 <= 1.0
    s = ndi.binary_opening(solid, ball)
    s = ndi.binary_closing(s, ball)
    vox = float(np.prod(voxel_zyx))
    min_size = max(8, int((min_nm ** 3) / vox))
    s = remove_small_objects(s, min_size)
    s = ~remove_small_objects(~s, min_size)
    return s.astype(np.uint8)


def grf_structure(shape, voxel_zyx, solid_fraction: float = 0.35, length_nm: float = 90.0, seed: int = 0,
                  rel_width: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = bandpass_field(shape, voxel_zyx, length_nm, rel_width, rng)
    solid = f > np.quantile(f, 1.0 - solid_fraction)
    return _cleanup(solid, voxel_zyx, 0.12 * length_nm)


def hier_structure(shape, voxel_zyx, coarse_nm: float = 200.0, fine_nm: float = 50.0, coarse_fraction: float = 0.55,
                   fine_fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = bandpass_field(shape, voxel_zyx, coarse_nm, 0.4, rng)
    f = bandpass_field(shape, voxel_zyx, fine_nm, 0.45, rng)
    solid = (c > np.quantile(c, 1 - coarse_fraction)) & (f > np.quantile(f, 1 - fine_fraction))
    return _cleanup(solid, voxel_zyx, 0.2 * fine_nm)


def sofc_structure(shape, seed: int = 0) -> np.ndarray:
    """A crop of the real segmented volume (1 = the brighter, solid phase)."""
    import tifffile

    if not SOFC.is_file():
        raise FileNotFoundError(f"the real volume {SOFC} is absent")
    vol = tifffile.imread(SOFC)
    vals = np.unique(vol)
    solid = (vol == vals[-1]) if vals.size > 2 else (vol > vals[0])
    rng = np.random.default_rng(seed)
    # the volume holds a dense electrolyte layer at small x and its rough interface: crops start at x = 0
    starts = [int(rng.integers(0, max(1, n - s + 1))) for n, s in zip(solid.shape[:2], shape[:2])] + [0]
    crop = solid[tuple(slice(a, a + s) for a, s in zip(starts, shape))]
    if crop.shape != tuple(shape):
        raise ValueError(f"the real volume {solid.shape} is smaller than {tuple(shape)}")
    return crop.astype(np.uint8)


# ------------------------------------------------------------------------------------------ imaging

def image(truth: np.ndarray, voxel_zyx, energy_kev: float, engine: str = "fast", electrons_per_pixel: int = 10,
          seed: int = 0) -> np.ndarray:
    """Ideal image of the truth (float, larger = brighter): fast-path projection or Monte Carlo BSE yield."""
    if engine == "fast":
        from fibsynth.fastsim.projection import project

        img, _ = project(truth, voxel_zyx, energy_kev)
        return img.astype(np.float32)
    if engine == "mc":
        from fibsynth.config import VoxelSize
        from fibsynth.physics.montecarlo.stack import StackSettings, simulate_stack

        vox = VoxelSize(z=voxel_zyx[0], y=voxel_zyx[1], x=voxel_zyx[2])
        res = simulate_stack(truth, vox, StackSettings(energy_kev=energy_kev, electrons_per_pixel=electrons_per_pixel,
                                                       seed=seed), progress=False)
        eta = np.asarray(res["eta"], np.float32)
        lo, hi = np.percentile(eta, [1, 99])
        return (eta - lo) / max(hi - lo, 1e-9)
    raise ValueError(f"engine must be fast or mc, not {engine!r}")


# ------------------------------------------------------------------------------------------ artifacts

def _smooth_walk(n: int, step: float, rng: np.random.Generator, smooth: float = 4.0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    w = np.cumsum(rng.normal(0, step, n))
    return gaussian_filter1d(w, smooth, mode="nearest") if n > 1 else w


def degrade(img: np.ndarray, truth: np.ndarray | None = None, seed: int = 0, *, strength: float = 1.0,
            dose: float = 40.0, read_sigma: float = 0.03) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Apply the test's instrument model to an ideal stack (values ~ 0..1). Returns the uint8 stack, the truth
    shifted by the same xy misalignment (or None) and the drawn parameters."""
    from scipy.ndimage import gaussian_filter, gaussian_filter1d

    rng = np.random.default_rng(seed)
    nz, ny, nx = img.shape
    x = np.clip(img.astype(np.float64), 0, None)
    p: dict = {"seed": seed, "strength": strength, "dose": dose, "read_sigma": read_sigma}
    # drift of focus (blur varies over slices) and xy misalignment (integer random walk)
    blur = np.clip(0.6 + 0.5 * strength * np.abs(_smooth_walk(nz, 0.15, rng)), 0.3, 2.0)
    shifts = np.round(_smooth_walk(nz, 0.6 * strength, rng, smooth=2.0)).astype(int)
    shifts_x = np.round(_smooth_walk(nz, 0.6 * strength, rng, smooth=2.0)).astype(int)
    shifts -= shifts[0]
    shifts_x -= shifts_x[0]
    out = np.empty_like(x)
    t_out = None if truth is None else np.empty_like(truth)
    for k in range(nz):
        out[k] = np.roll(gaussian_filter(x[k], blur[k]), (shifts[k], shifts_x[k]), axis=(0, 1))
        if truth is not None:
            t_out[k] = np.roll(truth[k], (shifts[k], shifts_x[k]), axis=(0, 1))
    p.update(blur_px=[float(b) for b in blur[[0, -1]]], max_shift_px=int(max(np.abs(shifts).max(), np.abs(shifts_x).max())))
    # curtains: vertical stripes (constant along y) of random widths, strengths drifting over slices
    n_str = int(rng.integers(4, 10))
    xs = rng.uniform(0, nx, n_str)
    widths = rng.uniform(0.7, 3.0, n_str)
    amps = rng.normal(0, 0.08 * strength, n_str)
    xx = np.arange(nx)
    for j in range(n_str):
        prof = np.exp(-0.5 * ((xx - xs[j]) / widths[j]) ** 2)
        ramp = 1.0 + 0.5 * np.sin(np.linspace(0, rng.uniform(1, 4), nz) + rng.uniform(0, 6.3))
        out += amps[j] * ramp[:, None, None] * prof[None, None, :]
    p["curtains"] = n_str
    # shading: darker towards the bottom of the face, left-right tilt
    yy = np.linspace(0, 1, ny)[:, None]
    xg = np.linspace(-0.5, 0.5, nx)[None, :]
    shade = (1.0 - 0.25 * strength * yy**2) * (1.0 + 0.15 * strength * rng.choice([-1, 1]) * xg)
    out *= shade[None]
    # brightness / contrast drift over the stack (beam current)
    gain = 1.0 + 0.08 * strength * np.sin(np.linspace(0, rng.uniform(2, 6), nz))
    off = 0.04 * strength * _smooth_walk(nz, 0.3, rng)
    out = out * gain[:, None, None] + off[:, None, None]
    # non-linear detector: gamma, then soft saturation
    out = np.clip(out, 0, None) ** 0.8
    out = np.tanh(1.4 * out) / np.tanh(1.4)
    # Poisson-Gaussian noise
    out = rng.poisson(np.clip(out, 0, None) * dose) / dose + rng.normal(0, read_sigma, out.shape)
    # 8-bit with dark offset and clipping
    u8 = np.clip(np.round(30 + 190 * out), 0, 255).astype(np.uint8)
    p["saturated_fraction"] = float((u8 == 255).mean())
    return u8, t_out, p


# ------------------------------------------------------------------------------------------ whole stack

def make_stack(kind: str = "grf", shape=(32, 96, 96), voxel_nm: float = 4.0, slice_nm: float = 8.0,
               energy_kev: float = 2.0, engine: str = "fast", electrons_per_pixel: int = 10, seed: int = 0,
               strength: float = 1.0, artifact_dose: float = 40.0,
               ideal_cache: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(uint8 realistic stack, its truth in image coordinates, record). ``artifact_dose``: detected quanta at full
    scale of the artifact model's Poisson noise (:func:`degrade`'s ``dose``; 40 = the original test stacks, about
    the lowest dose a real instrument images at, docs/reconstruct.md "recon6"). ``ideal_cache``: a ``.npy`` path for
    the ideal (undegraded) image: read when it exists (its shape must match), else written after imaging, so stacks
    that differ only in their artifacts (e.g. the dose) share one Monte Carlo run."""
    vz = (slice_nm, voxel_nm, voxel_nm)
    if kind == "grf":
        truth = grf_structure(shape, vz, 0.35, 22 * voxel_nm, seed=seed)
    elif kind == "hier":
        truth = hier_structure(shape, vz, coarse_nm=55 * voxel_nm, fine_nm=14 * voxel_nm, seed=seed)
    elif kind == "sofc":
        truth = sofc_structure(shape, seed=seed)
    else:
        raise ValueError(f"kind must be grf, hier or sofc, not {kind!r}")
    ideal = None
    if ideal_cache is not None and Path(ideal_cache).is_file():
        ideal = np.load(ideal_cache)
        if ideal.shape != truth.shape:
            raise ValueError(f"ideal image {ideal_cache} has shape {ideal.shape}, not {truth.shape}")
    if ideal is None:
        ideal = image(truth, vz, energy_kev, engine, electrons_per_pixel, seed)
        if ideal_cache is not None:
            tmp = Path(str(ideal_cache) + ".tmp.npy")
            np.save(tmp, ideal)
            tmp.replace(ideal_cache)
    u8, t, p = degrade(ideal, truth, seed + 1000, strength=strength, dose=artifact_dose)
    rec = {"kind": kind, "engine": engine, "energy_kev": energy_kev, "electrons_per_pixel": electrons_per_pixel,
           "truth_solid_fraction": float(truth.mean()), "artifacts": p, "seed": seed}
    return u8, t.astype(np.uint8), rec


def write_stack(out: str | Path, truth_out: str | Path | None, **kw) -> dict:
    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, write_volume

    u8, truth, rec = make_stack(**kw)
    vox = VoxelSize.from_xy_z(kw.get("voxel_nm", 4.0), kw.get("slice_nm", 8.0))
    meta = VolumeMeta(kind="image", voxel_size_nm=vox, generator="benchmarks/realistic_stack.py", parameters=rec,
                      seed=rec["seed"], energy_kev=kw.get("energy_kev", 2.0), materials={"0": "epoxy", "1": "gold"})
    write_volume(out, u8, meta)
    if truth_out is not None:
        write_volume(truth_out, truth, VolumeMeta(kind="label", voxel_size_nm=vox, seed=rec["seed"],
                                                  generator="benchmarks/realistic_stack.py (truth, image coords)",
                                                  parameters={"kind": rec["kind"]}))
    return rec


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("truth", nargs="?")
    ap.add_argument("--kind", default="grf", choices=("grf", "hier", "sofc"))
    ap.add_argument("--shape", type=int, nargs=3, default=(32, 96, 96))
    ap.add_argument("--voxel-nm", type=float, default=4.0)
    ap.add_argument("--slice-nm", type=float, default=8.0)
    ap.add_argument("--energy-kev", type=float, default=2.0)
    ap.add_argument("--engine", default="fast", choices=("fast", "mc"))
    ap.add_argument("--electrons-per-pixel", type=int, default=10)
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--artifact-dose", type=float, default=40.0)
    a = ap.parse_args(argv)
    rec = write_stack(a.out, a.truth, kind=a.kind, shape=tuple(a.shape), voxel_nm=a.voxel_nm, slice_nm=a.slice_nm,
                      energy_kev=a.energy_kev, engine=a.engine, electrons_per_pixel=a.electrons_per_pixel,
                      seed=a.seed, strength=a.strength, artifact_dose=a.artifact_dose)
    print(f"wrote {a.out} (truth solid fraction {rec['truth_solid_fraction']:.3f})")


if __name__ == "__main__":
    main()
