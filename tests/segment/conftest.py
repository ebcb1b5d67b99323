"""Shared toy data and one trained 2.5D model for the segmentation tests.

The stacks are the cheap imitation of :mod:`fibsynth.segment.toy` (gold bright, epoxy dark, blurred
shine-through of the next 3 slices, noise), not Monte Carlo images: epoxy in front of gold reaches
gold-like gray values, which hurts a global threshold.
"""

from __future__ import annotations

import pytest
from segtools import cli_segment, write_pair

@pytest.fixture(scope="session")
def toy_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("segtoy")
    train = write_pair(d, "train", (24, 48, 48), 1)
    test = write_pair(d, "test", (16, 48, 48), 5)
    return d, train, test


@pytest.fixture(scope="session")
def trained_25d(toy_data):
    """A small 2.5D model (k = 1) trained through the CLI for 6 epochs (about 10-25 s on 2 shared cores)."""
    d, (ip, lp, _, _), _ = toy_data
    out = d / "model25"
    rc = cli_segment(["train", "--images", str(ip), "--labels", str(lp), "--mode", "2.5d", "--out", str(out),
                      "--epochs", "6", "--seed", "0", "--k", "1", "--patch", "32", "--stride", "16", "--batch", "16",
                      "--lr", "1e-2", "--features", "8,16,32", "--res-units", "0", "--val-fraction", "0.25",
                      "--quiet"])
    assert rc in (0, None)
    return out
