"""The layered projection (method="layered"): exact on flat films, a numpy reference on a random structure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from fibsynth.errors import FibsynthError
from fibsynth.fastsim.network import load_model
from fibsynth.fastsim.projection import depth_weights, project, ray_cells


@pytest.fixture(scope="module")
def net():
    return load_model()


@pytest.mark.parametrize("angle", [0.0, 38.0])
def test_flat_film_gives_the_calibration_curve_like_the_window_model(net, angle):
    s = np.zeros((24, 8, 8), np.uint8)
    s[10:] = 1
    a, _ = project(s, (5.0, 5.0, 5.0), 2.0, incidence_deg=angle, model=net, normalise="eta")
    b, rec = project(s, (5.0, 5.0, 5.0), 2.0, incidence_deg=angle, model=net, normalise="eta", method="layered")
    assert rec["method"] == "layered"
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_layered_matches_a_numpy_reference_and_sees_gold_behind_gold(net):
    rng = np.random.default_rng(0)
    s = (rng.random((30, 12, 10)) < 0.3).astype(np.uint8)
    dz = 5.0
    img, rec = project(s, (dz, dz, dz), 2.0, model=net, slices=(0, 3), method="layered", spread=0.5)
    cells = np.asarray(rec["cells"])
    w = np.asarray(rec["weights"])  # group-normalised: pore 0
    for k in range(3):
        t = np.ones(s.shape[1:])
        ref = np.zeros(s.shape[1:])
        for (j, i, d), wc in zip(cells, w):
            j, i = int(j), int(i)
            if k + j >= s.shape[0]:
                break
            lay = np.roll(s[k + j].astype(float), -i, axis=0)
            r = int(np.rint(0.5 * d / dz))
            f = uniform_filter(lay, 2 * r + 1, mode="wrap") if r else lay
            ref += wc * f * t
            t *= 1 - f
        # the kernel stops where less than 1e-3 of the beam is left: its remainder is below that
        np.testing.assert_allclose(img[k], ref, atol=2e-3)
    # two gold layers add up: a buried layer behind a partial one brightens the image
    two = np.zeros((20, 8, 8), np.uint8)
    two[2, :, ::2] = 1  # half-covered layer at 10 nm
    one = two.copy()
    two[5:] = 1  # plus a full layer at 25 nm
    i1, _ = project(one, (5.0, 5.0, 5.0), 2.0, model=net, incidence_deg=0.0, method="layered")
    i2, _ = project(two, (5.0, 5.0, 5.0), 2.0, model=net, incidence_deg=0.0, method="layered")
    assert i2[0].mean() > i1[0].mean() + 0.05


def test_unknown_method_is_a_one_line_error(net):
    with pytest.raises(FibsynthError) as ei:
        project(np.zeros((4, 4, 4), np.uint8), (5, 5, 5), 2.0, model=net, method="blur")
    assert ei.value.param == "method"
