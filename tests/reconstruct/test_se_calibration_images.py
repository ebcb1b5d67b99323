"""The estimate's calibration images for SE images of open pores (se16): sample behind the last slice, the measured
noise alone (backscatter's are unchanged: its estimate keys and images were checked bit for bit, docs/reconstruct.md)."""
import numpy as np

from fibsynth.reconstruct import estimate as E
from fibsynth.reconstruct import generate as G

VZ = (5.0, 5.0, 5.0)


def test_se_calibration_images_have_sample_behind_and_only_the_measured_noise():
    # in-lens silicon with open pores at 2 keV (the paired SE translator). A real stack's last slice has sample
    # behind it; imaged alone, a simulated stack's last slices look into empty pores (dark), which the first pass
    # reads as pore (before se16 the last slice read ~0.2 of the other slices' solid fraction)
    p = {"kind": "leveled_wave", "solid_fraction": 0.4, "ligament_nm": 40.0, "seed": 11}
    shape = (8, 40, 40)
    reads = []
    for r in range(3):  # one structure and image, three augmentation draws
        lbl, img = G.calibration_image(p, shape, VZ, 2.0, materials=("silicon", "vacuum"), translation="auto",
                                       detector="inlens", seed=0, rng=np.random.default_rng((0, 99, r)),
                                       noise_relative=0.1)
        assert img.shape == shape and lbl.shape == shape
        fp = E.first_pass(img, classes=2)["otsu"]
        per_slice = fp.mean(axis=(1, 2))
        assert per_slice[-1] > 0.7 * per_slice[:4].mean(), per_slice
        reads.append(float(fp.mean()))
    # the measured noise alone: the 2-class first pass of an SE image of open pores sits on the pores' broad gray
    # distribution, and randomly drawn artifacts (response curve, shading, gain) moved it by 0.1-0.4 per draw
    assert max(reads) - min(reads) < 0.05, reads
    assert G.behind_slices("bse", VZ) == 0 and G.behind_slices("inlens", VZ) == int(np.ceil(G.SE_BEHIND_NM / 5.0))


def test_image_structure_images_the_front_slices_alone_the_same_as_in_the_whole():
    # the calibration and the SE forward model image only the front slices of a structure drawn deeper (session 17:
    # the slices behind were imaged and dropped); each imaged slice must be the whole image's, bit for bit
    import pytest

    from fibsynth.errors import FibsynthError

    p = {"kind": "leveled_wave", "solid_fraction": 0.4, "ligament_nm": 40.0, "seed": 2}
    solid = G.make_structure(p, (14, 32, 32), VZ)
    for tr in ("paired", "projection"):
        whole, _ = G.image_structure(solid, VZ, 2.0, materials=("silicon", "vacuum"), detector="inlens", translation=tr)
        front, _ = G.image_structure(solid, VZ, 2.0, materials=("silicon", "vacuum"), detector="inlens", translation=tr,
                                     slices=(0, 6))
        assert front.shape == (6, 32, 32) and np.array_equal(front, whole[:6]), tr
    for kw in ({"detector": "bse", "materials": ("gold", "epoxy")}, {"detector": "inlens", "engine": "mc",
                                                                      "materials": ("silicon", "vacuum")}):
        with pytest.raises(FibsynthError) as e:
            G.image_structure(solid, VZ, 2.0, slices=(0, 6), **kw)
        assert e.value.param == "slices"
    with pytest.raises(FibsynthError) as e:
        G.image_structure(solid, VZ, 2.0, materials=("silicon", "vacuum"), detector="inlens", slices=(4, 20))
    assert e.value.param == "slices"
