"""The depth-layer projection (method="depth_layers"): its table, its linear form, buried gold, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.fastsim import projection as L
from fibsynth.fastsim.projection import THIN_SOLID_DEPTH, project

VOX = (5.0, 5.0, 5.0)


def test_table_is_fitted_on_training_structures_only_with_weights_per_energy():
    t = L.load_layers_table()
    assert t["materials"] == ["gold", "epoxy"] and t["energies_kev"][0] <= 1 and t["energies_kev"][-1] >= 4
    assert len(t["weights"]) == len(t["energies_kev"])
    assert all(len(w) == len(t["weights_order"]) for w in t["weights"])
    seeds = {s[0] for s in t["fitted_on"]["structures"]}
    assert seeds.isdisjoint({201, 202, 203})  # the held-out test structures of experiments/fastpath_sets.py
    # linear in energy between fitted energies, exact at them
    w1, w2 = np.array(t["weights"][0]), np.array(t["weights"][1])
    e1, e2 = t["energies_kev"][:2]
    assert np.allclose(L.layer_weights_at(t, e1), w1)
    assert np.allclose(L.layer_weights_at(t, 0.5 * (e1 + e2)), 0.5 * (w1 + w2))


def test_image_is_the_weighted_sum_of_projection_and_sheared_spread_layers():
    from fibsynth.structure import leveled_wave

    s = leveled_wave((72, 24, 24), voxel_size=5.0, solid_fraction=0.3, ligament_nm=40.0, seed=5)
    img, rec = project(s, VOX, 3.0, method="depth_layers", normalise="eta", slices=(0, 3))
    f = L.layer_features(s, VOX, 3.0, 38.0, 0, 3, solid="gold", pore="epoxy")
    w = L.layer_weights_at(L.load_layers_table(), 3.0)
    assert np.allclose(img, w[0] + np.tensordot(w[1:], f, axes=(0, 0)), atol=1e-5)
    thin, _ = project(s, VOX, 3.0, slices=(0, 3), solid_depth=THIN_SOLID_DEPTH)
    assert np.array_equal(f[0], thin)  # channel 0 is the thin-solid window projection
    # group normalisation: pore (all features 0) -> 0, bulk (all 1) -> 1
    g, _ = project(s, VOX, 3.0, method="depth_layers", slices=(0, 3))
    assert np.allclose(g, (img - rec["eta_pore"]) / (rec["eta_solid_bulk"] - rec["eta_pore"]), atol=1e-5)
    assert rec["method"] == "depth_layers" and rec["layer_weights"] == pytest.approx(w.tolist())


def test_gold_buried_10_to_40_nm_behind_epoxy_brightens_the_4kev_image_not_the_1kev_one_as_much():
    base = np.zeros((80, 16, 16), np.uint8)
    buried = base.copy()
    buried[3:7] = 1  # a gold layer 15-35 nm behind the face of slice 0 (laterally extended)
    d = {}
    for e in (1.0, 4.0):
        a, _ = project(base, VOX, e, method="depth_layers", normalise="eta", slices=(0, 1))
        b, _ = project(buried, VOX, e, method="depth_layers", normalise="eta", slices=(0, 1))
        d[e] = float(b.mean() - a.mean())
    assert d[4.0] > 0.02  # 4 keV electrons reach it (Kanaya-Okayama range of epoxy ~400 nm)
    assert d[4.0] > d[1.0]


def test_refuses_energies_and_materials_it_was_not_fitted_for():
    s = np.zeros((20, 8, 8), np.uint8)
    with pytest.raises(FibsynthError) as ei:
        project(s, VOX, 5.0, method="depth_layers")
    assert ei.value.param == "energy_kev" and "fitted" in str(ei.value)
    with pytest.raises(FibsynthError) as ei:
        project(s, VOX, 2.0, method="depth_layers", solid="nickel")
    assert ei.value.param == "solid"
