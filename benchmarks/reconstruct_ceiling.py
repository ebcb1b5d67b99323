"""Own-truth ceiling of ``fibsynth reconstruct``'s U-Net on a realistic test stack (issue 14).

The question: does the network that ``reconstruct`` trains (its exact settings: ``workflow.synth_plan`` /
``_seg_settings`` for the default ``ReconstructSettings``) reach MDS 0.95 on a test stack at all, when it is trained
on the **test stack's own images and ground truth** (no synthetic data, no adaptation, no structure estimate)? If
it does not, 0.95 is out of reach of the workflow on that stack whatever its training data, and the gap between
``reconstruct`` and this ceiling is what better training data could still gain.

Split along the milling direction (slices, z; the default of recon8's ``own_truth.py``): train on slices 1-47,
validate (model selection, as reconstruct validates on held-out synthetic stacks) on 48-63, score on 64-127 --
the whole stack is segmented and only the test slices are scored, so the network sees its usual neighbour slices.
The same slices are scored for Otsu (threshold of the whole stack, as ``reconstruct`` writes it, and of the test
slices alone) and, with ``--score-runs``, for every U-Net a ``bench_reconstruct.py`` run left in its step cache
(``*/predict*/probability.npy``), so reconstruct and ceiling are compared on identical voxels.

    python benchmarks/reconstruct_ceiling.py --kinds grf hier --seeds 0 1 --artifact-dose 400 \\
        --stack-cache /tmp/recon12/cache --out /tmp/recon12/ceiling --threads 1
    # a larger training budget / the wider network, to see whether the network or the data limits it
    python benchmarks/reconstruct_ceiling.py ... --steps 2400
    python benchmarks/reconstruct_ceiling.py ... --features 32 64 128
    # more 2.5D context; every network also scored with reconstruct's test-time augmentation (8 in-plane symmetries)
    python benchmarks/reconstruct_ceiling.py ... --k 4 --tta 8

The test stacks are those of ``bench_reconstruct.py`` (same names in ``--stack-cache``, made there if absent).
Caveat of the split: the test stacks drift in brightness over the slices (``realistic_stack.degrade``), so the
test slices are darker than the training ones; the network's intensity jitter and the normalisation must bridge
that, as they must bridge synthetic -> real in ``reconstruct``. ``--split interleaved`` trains and validates on
alternate 16-slice blocks over the whole stack (3-slice guard bands left out of every part) instead. ``--split
blocks`` has parts thick enough for the 3D U-Net's patches (train / test / train / val, 32-slice training and
validation parts, 4-slice gaps; each test part is predicted from itself and its gaps only: ``split_slices``):

    python benchmarks/reconstruct_ceiling.py ... --split blocks [--mode 3d --patch 32 --batch 4]

With two or more ``--seeds`` the ensemble of the seeds' networks (their mean probability) is scored as well.
``benchmarks/ceiling_errors.py`` says where a ceiling network's wrong voxels lie.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

GUARD = 3  # slices left out between interleaved parts (2.5D context k = 2, plus one)
BLOCK_THICK = 32  # blocks split: slices of each training part and of the validation part (>= a 3D patch's depth)
BLOCK_GAP = 4  # blocks split: unlabelled, untrained slices between parts (>= the 2.5D context k = 2, plus two)


def split_slices(nz: int, split: str, *, thick: int = BLOCK_THICK, gap: int = BLOCK_GAP) -> dict[str, list[tuple[int, int]]]:
    """Slab ranges [a, b) of the train, validation and test parts (``blocks``: also ``test_input``, the slices a
    test part is predicted from).

    ``blocks`` (for the 3D U-Net, whose training and validation patches need parts at least a patch deep): train,
    test, train, val in that order along z, the two training parts and the validation part ``thick`` slices each,
    the test part what is left (20 slices of 128 at the defaults), ``gap`` slices between neighbouring parts. The
    training parts lie on both sides of the test part, so the network is trained across the stack's brightness drift
    rather than extrapolating it (the contiguous split's confound). No leakage: every part is its own volume in
    training (no patch and no 2.5D context crosses a part's edge), and a test part is predicted from itself plus the
    ``gap`` slices on either side (``test_input``), which are neither trained on nor scored, so no image or label a
    network was trained or selected on enters a test prediction, whatever its receptive field; the nearest labelled
    slice is ``gap + 1`` slices from a test slice."""
    if split == "blocks":
        n_test = nz - 3 * thick - 3 * gap
        if thick < 4 or gap < 0 or n_test < 4:
            raise ValueError(f"blocks split: {nz} slices cannot hold 3 parts of {thick} slices, a test part of >= 4 "
                             f"and 3 gaps of {gap} (give a smaller thick or gap)")
        t0 = thick + gap
        t1 = t0 + n_test
        return {"train": [(0, thick), (t1 + gap, t1 + gap + thick)], "test": [(t0, t1)],
                "val": [(nz - thick, nz)], "test_input": [(t0 - gap, t1 + gap)]}
    if split == "contiguous":  # recon8's own_truth.py on 128 slices: 1-47 / 48-63 / 64-127
        a = max(1, nz // 128)
        return {"train": [(a, (3 * nz) // 8)], "val": [((3 * nz) // 8, nz // 2)], "test": [(nz // 2, nz)]}
    parts: dict[str, list[tuple[int, int]]] = {"train": [], "val": [], "test": []}
    cycle = ("train", "test", "train", "val")
    for i, z0 in enumerate(range(0, nz, 16)):
        z1 = min(nz, z0 + 16)
        lo, hi = z0 + (GUARD if z0 else 0), z1 - (GUARD if z1 < nz else 0)
        if hi - lo >= 4:
            parts[cycle[i % 4]].append((lo, hi))
    return parts


def take(a: np.ndarray, ranges) -> np.ndarray:
    return np.concatenate([a[lo:hi] for lo, hi in ranges])


def settings(seed: int, steps: int | None, features, shape, k: int | None = None, mode: str | None = None,
             patch: int | None = None, batch: int | None = None):
    """reconstruct's training settings (``synth_plan`` for the default ``ReconstructSettings``), with the options
    given changed: ``mode`` is reconstruct's ``--mode`` (its 3D patch is 48 slices deep, more than a part of 128
    slices can hold beside a test and a validation part, so a 3D run gives ``patch``), ``patch`` the cubic (3D) or
    square patch (stride half of it), ``batch`` reconstruct's ``seg_batch`` (patches per optimizer step)."""
    from fibsynth.reconstruct import ReconstructSettings
    from fibsynth.reconstruct.workflow import synth_plan

    kw = {"seed": seed, **({"seg_steps": steps} if steps else {}), **({"seg_features": tuple(features)} if features else {}),
          **({"mode": mode} if mode else {}), **({"seg_batch": batch} if batch else {})}
    s = ReconstructSettings(**kw)
    _, _, _, ts, plan = synth_plan(s, tuple(shape))
    up = {"accelerator": "cpu", "devices": "auto", **({"k": k} if k is not None else {})}
    if patch:
        up.update(patch=int(patch), stride=int(patch) // 2)
        plan = {**plan, "patch": int(patch)}
    return ts.model_copy(update=up).check(), plan


def mds(pred: np.ndarray, truth: np.ndarray) -> float:
    from fibsynth.metrics import evaluate_segmentation

    return float(evaluate_segmentation(pred.astype(np.uint8), truth)["MDS"])


def variant_tag(steps: int | None, features, k: int | None, mode: str | None = None, patch: int | None = None,
                batch: int | None = None) -> str:
    return ((f"_steps{steps}" if steps else "") + ("_f" + "-".join(map(str, features)) if features else "")
            + (f"_k{k}" if k is not None else "") + (f"_{mode}" if mode and mode != "2.5d" else "")
            + (f"_p{patch}" if patch else "") + (f"_b{batch}" if batch else ""))


def predict_test(model, img: np.ndarray, parts, tta: int = 1) -> np.ndarray:
    """P(solid) of the test slices (the test parts in order). With a ``test_input`` (blocks split) each test part is
    predicted from those slices alone, as their own volume (no training or validation slice in any network's input);
    otherwise from the whole stack (the test slices' 2.5D context then stays inside the guard bands)."""
    from fibsynth.segment.infer import predict_array

    out = []
    for i, (a, b) in enumerate(parts["test"]):
        if "test_input" in parts:
            ia, ib = parts["test_input"][i]
            p = predict_array(model, img[ia:ib], probabilities=True, batch=4, tta=tta)[a - ia: b - ia]
        else:
            p = predict_array(model, img, probabilities=True, batch=4, z_range=(a, b), tta=tta)
        out.append(p)
    return np.concatenate(out)


def test_probability(d: Path, parts, tta: int = 1) -> np.ndarray:
    """A stored network's P(solid) on the test slices (``tta``: the file the TTA score wrote)."""
    if tta > 1:
        return np.load(d / f"probability_test_tta{tta}.npy")
    if (d / "probability_test.npy").is_file():
        return np.load(d / "probability_test.npy")
    return take(np.load(d / "probability.npy"), parts["test"])


def tta_score(d: Path, img: np.ndarray, truth: np.ndarray, parts, tta: int) -> dict:
    """The stored model's test MDS with its output averaged over ``tta`` in-plane symmetries (the test slices only
    are predicted, with the whole stack as their context), and the CPU seconds that took."""
    from fibsynth.segment.model import load_model

    model = load_model(str(d / "model"), "cpu")
    c0 = time.process_time()
    prob = predict_test(model, img, parts, tta)
    c = time.process_time() - c0
    np.save(d / f"probability_test_tta{tta}.npy", prob)
    return {f"MDS test tta{tta}": mds(prob > 0.5, take(truth, parts["test"])), f"tta{tta} cpu s": round(c, 1)}


def ceiling(kind: str, seed: int, out: Path, *, stack: Path, truth_path: Path, steps: int | None, features,
            split: str, k: int | None = None, tta: int = 1, mode: str | None = None, patch: int | None = None,
            batch: int | None = None) -> dict:
    import tifffile

    from fibsynth.segment.infer import predict_array
    from fibsynth.segment.model import load_model
    from fibsynth.segment.train import fit
    from fibsynth.reconstruct.adapt import quiet_lightning

    img = tifffile.imread(stack).astype(np.float32)
    truth = tifffile.imread(truth_path).astype(np.uint8)
    parts = split_slices(img.shape[0], split)
    ts, plan = settings(seed, steps, features, img.shape, k, mode, patch, batch)
    tag = f"{kind}_seed{seed}_{split}" + variant_tag(steps, features, k, mode, patch, batch)
    d = out / tag
    rec_file = d / "result.json"
    if rec_file.is_file():
        res = json.loads(rec_file.read_text())
        if tta > 1 and f"MDS test tta{tta}" not in res:
            res.update(tta_score(d, img, truth, parts, tta))
            rec_file.write_text(json.dumps(res, indent=1))
        return res
    if d.exists():
        import shutil

        shutil.rmtree(d)
    t0, c0 = time.perf_counter(), time.process_time()
    # each part as its own volume: the 2.5D context never crosses from one part into another
    tr = [(img[a:b], truth[a:b]) for a, b in parts["train"]]
    va = [(img[a:b], truth[a:b]) for a, b in parts["val"]]
    with quiet_lightning():
        rec = fit([x for x, _ in tr], [y for _, y in tr], d / "model", ts, val_images=[x for x, _ in va],
                  val_labels=[y for _, y in va], verbose=False)
    t_train, c_train = time.perf_counter() - t0, time.process_time() - c0
    model = load_model(str(d / "model"), "cpu")
    c1 = time.process_time()
    if split == "blocks":  # the test parts from their own slices only (split_slices)
        test_prob = predict_test(model, img, parts)
        np.save(d / "probability_test.npy", test_prob)
    else:
        prob = predict_array(model, img, probabilities=True, batch=4)
        np.save(d / "probability.npy", prob)
        test_prob = take(prob, parts["test"])
    c_pred = time.process_time() - c1
    test_pred, test_truth = test_prob > 0.5, take(truth, parts["test"])
    res = {"kind": kind, "seed": seed, "split": split, "parts": parts, "steps": plan["optimizer_steps"],
           "mode": ts.mode, "patch": ts.patch, "batch": ts.batch,
           "features": list(ts.features), "train_settings": ts.model_dump(mode="json"),
           "MDS test": mds(test_pred, test_truth), "best_val_mds": rec.get("best_val_mds"),
           "epochs_run": rec.get("epochs_run"), "steps_run": rec.get("steps_run"),
           "stopped_early": rec.get("stopped_early"), "best_epoch": rec.get("best_epoch"),
           "solid fraction test (truth)": float(test_truth.mean()), "solid fraction test (U-Net)": float(test_pred.mean()),
           "train wall s": round(t_train, 1), "train cpu s": round(c_train, 1), "predict cpu s": round(c_pred, 1),
           "history": [{k: r.get(k) for k in ("epoch", "val_loss", "val_mds")} for r in rec.get("history", [])],
           "load_average": os.getloadavg()}
    if tta > 1:
        res.update(tta_score(d, img, truth, parts, tta))
    rec_file.write_text(json.dumps(res, indent=1))
    return res


def baselines(stack: Path, truth_path: Path, split: str) -> dict:
    import tifffile

    from fibsynth.segment.baseline import kmeans_threshold, otsu_threshold

    img = tifffile.imread(stack).astype(np.float32)
    truth = tifffile.imread(truth_path).astype(np.uint8)
    parts = split_slices(img.shape[0], split)
    ti, tt = take(img, parts["test"]), take(truth, parts["test"])
    return {"Otsu (whole-stack threshold) test": mds(ti > otsu_threshold(img), tt),
            "Otsu (test-slice threshold) test": mds(ti > otsu_threshold(ti), tt),
            "k-means (whole-stack threshold) test": mds(ti > kmeans_threshold(img)[0], tt),
            "solid fraction test (truth)": float(tt.mean())}


def score_runs(dirs: list[Path], truth_path: Path, split: str) -> list[dict]:
    """Every U-Net prediction a reconstruct run left in its step cache, scored on the test slices (and whole)."""
    import tifffile

    truth = tifffile.imread(truth_path).astype(np.uint8)
    parts = split_slices(truth.shape[0], split)
    tt = take(truth, parts["test"])
    rows = []
    for d in dirs:
        for p in sorted(Path(d).rglob("probability.npy")):
            prob = np.load(p, mmap_mode="r")
            if prob.shape != truth.shape:
                continue
            rec_json = p.parent / "record.json"
            rows.append({"prediction": str(p), "MDS test": mds(take(np.asarray(prob), parts["test"]) > 0.5, tt),
                         "MDS whole": mds(np.asarray(prob) > 0.5, truth),
                         **({"inputs": json.loads(rec_json.read_text()).get("inputs")} if rec_json.is_file() else {})})
    return rows


def main(argv=None) -> None:
    import bench_reconstruct as B

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kinds", nargs="+", default=["grf", "hier"], choices=["grf", "hier", "sofc"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (reconstruct's --seed)")
    ap.add_argument("--shape", type=int, nargs=3, default=(128, 192, 192))
    ap.add_argument("--imaging", default="mc", choices=["fast", "mc"])
    ap.add_argument("--electrons-per-pixel", type=int, default=10)
    ap.add_argument("--stack-seed", type=int, default=0, help="test stack seed (bench_reconstruct.py --seed)")
    ap.add_argument("--artifact-dose", type=float, default=400.0)
    ap.add_argument("--stack-cache", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps (default: reconstruct's, 600)")
    ap.add_argument("--features", type=int, nargs="+", default=None, help="U-Net widths (default: reconstruct's)")
    ap.add_argument("--k", type=int, default=None, help="2.5D context: k slices either side (default: reconstruct's, 2)")
    ap.add_argument("--tta", type=int, default=1, help="also score each network with its output averaged over this "
                    "many in-plane symmetries (reconstruct's --tta; 1 = not)")
    ap.add_argument("--mode", default=None, choices=["2.5d", "3d"], help="the network (reconstruct's --mode; "
                    "default 2.5d)")
    ap.add_argument("--patch", type=int, default=None, help="patch side (3D: cube; default: reconstruct's)")
    ap.add_argument("--batch", type=int, default=None, help="patches per optimizer step (default: reconstruct's, 16)")
    ap.add_argument("--split", default="contiguous", choices=["contiguous", "interleaved", "blocks"],
                    help=f"blocks: train / test / train / val along z, {BLOCK_THICK}-slice training and validation "
                    f"parts, {BLOCK_GAP}-slice gaps, each test part predicted from itself and its gaps only")
    ap.add_argument("--score-runs", type=Path, nargs="*", default=[], help="bench_reconstruct.py output folders "
                    "whose U-Net predictions (step cache) are scored on the same test slices")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in a.kinds:
        stack, truth, _, _ = B.test_stack(kind, a.shape, a.out, imaging=a.imaging, epp=a.electrons_per_pixel,
                                          seed=a.stack_seed, voxel_nm=4.0, slice_nm=8.0, cache=a.stack_cache,
                                          artifact_dose=a.artifact_dose)
        base = baselines(stack, truth, a.split)
        print(json.dumps({"kind": kind, **base}), flush=True)
        for seed in a.seeds:
            r = ceiling(kind, seed, a.out, stack=stack, truth_path=truth, steps=a.steps, features=a.features,
                        split=a.split, k=a.k, tta=a.tta, mode=a.mode, patch=a.patch, batch=a.batch)
            r.update(base)
            print(json.dumps({k: v for k, v in r.items() if k not in ("history", "train_settings", "parts")}), flush=True)
            rows.append({k: v for k, v in r.items() if k != "history"})
        if len(a.seeds) > 1:  # the mean of the seeds' probabilities (an ensemble of the networks), test slices
            import tifffile

            tr_ = tifffile.imread(truth).astype(np.uint8)
            parts = split_slices(tr_.shape[0], a.split)
            tag = variant_tag(a.steps, a.features, a.k, a.mode, a.patch, a.batch)
            tags = [a.out / (f"{kind}_seed{sd}_{a.split}" + tag) for sd in a.seeds]
            ens = {"kind": kind, "ensemble of seeds": a.seeds, "MDS test": mds(
                np.mean([test_probability(t, parts) for t in tags], 0) > 0.5, take(tr_, parts["test"]))}
            if a.tta > 1:
                ens[f"MDS test tta{a.tta}"] = mds(np.mean([test_probability(t, parts, a.tta) for t in tags], 0) > 0.5,
                                                  take(tr_, parts["test"]))
            print(json.dumps(ens), flush=True)
            rows.append(ens)
        runs = [d for d in a.score_runs if (d / f"{kind}_work").is_dir()]
        if runs:
            sr = score_runs([d / f"{kind}_work" for d in runs], truth, a.split)
            print(json.dumps({"kind": kind, "reconstruct U-Nets": sr}, indent=1), flush=True)
            rows.append({"kind": kind, "reconstruct U-Nets": sr})
    name = "results" + variant_tag(a.steps, a.features, a.k, a.mode, a.patch, a.batch) + f"_{a.split}.json"
    (a.out / name).write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
