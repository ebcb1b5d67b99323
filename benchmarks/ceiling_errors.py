"""Where the own-truth ceiling's errors are (issue 14): boundary placement or whole missed ligaments?

For the test slices of ``reconstruct_ceiling.py``'s split and the P(solid) its networks left (``--pred`` folders of
that benchmark's ``--out``), measured against the truth:

* **errors by distance to the true interface**: every voxel's grid distance to the nearest voxel of the other phase
  (a voxel face-adjacent to the other phase is at 1; Euclidean on the voxel grid, so 1 = one voxel in x, y or z;
  z voxels are 8 nm, x/y 4 nm); the share of the wrong voxels at 1, <= 2, <= 3 and beyond, against the share of all
  voxels there; missed solid (FN) and invented solid (FP) apart; the shell at 1 split into voxels whose other-phase
  neighbour lies in the slice above or below (a z face) and those with it in their own slice only;
* **what fixing a class would give**: the MDS with every wrong voxel within 1 (2) of the interface set right, and with
  every one beyond 2 set right;
* **error clumps**: the wrong voxels' 6-connected components; a clump that reaches 3 or more voxels into a phase is a
  missed or invented piece of ligament / pore rather than a misplaced boundary;
* **the scale of one voxel**: the MDS of the truth itself dilated / eroded by one voxel (6-neighbourhood, and in x/y
  only) and shifted by one voxel in x, y and z, on the same slices;
* **per slice**: MDS per test slice against its depth z, the focus blur the artifact model drew for it, its gray
  levels (bulk pore, solid minus pore), its noise (wavelet MAD of the slice, as
  ``microscope.measure.noise_sigma``) and its contrast-to-noise (bulk solid minus bulk pore gray, voxels >= 3 from
  the interface, over their pooled standard deviation), with Pearson / Spearman correlations; where the network
  folder holds a whole-stack prediction, the same per slice on every slice it was not trained on, against the blur.

    python benchmarks/ceiling_errors.py --kind grf --stack-cache /tmp/recon12/cache --split interleaved \\
        --pred /tmp/recon13/ceiling/grf_seed0_interleaved_f32-64-128 [--tta 8] --out /tmp/errors_grf.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

CLASSES = ((0, 1), (1, 2), (2, 3), (3, np.inf))  # (lo, hi]: grid distance to the interface


def interface_distance(truth: np.ndarray) -> np.ndarray:
    """Grid distance of every voxel to the nearest voxel of the other phase (1 = face-adjacent)."""
    from scipy.ndimage import distance_transform_edt

    t = truth.astype(bool)
    d = np.zeros(t.shape, np.float32)
    if t.any():
        d[t] = distance_transform_edt(t)[t]
    if (~t).any():
        d[~t] = distance_transform_edt(~t)[~t]
    return d


def mds(pred: np.ndarray, truth: np.ndarray) -> float:
    from fibsynth.metrics.ground_truth import scores_from_counts

    p, t = pred.astype(bool), truth.astype(bool)
    tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
    return float(scores_from_counts(tp, p.size - tp - fp - fn, fp, fn)["MDS"])


def error_breakdown(pred: np.ndarray, truth: np.ndarray, dist: np.ndarray, blocks) -> dict:
    """Wrong voxels by distance class, the MDS with a class fixed, and the error clumps (per test block)."""
    from scipy.ndimage import label, maximum

    wrong = pred != truth
    n_wrong = int(wrong.sum())
    out: dict = {"MDS": mds(pred, truth), "wrong voxels": n_wrong, "wrong fraction": n_wrong / wrong.size,
                 "missed solid (FN) share": float((wrong & truth.astype(bool)).sum() / max(n_wrong, 1))}
    rows = []
    for lo, hi in CLASSES:
        m = (dist > lo) & (dist <= hi)
        rows.append({"distance": f"({lo}, {hi}]", "share of wrong voxels": float((wrong & m).sum() / max(n_wrong, 1)),
                     "share of all voxels": float(m.mean()), "error rate in class": float(wrong[m].mean()) if m.any() else None,
                     "FN share of its wrong voxels": float((wrong & m & truth.astype(bool)).sum() / max((wrong & m).sum(), 1))})
    out["by distance"] = rows
    for name, m in (("within 1", dist <= 1), ("within 2", dist <= 2), ("beyond 2", dist > 2)):
        fixed = np.where(m, truth, pred)
        out[f"MDS with errors {name} fixed"] = mds(fixed, truth)
    # clumps: 6-connected components of wrong voxels, in each test block apart
    sizes, depth = [], []
    z = 0
    for a, b in blocks:
        n = b - a
        lab, k = label(wrong[z:z + n])
        if k:
            idx = np.arange(1, k + 1)
            sizes.append(np.bincount(lab.ravel())[1:])
            depth.append(np.asarray(maximum(dist[z:z + n], lab, idx)))
        z += n
    sizes = np.concatenate(sizes) if sizes else np.zeros(0, int)
    depth = np.concatenate(depth) if depth else np.zeros(0)
    deep = depth >= 3
    out["clumps"] = {"count": int(sizes.size), "median size": float(np.median(sizes)) if sizes.size else 0.0,
                     "reaching >= 3 voxels into a phase: count": int(deep.sum()),
                     "their share of the wrong voxels": float(sizes[deep].sum() / max(n_wrong, 1)),
                     "their sizes (largest 10)": sorted(map(int, sizes[deep]), reverse=True)[:10],
                     "reaching >= 2: share of the wrong voxels": float(sizes[depth >= 2].sum() / max(n_wrong, 1))}
    return out


def one_voxel_scale(truth_full: np.ndarray, test_idx: np.ndarray) -> dict:
    """MDS of the truth against itself moved by one voxel, on the test slices (the whole stack is moved, so the test
    slices' neighbours count)."""
    from scipy.ndimage import binary_dilation, binary_erosion, generate_binary_structure

    t = truth_full.astype(bool)
    ref = t[test_idx]
    six = generate_binary_structure(3, 1)
    plane = np.zeros((3, 3, 3), bool)
    plane[1] = generate_binary_structure(2, 1)
    out = {}
    for name, op in (("dilated 1 (6-neighbourhood)", lambda: binary_dilation(t, six)),
                     ("eroded 1 (6-neighbourhood)", lambda: binary_erosion(t, six, border_value=1)),
                     ("dilated 1 in x/y only", lambda: binary_dilation(t, plane)),
                     ("eroded 1 in x/y only", lambda: binary_erosion(t, plane, border_value=1))):
        out[name] = mds(op()[test_idx], ref)
    for name, ax in (("shifted 1 in z", 0), ("shifted 1 in y", 1), ("shifted 1 in x", 2)):
        s = np.roll(t, 1, axis=ax)
        sl = [slice(None)] * 3
        if ax:  # drop the wrapped row / column from both
            sl[ax] = slice(1, None)
        out[name] = mds(s[test_idx][tuple(sl)], ref[tuple(sl)])
    return out


def shell_faces(pred: np.ndarray, truth: np.ndarray, dist: np.ndarray, truth_full: np.ndarray,
                test_idx: np.ndarray) -> dict:
    """The voxels face-adjacent to the interface, split by where their other-phase neighbour lies: above/below (a
    z face: the next or previous slice, 8 nm away, where the beam sees through the face) or only in the slice."""
    t = truth_full.astype(bool)
    other_z = np.zeros_like(t)
    other_z[1:] |= t[1:] != t[:-1]
    other_z[:-1] |= t[:-1] != t[1:]
    zf = other_z[test_idx]
    shell = dist <= 1
    wrong = pred != truth
    n_wrong = max(int(wrong.sum()), 1)
    out = {}
    for name, m in (("z face (other phase in the slice above or below)", shell & zf),
                    ("in-plane only", shell & ~zf)):
        out[name] = {"share of all voxels": float(m.mean()), "error rate": float(wrong[m].mean()) if m.any() else None,
                     "share of wrong voxels": float((wrong & m).sum() / n_wrong)}
    # which side of a z face: the beam images slice z and sees into z + 1 (deeper, milled next)
    below = np.zeros_like(t)  # the slice below (z + 1) holds the other phase
    below[:-1] = t[:-1] != t[1:]
    above = np.zeros_like(t)
    above[1:] = t[1:] != t[:-1]
    b, ab = below[test_idx], above[test_idx]
    solid = truth.astype(bool)
    for name, m in (("pore voxel, solid in the slice below (z+1) only", ~solid & b & ~ab),
                    ("pore voxel, solid in the slice above (z-1) only", ~solid & ab & ~b),
                    ("solid voxel, pore in the slice below (z+1) only", solid & b & ~ab),
                    ("solid voxel, pore in the slice above (z-1) only", solid & ab & ~b)):
        out[name] = {"share of all voxels": float(m.mean()), "error rate": float(wrong[m].mean()) if m.any() else None}
    return out


def artifact_blur(nz: int, seed: int, strength: float = 1.0) -> np.ndarray:
    """The focus blur (Gaussian sigma, px) the test's artifact model drew for each slice: ``realistic_stack.degrade``'s
    first draw from its generator (``seed`` = the stack seed + 1000), reproduced."""
    import realistic_stack as R

    rng = np.random.default_rng(seed)
    return np.clip(0.6 + 0.5 * strength * np.abs(R._smooth_walk(nz, 0.15, rng)), 0.3, 2.0)


def recorded_blur(stack: Path) -> list[float] | None:
    """The first and last slice's blur as the stack's metadata records them (to check :func:`artifact_blur`)."""
    import re

    import tifffile

    with tifffile.TiffFile(stack) as t:
        for tag in t.pages[0].tags.values():
            m = re.search(r'"blur_px": \[([-0-9.e]+), ([-0-9.e]+)\]', str(tag.value))
            if m:
                return [float(m.group(1)), float(m.group(2))]
    return None


def slice_quality(img: np.ndarray, truth: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per slice: noise sigma (Haar wavelet MAD) and bulk contrast-to-noise."""
    sig, cnr = np.empty(img.shape[0]), np.empty(img.shape[0])
    for k in range(img.shape[0]):
        s = img[k].astype(np.float64)
        ny, nx = s.shape
        s2 = s[: ny - ny % 2, : nx - nx % 2]
        d = (s2[0::2, 0::2] - s2[0::2, 1::2] - s2[1::2, 0::2] + s2[1::2, 1::2]) / 2
        sig[k] = np.median(np.abs(d)) / 0.6744897501960817
        t, bulk = truth[k].astype(bool), dist[k] >= 3
        a, b = s[t & bulk], s[~t & bulk]
        cnr[k] = (a.mean() - b.mean()) / np.sqrt(0.5 * (a.var() + b.var())) if a.size > 1 and b.size > 1 else np.nan
    return sig, cnr


def untrained_slices(d: Path, parts, truth: np.ndarray, dist_full: np.ndarray, img: np.ndarray,
                     blur_all: np.ndarray) -> dict | None:
    """Per-slice MDS on every slice no network was trained on (test, validation and guard slices), where the network
    folder holds a whole-stack prediction (``probability.npy``), against the slice's blur and gray levels, and the
    line MDS = a + b * blur fitted to them (validation slices chose the model: a slight optimism there)."""
    f = Path(d) / "probability.npy"
    if not f.is_file():
        return None
    prob = np.load(f, mmap_mode="r")
    trained = {z for a, b in parts["train"] for z in range(a, b)}
    frac = truth.mean(axis=(1, 2))
    one_phase = [int(z) for z in np.flatnonzero((frac == 0) | (frac == 1))]  # the generators' empty end slices
    zs = np.array([z for z in range(truth.shape[0]) if z not in trained and z not in one_phase])
    per = np.array([mds(np.asarray(prob[z]) > 0.5, truth[z]) for z in zs])
    bulk = dist_full[zs] >= 3
    t = truth[zs].astype(bool)
    pore = np.array([img[z][~t[i] & bulk[i]].mean() for i, z in enumerate(zs)])
    b, a = np.polyfit(blur_all[zs], per, 1)
    sharp = blur_all[zs] < 0.8
    X = np.column_stack([np.ones(zs.size), blur_all[zs], pore])
    coef, *_ = np.linalg.lstsq(X, per, rcond=None)
    resid = per - X @ coef
    return {"one-phase slices left out": one_phase, "slices": int(zs.size),
            "line MDS = c0 + c1 blur + c2 pore gray": {"c": coef.tolist(), "r2": float(1 - resid.var() / per.var())}, "z": zs.tolist(), "MDS": per.round(4).tolist(), "blur px": blur_all[zs].round(3).tolist(),
            "vs blur": correlations(per, blur_all[zs]), "vs z": correlations(per, zs.astype(float)),
            "vs bulk pore gray": correlations(per, pore),
            "line MDS = a + b blur": {"a": float(a), "b per px": float(b), "at blur 0.6 px (the model's least)": float(a + 0.6 * b)},
            "mean MDS of slices with blur < 0.8 px": [float(per[sharp].mean()) if sharp.any() else None, int(sharp.sum())],
            "mean MDS of slices with blur >= 1.2 px": [float(per[blur_all[zs] >= 1.2].mean()) if (blur_all[zs] >= 1.2).any()
                                                       else None, int((blur_all[zs] >= 1.2).sum())]}


def correlations(y: np.ndarray, x: np.ndarray) -> dict:
    from scipy.stats import pearsonr, spearmanr

    ok = np.isfinite(x) & np.isfinite(y)
    return {"pearson": float(pearsonr(x[ok], y[ok])[0]), "spearman": float(spearmanr(x[ok], y[ok])[0])}


def analyse(kind: str, stack: Path, truth_path: Path, split: str, preds: list[Path], tta: int = 1,
            artifact_seed: int = 1000) -> dict:
    import tifffile

    import reconstruct_ceiling as C

    img = tifffile.imread(stack)
    truth = tifffile.imread(truth_path).astype(np.uint8)
    parts = C.split_slices(img.shape[0], split)
    test_idx = np.concatenate([np.arange(a, b) for a, b in parts["test"]])
    dist_full = interface_distance(truth)
    tt, dist = truth[test_idx], dist_full[test_idx]
    sig, cnr = slice_quality(img[test_idx], tt, dist)
    blur_all = artifact_blur(img.shape[0], artifact_seed)
    rec = recorded_blur(stack)
    blur = blur_all[test_idx]
    t, bulk = tt.astype(bool), dist >= 3
    pore_level = np.array([img[z][~t[i] & bulk[i]].mean() for i, z in enumerate(test_idx)])
    solid_level = np.array([img[z][t[i] & bulk[i]].mean() for i, z in enumerate(test_idx)])
    res = {"kind": kind, "split": split, "test slices": test_idx.tolist(), "solid fraction (truth)": float(tt.mean()),
           "one-voxel scale (truth vs truth moved)": one_voxel_scale(truth, test_idx),
           "artifact blur reproduced (first, last slice vs the stack's record)": [
               [float(blur_all[0]), float(blur_all[-1])], rec],
           "test slices: blur px min / max": [float(blur.min()), float(blur.max())], "networks": []}
    for d in preds:
        prob = C.test_probability(Path(d), parts, tta)
        pred = (prob > 0.5).astype(np.uint8)
        wrong = pred != tt
        undecided = np.abs(prob - 0.5) < 0.25
        per = np.array([mds(pred[i], tt[i]) for i in range(len(test_idx))])
        res["networks"].append({
            "prediction": str(d), "tta": tta, **error_breakdown(pred, tt, dist, parts["test"]),
            "interface shell by face": shell_faces(pred, tt, dist, truth, test_idx),
            "wrong voxels with 0.25 < P < 0.75 (share)": float((wrong & undecided).sum() / max(int(wrong.sum()), 1)),
            "all voxels with 0.25 < P < 0.75 (share)": float(undecided.mean()),
            "per slice": {"z": test_idx.tolist(), "MDS": per.round(4).tolist(), "noise sigma": sig.round(2).tolist(),
                          "bulk CNR": cnr.round(2).tolist(), "blur px": blur.round(3).tolist(),
                          "bulk pore gray": pore_level.round(1).tolist(), "bulk solid gray": solid_level.round(1).tolist()},
            "per-slice MDS: min / median / max": [float(per.min()), float(np.median(per)), float(per.max())],
            "per-slice MDS vs z": correlations(per, test_idx.astype(float)),
            "per-slice MDS vs noise sigma": correlations(per, sig),
            "per-slice MDS vs bulk CNR": correlations(per, cnr),
            "per-slice MDS vs blur": correlations(per, blur),
            "per-slice MDS vs bulk pore gray": correlations(per, pore_level),
            "per-slice MDS vs solid - pore gray": correlations(per, solid_level - pore_level),
            "untrained slices of the whole-stack prediction": untrained_slices(Path(d), parts, truth, dist_full, img,
                                                                               blur_all)})
    return res


def main(argv=None) -> None:
    import bench_reconstruct as B

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kind", required=True, choices=["grf", "hier", "sofc"])
    ap.add_argument("--shape", type=int, nargs=3, default=(128, 192, 192))
    ap.add_argument("--artifact-dose", type=float, default=400.0)
    ap.add_argument("--stack-cache", type=Path, required=True)
    ap.add_argument("--split", default="interleaved", choices=["contiguous", "interleaved", "blocks"])
    ap.add_argument("--pred", type=Path, nargs="+", required=True, help="reconstruct_ceiling.py network folders")
    ap.add_argument("--tta", type=int, default=1, help="read the predictions that benchmark's --tta N wrote")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    stack, truth, _, _ = B.test_stack(a.kind, a.shape, a.out.parent, imaging="mc", epp=10, seed=0, voxel_nm=4.0,
                                      slice_nm=8.0, cache=a.stack_cache, artifact_dose=a.artifact_dose)
    res = analyse(a.kind, stack, truth, a.split, a.pred, a.tta, artifact_seed=1000)
    a.out.write_text(json.dumps(res, indent=1))
    short = {k: v for k, v in res.items() if k not in ("networks", "test slices")}
    short["networks"] = [{k: v for k, v in n.items() if k != "per slice"} for n in res["networks"]]
    print(json.dumps(short, indent=1))


if __name__ == "__main__":
    main()
