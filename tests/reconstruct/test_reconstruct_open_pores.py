"""Open pores (``pore="vacuum"``) in reconstruct's training-data generator: the fast path follows the beam down
the pores, the Monte Carlo flies electrons through them over a repeated (not empty) backing."""

from __future__ import annotations

import numpy as np

from fibsynth.reconstruct.generate import image_structure
from fibsynth.structure import leveled_wave


def _structure():
    return leveled_wave((6, 24, 24), 5.0, 0.35, 30.0, seed=5).astype(np.uint8)


def test_fast_path_images_open_pores_brighter_than_infiltrated():
    solid = _structure()
    vz = (5.0, 5.0, 5.0)
    open_img, rec = image_structure(solid, vz, 2.0, materials=("gold", "vacuum"))
    fill_img, _ = image_structure(solid, vz, 2.0, materials=("gold", "epoxy"))
    assert "projection" in rec["engine"] and open_img.shape == solid.shape and np.isfinite(open_img).all()
    gold = solid.astype(bool)
    assert open_img[gold].mean() > open_img[~gold].mean()  # gold at the face stays the brightest
    # in the pores the beam meets gold walls behind, not epoxy: the projections differ there and only there
    assert not np.allclose(open_img[~gold], fill_img[~gold])


def test_monte_carlo_images_open_pores_over_a_repeated_backing():
    solid = _structure()[:3]
    img, rec = image_structure(solid, (5.0, 5.0, 5.0), 2.0, engine="mc", materials=("gold", "vacuum"),
                               electrons_per_pixel=10, seed=2)
    assert rec["engine"] == "Monte Carlo" and img.shape == solid.shape
    gold = solid.astype(bool)
    assert 0.2 < img[gold].mean() < 0.6  # bulk gold eta at 2 keV ~0.4 (shot noise at 10 e/px)
    assert img[gold].mean() > img[~gold].mean() > 0.0  # pore pixels see walls below, never nothing at all
