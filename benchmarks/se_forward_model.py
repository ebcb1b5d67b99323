"""Which fast SE model makes forward consistency rank an in-lens run's two rounds as their MDS does (docs/
reconstruct.md, "se16")? For each finished two-round `fibsynth reconstruct` run of an in-lens silicon stack with
open pores (benchmarks/se_silicon_stack.py), each round's segmentation (its combined P(solid) > 0.5, from the step
cache) and the true structure are imaged again by the SE projection alone (the label-free checks' model before se16),
the paired SE translator, and the translator with the segmentation mirrored 80 nm behind its last slice (since se16);
prints each one's Pearson r with the stack (truth, round 1, round 2 on the central crop) and the octants' paired
difference round 2 - round 1 (mean +- s.e.), next to the rounds' MDS on the crop.
Usage: python benchmarks/se_forward_model.py STACK_DIR RUN_DIR [RUN_DIR ...]
  (STACK_DIR holds si_SEED_stack.tif / si_SEED_truth.tif; a RUN_DIR's name contains _SEED_; ~1 min per run)"""
import glob
import json
import os
import re
import sys

import numpy as np
import tifffile

from fibsynth.reconstruct import estimate as E
from fibsynth.reconstruct.generate import image_structure

VZ, MAT = (5.0, 5.0, 5.0), ("silicon", "vacuum")


def mds(a, b):
    a, b = a.astype(bool), b.astype(bool)
    return ((2 * (a & b).sum() / (a.sum() + b.sum())) + (2 * (~a & ~b).sum() / ((~a).sum() + (~b).sum()))) / 2


def octants(seg, real, model):
    if model == "paired_behind":
        return E.forward_consistency_octants(seg, real, VZ, 2.0, MAT, detector="inlens", translation="paired")
    s, r = E._crop(seg.astype(np.uint8)), E._crop(real.astype(np.float32))
    img, _ = image_structure(s, VZ, 2.0, materials=MAT, detector="inlens",
                             translation="projection" if model == "projection" else "paired")
    return E.correlation_octants(r, img, 1.0)


stacks = sys.argv[1]
for d in sys.argv[2:]:
    s = json.load(open(os.path.join(d, "summary.json")))
    seed = re.search(r"_(\d{3,})_", os.path.basename(os.path.normpath(d))).group(1)
    sl = tuple(slice(a, a + b) for a, b in zip(s["region"]["offset_zyx"], s["region"]["shape_zyx"]))
    real = tifffile.imread(f"{stacks}/si_{seed}_stack.tif").astype(np.float32)[sl]
    truth = tifffile.imread(f"{stacks}/si_{seed}_truth.tif")[sl]
    segs = [(np.load(glob.glob(f"{d}/work/cache/{x['key']}*/probability.npy")[0]) > 0.5).astype(np.uint8)
            for x in s["steps"] if x["step"] == "combine"]
    out = {"run": d, "kept": s["round_choice"]["chosen_round"],
           "mds_crop": [round(mds(E._crop(x), E._crop(truth)), 4) for x in segs]}
    for m in ("projection", "paired", "paired_behind"):
        res = [octants(x, real, m) for x in segs + [truth]]
        out[m] = {"r round 1, round 2, truth": [round(x["r"], 4) for x in res]}
        if len(segs) == 2:
            dlt = np.array(res[1]["octants"]) - np.array(res[0]["octants"])
            out[m]["octants 2 - 1"] = f"{dlt.mean():+.4f} +- {dlt.std(ddof=1) / np.sqrt(len(dlt)):.4f}"
    print(json.dumps(out), flush=True)
