"""Tiled inference: equals a single pass where the image fits one tile; seam-free blending on larger images;
why the generator has no per-tile (instance) normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.gan.infer import Translator, _ramp, plan

from gan_helpers import random_model


def _direct(tr, img):
    import torch

    with torch.inference_mode():
        return tr.gen(torch.from_numpy(img[None, None])).numpy()[0, 0]


@pytest.mark.parametrize("norm", ["none", "batch", "instance"])
def test_one_tile_equals_single_pass(tmp_path, norm):
    d = random_model(tmp_path / "m", norm=norm)
    rng = np.random.default_rng(1)
    img = rng.uniform(-1, 1, (48, 60)).astype(np.float32)  # multiples of 2^depth = 4
    tr = Translator(d, tile=64, overlap=16)
    out = tr.translate_unit(img[None])[0]
    np.testing.assert_array_equal(out, _direct(tr, img))
    # a non-multiple size is padded by reflection and cropped back
    odd = img[:45, :59]
    assert tr.translate_unit(odd[None])[0].shape == (45, 59)


def test_hann_ramps_are_a_partition_of_unity():
    for ov in (4, 16, 32):
        r = _ramp(64, ov, True, True)
        assert np.allclose(r[-ov:] + _ramp(64, ov, True, True)[:ov], 1.0)
        assert np.all(np.diff(r[:ov]) > 0) and r[0] > 0


def test_plan_origins_on_the_downsampling_grid():
    t, ov, step, ph, pw = plan((200, 264), 64, 16, 4)
    assert (t, ov, step) == (64, 16, 48)
    assert (ph - t) % step == 0 and (pw - t) % step == 0 and ph >= 200 and pw >= 264 and step % 4 == 0
    with pytest.raises(FibsynthError, match="tile"):  # library errors name the parameter (was --tile)
        plan((10, 10), 30, 0, 4)
    with pytest.raises(FibsynthError, match="overlap"):  # (was --overlap)
        plan((10, 10), 64, 64, 4)


def test_constant_image_gives_constant_output_in_tiles(tmp_path):
    d = random_model(tmp_path / "m")
    img = np.full((1, 150, 170), 0.3, np.float32)
    out = Translator(d, tile=32, overlap=8).translate_unit(img)[0]
    assert np.ptp(out) < 1e-5, "brightness jumps between tiles of a constant image"


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_tiled_matches_single_pass_without_seams(tmp_path, smooth_image, norm):
    d = random_model(tmp_path / "m", norm=norm)
    full = Translator(d, tile=512, overlap=0).translate_unit(smooth_image[None])[0]  # fits: one pass
    hard = Translator(d, tile=64, overlap=0).translate_unit(smooth_image[None])[0]  # abutting tiles, no blending
    soft = Translator(d, tile=64, overlap=32).translate_unit(smooth_image[None])[0]
    s = full.std()
    assert s > 0.02  # the random generator is a non-trivial function of the image
    inner = (slice(16, -16), slice(16, -16))  # the global image border is padded differently in the two passes
    err_soft = np.abs(soft - full)[inner]
    err_hard = np.abs(hard - full)[inner]
    assert err_soft.max() < 0.15 * s and err_soft.mean() < 0.01 * s
    assert err_soft.max() < 0.25 * err_hard.max()  # the blending, not luck, removes the tile-border errors
    # no jump at the tile borders (x = 48 k with step 48): the step across a border is the single pass's step
    dx_soft, dx_full = np.diff(soft, axis=1), np.diff(full, axis=1)
    cols = [48 * k - 1 for k in range(1, 5)] + [48 * k + 15 for k in range(1, 5)]
    assert np.abs(dx_soft[16:-16, cols] - dx_full[16:-16, cols]).max() < 0.05 * s


def test_instance_norm_tiles_disagree(tmp_path, smooth_image):
    """The reason for the default: per-tile instance statistics shift each tile's brightness."""
    d = random_model(tmp_path / "m", norm="instance")
    full = Translator(d, tile=512, overlap=0).translate_unit(smooth_image[None])[0]
    soft = Translator(d, tile=64, overlap=32).translate_unit(smooth_image[None])[0]
    assert np.abs(soft - full).mean() > 0.3 * full.std()


def test_stack_and_dtype_roundtrip(tmp_path):
    from fibsynth.gan.model import Intensity, from_unit, to_unit

    dom = Intensity(lo=[100.0], hi=[60000.0], dtype="uint16")
    x = np.array([[0, 100, 30050, 60000, 65535]], np.uint16)
    u = to_unit(x, dom)
    assert u.min() == -1 and u.max() == 1 and abs(u[0, 2]) < 1e-6
    back = from_unit(u, dom)
    assert back.dtype == np.uint16 and back.tolist() == [[100, 100, 30050, 60000, 60000]]
    assert from_unit(np.array([2.0]), dom, dtype="uint8").tolist() == [255]
    d = random_model(tmp_path / "m")
    stack = np.random.default_rng(0).uniform(-1, 1, (3, 40, 40)).astype(np.float32)
    out = Translator(d, tile=32, overlap=8)(stack)[0]
    assert out.shape == stack.shape and out.dtype == np.float32
