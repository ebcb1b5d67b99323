"""The re-estimate's correction by the segmentation's own bias on held-out structures (bias18)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from fibsynth.errors import FibsynthError
from fibsynth.reconstruct.estimate import (estimate_structure, reconstruction_bias, remove_bias,
                                           structure_stats)

VOX = (6.0, 6.0, 6.0)


def _lw(seed: int) -> np.ndarray:
    from fibsynth.structure import leveled_wave

    return leveled_wave((24, 64, 64), VOX, 0.3, 36.0, seed=seed).astype(np.uint8)


def _fatten(a: np.ndarray) -> np.ndarray:
    """A systematic segmentation error: every ligament one voxel thicker in-plane (a threshold set too low)."""
    return binary_dilation(a, structure=np.ones((1, 3, 3), bool)).astype(np.uint8)


def test_an_exact_segmentation_has_no_bias():
    a = _lw(1)
    b = reconstruction_bias([(a, a)], VOX)
    for k, v in b.items():
        assert v["bias"] == 0.0 and v["standard_error"] == 0.0, k


def test_a_bias_measured_on_one_structure_corrects_another():
    """The fattening measured on a held-out structure (seed 1), removed from the estimate of another structure's
    fattened segmentation (seed 2), brings each quantity back near that structure's truth: much nearer than the raw
    value, and inside the corrected uncertainty."""
    held_out, other = _lw(1), _lw(2)
    bias = reconstruction_bias([(_fatten(held_out), held_out)], VOX)
    assert bias["solid_fraction"]["bias"] > 0.3  # log-odds: phi 0.3 -> ~0.45
    assert bias["ligament_nm"]["bias"] > 4.0 and bias["pore_nm"]["bias"] < -4.0
    raw = estimate_structure({"U-Net": _fatten(other)}, VOX)
    cor = remove_bias(raw, bias, VOX)
    truth = structure_stats(other, VOX)
    for k in ("solid_fraction", "ligament_nm", "pore_nm"):
        q, r = cor["quantities"][k], raw["quantities"][k]
        err_raw, err_cor = abs(r["value"] - truth[k]), abs(q["value"] - truth[k])
        assert err_cor < 0.25 * err_raw, (k, err_raw, err_cor)
        assert err_cor < 2 * q["uncertainty"], (k, err_cor, q["uncertainty"])
        assert q["raw_value"] == r["value"] and q["uncertainty"] > r["uncertainty"]
    assert set(cor["reconstruction_bias"]) == {"solid_fraction", "ligament_nm", "pore_nm"}


def test_bad_pairs_are_refused_in_one_line():
    a = _lw(1)
    with pytest.raises(FibsynthError, match="shape"):
        reconstruction_bias([(a[:-1], a)], VOX)
    with pytest.raises(FibsynthError, match="entirely"):
        reconstruction_bias([(np.ones_like(a), a)], VOX)
