"""Array-level pieces: 2.5D neighbours at the stack ends, patches, augmentation, slabs, windows."""

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.segment import data as D
from fibsynth.segment.infer import gaussian_weight


def test_neighbour_indices_at_stack_ends():
    np.testing.assert_array_equal(D.neighbour_indices(0, 10, 2, "replicate"), [0, 0, 0, 1, 2])
    np.testing.assert_array_equal(D.neighbour_indices(9, 10, 2, "replicate"), [7, 8, 9, 9, 9])
    np.testing.assert_array_equal(D.neighbour_indices(0, 10, 2, "reflect"), [2, 1, 0, 1, 2])
    np.testing.assert_array_equal(D.neighbour_indices(9, 10, 2, "reflect"), [7, 8, 9, 8, 7])
    np.testing.assert_array_equal(D.neighbour_indices(5, 10, 2, "reflect"), [3, 4, 5, 6, 7])
    np.testing.assert_array_equal(D.neighbour_indices(1, 1, 2), [0] * 5)
    np.testing.assert_array_equal(D.neighbour_indices(0, 2, 3, "reflect"), [1, 0, 1, 0, 1, 0, 1])
    with pytest.raises(FibsynthError):
        D.neighbour_indices(0, 5, 1, "wrap")


def test_stack_25d_takes_the_right_slices_from_a_block():
    nz = 7
    vol = np.broadcast_to(np.arange(nz, dtype=np.float32)[:, None, None], (nz, 3, 4))
    two = np.stack([vol, 100 + vol])  # two energies
    # a block holding global slices 4..6 answers for output slices 5, 6 with k = 1
    x = D.stack_25d(two[:, 4:7], [5, 6], 4, nz, 1, "replicate")
    assert x.shape == (2, 6, 3, 4)
    np.testing.assert_array_equal(x[:, :, 0, 0], [[4, 5, 6, 104, 105, 106], [5, 6, 6, 105, 106, 106]])
    x = D.stack_25d(two, [0], 0, nz, 2, "reflect")
    np.testing.assert_array_equal(x[0, :, 1, 1], [2, 1, 0, 1, 2, 102, 101, 100, 101, 102])
    with pytest.raises(ValueError):
        D.stack_25d(two[:, 4:7], [4], 4, nz, 1)  # needs slice 3, not in the block


def test_training_patch_25d_uses_neighbours_and_label_of_its_slice():
    nz = 5
    img = np.broadcast_to(np.arange(nz, dtype=np.float32)[None, :, None, None], (1, nz, 8, 8)).copy()
    lbl = np.zeros((nz, 8, 8), np.uint8)
    lbl[4] = 1
    rows = D.patch_index([lbl.shape], "2.5d", 8, 4)
    assert len(rows) == nz
    x, y = D.extract_patch(img, lbl, rows[4], "2.5d", 8, 2, "replicate")
    np.testing.assert_array_equal(x[:, 0, 0], [2, 3, 4, 4, 4])
    assert y.all()
    x, _ = D.extract_patch(img, lbl, rows[0], "2.5d", 8, 2, "reflect")
    np.testing.assert_array_equal(x[:, 0, 0], [2, 1, 0, 1, 2])


def test_patch_index_windows_and_errors():
    assert D.window_starts(100, 64, 32) == [0, 32, 36]
    assert D.window_starts(64, 64, 32) == [0]
    rows = D.patch_index([(70, 96, 64)], "3d", 64, 32)
    assert {tuple(r[1:]) for r in rows} == {(z, y, 0) for z in (0, 6) for y in (0, 32)}
    with pytest.raises(FibsynthError, match="smaller than the patch"):
        D.patch_index([(10, 32, 32)], "2d", 64, 32)
    with pytest.raises(FibsynthError, match="smaller than the patch"):
        D.patch_index([(10, 64, 64)], "3d", 64, 32)


def test_augment_keeps_z_and_pairs_image_with_label():
    rng = np.random.default_rng(0)
    z = np.arange(6, dtype=np.float32)[:, None, None] * np.ones((6, 8, 8), np.float32)
    pat = rng.random((8, 8)).astype(np.float32)
    img = (z * 10 + pat)[None]  # (1, z, y, x): z encoded in the tens
    lbl = (pat > 0.5).astype(np.uint8)[None].repeat(6, 0)
    seen = set()
    for s in range(16):
        x, y = D.augment(img, lbl, np.random.default_rng(s), "dihedral", 0.0, 1)
        np.testing.assert_array_equal(np.floor(x[0, :, 0, 0] / 10), np.arange(6))  # z order untouched
        np.testing.assert_array_equal(x[0, 0] > 0.5, y[0].astype(bool))  # label moved with the image
        seen.add(x[0, 0].tobytes())
    assert len(seen) >= 6  # rotations and flips happen
    for s in range(8):  # xflip never touches y
        x, _ = D.augment(img, lbl, np.random.default_rng(s), "xflip", 0.0, 1)
        assert np.allclose(np.sort(x[0, 0], axis=1), np.sort(img[0, 0], axis=1))
        assert np.allclose(x[0, 0, :, ::-1], img[0, 0]) or np.allclose(x[0, 0], img[0, 0])
    x, _ = D.augment(np.zeros((4, 8, 8), np.float32), np.zeros((8, 8), np.uint8), np.random.default_rng(1), "none", 0.1, 2)
    # jitter: one gain/offset per energy (channels 0-1 energy 0, 2-3 energy 1)
    assert np.ptp(x[0]) == 0 and x[0, 0, 0] == x[1, 0, 0] and x[2, 0, 0] == x[3, 0, 0] and x[0, 0, 0] != x[2, 0, 0]


def test_split_slabs_and_normalisation():
    assert D.split_slabs(50, 0.2, 1) == ((0, 40), (40, 50))
    assert D.split_slabs(50, 0.0, 1) == ((0, 50), None)
    with pytest.raises(FibsynthError, match="too thin"):
        D.split_slabs(100, 0.2, 64)
    a = np.linspace(0, 100, 10001).reshape(1, 1, -1)
    lo, hi = D.fit_normalisation([a], (1, 99))
    assert lo == pytest.approx(1) and hi == pytest.approx(99)
    with pytest.raises(FibsynthError, match="constant"):
        D.fit_normalisation([np.ones((2, 3, 3))], (1, 99))


def test_gaussian_weight():
    g = gaussian_weight((9, 5))
    assert g.shape == (9, 5) and g.max() == 1 and g[4, 2] == 1 and g.min() > 0
    np.testing.assert_allclose(g, g[::-1, ::-1])
