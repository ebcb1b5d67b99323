"""The label-free forward consistency for SE images of open pores (se16): the paired SE translator, the model the
training images came from, with the segmentation mirrored behind its last slice -- not the SE projection alone, which
on the in-lens silicon test stacks scored the true structure below the reconstructions (docs/reconstruct.md)."""
import numpy as np
import pytest
from scipy import ndimage

from fibsynth.errors import FibsynthError
from fibsynth.reconstruct import estimate as E
from fibsynth.reconstruct import generate as G

VZ = (5.0, 5.0, 5.0)
MAT = ("silicon", "vacuum")


def _stack():
    # a "real" stack: the translator's image of a structure with sample behind its last slice, plus noise
    p = {"kind": "leveled_wave", "solid_fraction": 0.4, "ligament_nm": 40.0, "seed": 5}
    n, behind = 12, G.behind_slices("inlens", VZ)
    solid = G.make_structure(p, (n + behind, 48, 48), VZ)
    img, _ = G.image_structure(solid, VZ, 2.0, materials=MAT, detector="inlens", translation="paired")
    rng = np.random.default_rng(0)
    real = img[:n] + rng.normal(0, 0.03 * float(np.ptp(img)), img[:n].shape)
    return solid[:n].astype(np.uint8), real.astype(np.float32)


def test_paired_forward_model_ranks_the_truth_above_moved_boundaries():
    truth, real = _stack()
    st = ndimage.generate_binary_structure(3, 1)
    st[0] = st[2] = False  # in-plane only
    grown = ndimage.binary_dilation(truth, st).astype(np.uint8)
    shrunk = ndimage.binary_erosion(truth, st).astype(np.uint8)
    fc = {k: E.forward_consistency(v, real, VZ, 2.0, MAT, detector="inlens", translation="paired")
          for k, v in {"truth": truth, "grown": grown, "shrunk": shrunk}.items()}
    assert fc["truth"] > fc["grown"] and fc["truth"] > fc["shrunk"], fc
    # the model the image came from describes it better than the SE projection alone does
    proj = E.forward_consistency(truth, real, VZ, 2.0, MAT, detector="inlens", translation="projection")
    assert fc["truth"] > proj + 0.05, (fc, proj)


def test_the_last_slices_are_imaged_with_sample_behind(monkeypatch):
    # the real stack's last slices have sample behind them; the segmentation mirrored behind its last slice stands in
    # for it. Imaged alone (nothing behind), the last slices look into empty pores and the truth scores lower
    # (measured here: 0.858 with the mirrored slices, 0.822 without)
    truth, real = _stack()
    with_behind = E.forward_consistency(truth, real, VZ, 2.0, MAT, detector="inlens", translation="paired")
    monkeypatch.setattr(G, "behind_slices", lambda detector, voxel_zyx: 0)
    alone = E.forward_consistency(truth, real, VZ, 2.0, MAT, detector="inlens", translation="paired")
    assert with_behind > alone + 0.015, (with_behind, alone)
    with pytest.raises(FibsynthError, match="translation"):
        E.forward_consistency(truth, real, VZ, 2.0, MAT, detector="inlens", translation="cyclegan")
