"""The shine-through projection with open pores (``pore="vacuum"``): no attenuation along the pore, a wall or
bottom seen through the pore's opening (view factor), and its agreement with the Monte Carlo on a tiny stack."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fibsynth.fastsim.network import load_model
from fibsynth.fastsim.projection import escape_directions, project

VOX = (4.0, 4.0, 4.0)


@pytest.fixture(scope="module")
def net():
    return load_model()


def _square_view_factor(half_width, depth):
    """Cosine-law (diffuse) view factor from a point on the axis to a parallel square of half-width w at distance
    H: 4 x the corner-rectangle factor (A = B = w / H)."""
    a = half_width / depth
    q = math.sqrt(1 + a * a)
    return (2.0 / math.pi) * 2.0 * (a / q) * math.atan(a / q)


def _hole(depth_layers, nz=10, n=9, w=3):
    vol = np.ones((nz, n, n), np.uint8)
    c0 = (n - w) // 2
    vol[:depth_layers, c0:c0 + w, c0:c0 + w] = 0
    return vol


def test_escape_directions_follow_the_cosine_law():
    d = escape_directions(2000)
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0)
    assert np.all(d[:, 2] > 0)
    assert abs(d[:, 2].mean() - 2.0 / 3.0) < 0.01  # <cos theta> of the cosine law
    assert abs(d[:, 0].mean()) < 0.01 and abs(d[:, 1].mean()) < 0.01


def test_flat_face_and_empty_stack(net):
    img, rec = project(np.ones((4, 6, 6), np.uint8), VOX, 2.0, pore="vacuum", model=net)
    assert np.all(img == 1.0)
    assert rec["open_pores"] and rec["pore"] == "vacuum" and rec["slices_behind"] == 4
    img, _ = project(np.zeros((4, 6, 6), np.uint8), VOX, 2.0, pore="vacuum", model=net)
    assert np.all(img == 0.0)
    img, rec = project(np.ones((4, 6, 6), np.uint8), VOX, 2.0, pore="vacuum", model=net, normalise="eta")
    assert np.allclose(img, rec["eta_solid_surface"])


@pytest.mark.parametrize("depth_layers", [2, 4])
def test_hole_bottom_seen_through_the_opening(net, depth_layers):
    """Normal incidence down the axis of a 12 x 12 nm open hole: the bottom is a bare gold surface facing the beam
    (Arnal factor 1), seen through the opening: the value is the diffuse view factor of the opening."""
    vol = _hole(depth_layers)
    img, _ = project(vol, VOX, 2.0, pore="vacuum", incidence_deg=0.0, model=net)
    expect = _square_view_factor(6.0, 4.0 * depth_layers)
    assert abs(img[0, 4, 4] - expect) < 0.06, (img[0, 4, 4], expect)
    assert np.all(img[0][vol[0] == 1] == 1.0)  # the face around the hole


def test_no_attenuation_along_the_pore(net):
    """An open pore does not dim what lies behind it the way epoxy does: a wide shallow hole's bottom keeps the face
    value times the (large) view factor of the opening, while the same hole filled with epoxy gives gold under
    16 nm of epoxy."""
    vol = np.ones((10, 24, 24), np.uint8)
    vol[:4, 2:22, 2:22] = 0  # 80 x 80 nm, 16 nm deep
    open_img, _ = project(vol, VOX, 2.0, pore="vacuum", incidence_deg=0.0, model=net)
    filled, _ = project(vol, VOX, 2.0, pore="epoxy", incidence_deg=0.0, model=net, spread=0.0)
    assert abs(open_img[0, 12, 12] - _square_view_factor(40.0, 16.0)) < 0.06
    assert open_img[0, 12, 12] > filled[0, 12, 12] + 0.1, (open_img[0, 12, 12], filled[0, 12, 12])


def test_open_pore_projection_follows_the_monte_carlo(net):
    """A tiny open-pore leveled-wave stack (16 x 16 x 16, 4 nm, 2 keV, 38 degrees): the projection correlates with
    the Monte Carlo images (the full measurement is benchmarks/bench_open_pores.py --fastsim)."""
    from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
    from fibsynth.physics.montecarlo.stack import simulate_slice
    from fibsynth.pipeline.products import make_structure

    vol = make_structure((16, 16, 16), VOX, solid_fraction=0.3, ligament_nm=30.0, seed=4).data
    s = StackSettings(beam=Beam(energy_kev=2.0), electrons_per_pixel=60, seed=4,
                      geometry=StackGeometry(solid="gold", pore="vacuum", backing="repeat"))
    mc = np.stack([simulate_slice(vol, VOX, k, s)["detected"] / 60.0 for k in range(0, 8, 2)])
    proj, _ = project(vol, VOX, 2.0, pore="vacuum", model=net, slices=(0, 8))
    r = np.corrcoef(mc.ravel(), proj[::2].ravel())[0, 1]
    r_binary = np.corrcoef(mc.ravel(), (proj[::2] > 0).ravel())[0, 1]
    assert r > 0.75, r
    assert r > r_binary + 0.05  # the view factor and angle carry information beyond "solid hit or not"


def test_cli_fast_project_and_synth_take_open_pores(tmp_path, capsys):
    """``fibsynth fast project --pore vacuum`` and ``fibsynth synth --pore vacuum --translation auto`` write the
    open-pore projection with vacuum as phase 0; ``synth --pore vacuum`` without a translation model for it is one
    line naming the missing model (none is shipped for open pores)."""
    from fibsynth.cli import main
    from fibsynth.io import read_volume, write_volume
    from fibsynth.pipeline.products import make_structure

    p = make_structure((6, 16, 16), VOX, solid_fraction=0.3, ligament_nm=20.0, seed=1)
    src = tmp_path / "s.tif"
    write_volume(src, p.data, p.meta)
    out = tmp_path / "proj.tif"
    assert main(["fast", "project", str(src), str(out), "--energy-kev", "2", "--pore", "vacuum"]) == 0
    v = read_volume(out)
    assert v.meta.materials == {"0": "vacuum", "1": "gold"} and v.meta.parameters["open_pores"] is True
    out2 = tmp_path / "synth.tif"
    assert main(["synth", str(src), str(out2), "--energy-kev", "2", "--pore", "vacuum", "--translation", "auto"]) == 0
    w = read_volume(out2)
    assert w.meta.materials == {"0": "vacuum", "1": "gold"} and w.meta.generator == "projection"
    assert w.meta.parameters["projection"]["open_pores"] is True
    assert np.array_equal(w.data, v.data)
    capsys.readouterr()
    assert main(["synth", str(src), str(tmp_path / "x.tif"), "--energy-kev", "2", "--pore", "vacuum"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no shipped translation model" in err[0]
