"""SE image stacks and detector models (issue 17, item 3): ``mc stack --detector se|inlens|et``.

The trench view factor is checked against its closed form, the ET detector's trench shadow is shown on a flat face
(none for the in-lens detector), the SE stack's transport is the BSE stack's, and the CLI records the detector."""

import math

import numpy as np
import pytest

from fibsynth.config import VoxelSize
from fibsynth.physics.montecarlo.detectors import (
    SignalDetector,
    _cone_directions,
    _cosine_directions,
    collection_maps,
    trench_escape,
)
from fibsynth.physics.montecarlo.settings import Beam, StackGeometry, StackSettings
from fibsynth.physics.montecarlo.stack import simulate_slice, simulate_stack


def _settings(kind=None, n=40, **det):
    return StackSettings(beam=Beam(energy_kev=2.0), geometry=StackGeometry(solid="Si", pore="vacuum",
                                                                           backing="solid"),
                         electrons_per_pixel=n, seed=3, signal=None if kind is None else SignalDetector(kind=kind,
                                                                                                        **det))


def test_trench_view_factor_closed_form():
    """Cosine-law SE from the centre of the face of a slot of width W at depth h: the directions (ux, uy) are
    uniform on the unit disk, those that leave through the top form a wedge of half-angle atan(W / 2h) around
    -y, so the escaping fraction is atan(W / 2h) / pi (1/2 at the top edge, -> 0 deep down)."""
    dirs = _cosine_directions(4096)
    assert np.allclose(np.linalg.norm(dirs, axis=1), 1.0) and (dirs[:, 2] < 0).all()
    w = 100.0
    h = np.array([1e-6, 10.0, 50.0, 100.0, 400.0])
    f = trench_escape(dirs, np.zeros_like(h), h, w)
    assert f == pytest.approx(np.arctan(w / (2 * h)) / math.pi, abs=0.01)
    # off-centre points see less than the centre; the cone directions stay inside their cone
    assert trench_escape(dirs, 40.0, 50.0, w) < trench_escape(dirs, 0.0, 50.0, w)
    axis = np.array([0.6, -0.5, -0.6])
    cone = _cone_directions(axis, 10.0, 1024)
    assert (cone @ (axis / np.linalg.norm(axis)) >= math.cos(math.radians(10.0)) - 1e-12).all()


def test_se_stack_transport_is_the_bse_stack():
    """An SE detector runs the SE kernel on the same random streams: its BSE counts are the BSE run's."""
    vol = np.ones((4, 8, 8), np.uint8)
    vol[:, 2:5, 3:6] = 0
    b = simulate_slice(vol, (4.0, 4.0, 4.0), 1, _settings(None), tracking="block")
    s = simulate_slice(vol, (4.0, 4.0, 4.0), 1, _settings("et", trench_width_nm=64.0), tracking="block")
    assert np.array_equal(b["all"], s["all"]) and np.array_equal(b["detected"], s["detected"])
    assert np.array_equal(b["energy_hist"], s["energy_hist"])
    assert s["se"].mean() > 0.3  # Si at 2 keV: delta ~ 0.4-0.5 (docs/montecarlo.md)


def test_et_trench_shadow_and_flat_inlens():
    """A flat Si face at the end of a trench as wide as the face (64 nm) and reaching up to its first row.
    In-lens: no shadow (top and bottom rows equal within noise). ET: the SE leaving the trench fall with depth
    as atan(W / 2h) / pi predicts (top rows brighter than the bottom by > 2x), and the BSE share from a detector
    on the +x side (azimuth 45, elevation 45: the line of sight clear where x + 0.71 h <= W / 2) is shadowed on
    the detector's side: the deep pixels next to the +x wall see no BSE, those at the -x wall do."""
    vol = np.ones((2, 16, 16), np.uint8)
    vox = VoxelSize(x=4.0, y=4.0, z=4.0)
    inl = simulate_stack(vol, vox, _settings("inlens", n=60), slices=(0, 1), progress=False)["eta"][0]
    top, bottom = inl[:4].mean(), inl[-4:].mean()
    assert abs(top / bottom - 1.0) < 0.08, (top, bottom)
    et = simulate_stack(vol, vox, _settings("et", n=60, trench_width_nm=64.0), slices=(0, 1),
                        progress=False)["eta"][0]
    assert et[:4].mean() > 2.0 * et[-4:].mean()
    assert et.max() < inl.max()
    # BSE share only (SE efficiency ~ 0): a wide cone towards +x, -z at 45 degrees elevation
    det = dict(se_efficiency=1e-9, et_azimuth_deg=45.0, et_elevation_deg=45.0, et_half_angle_deg=20.0,
               trench_width_nm=64.0)
    bse = simulate_stack(vol, vox, _settings("et", n=150, **det), slices=(0, 1), progress=False)["eta"][0]
    _, fb = collection_maps(SignalDetector(kind="et", **det), 16, 16, 4.0, 4.0)
    assert fb[-1, -1] == 0.0 and fb[-1, 0] > 0.7 and fb[0, 0] == 1.0
    assert bse[-3:, -3:].sum() < 1e-6 and bse[-3:, :3].mean() > 1e-4  # (the SE part: ~1e-10)
    assert bse[:, :4].mean() > 2.0 * bse[:, -4:].mean()


def test_cli_stack_detectors(tmp_path, capsys):
    """``mc stack --detector et`` writes an SE stack whose metadata records the detector and its parameters;
    bse records ``detector: bse``; an unknown detector, an ET option with bse, and torch with an SE detector
    are refused in one line (exit 2) before any output."""
    from fibsynth.cli import main
    from fibsynth.io import VolumeMeta, read_volume, write_volume

    s = np.ones((2, 6, 6), np.uint8)
    s[:, 2:4, 2:4] = 0
    src = tmp_path / "s.npy"
    write_volume(src, s, VolumeMeta(kind="structure", voxel_size_nm=VoxelSize.from_xy_z(4, 4)))
    base = ["--energy-kev", "2", "--electrons-per-pixel", "10", "--workers", "1", "--solid", "Au", "--pore",
            "vacuum", "--backing", "solid"]
    out = tmp_path / "et.tif"
    assert main(["mc", "stack", str(src), str(out), *base, "--detector", "et", "--et-elevation", "40"]) == 0, \
        capsys.readouterr().err
    v = read_volume(out)
    p = v.meta.parameters
    assert p["detector"] == "et" and p["et_elevation_deg"] == 40.0 and p["trench_depth_nm"] == 0.0
    assert v.data.shape == (2, 6, 6) and float(v.data.mean()) > 0
    out2 = tmp_path / "bse.tif"
    assert main(["mc", "stack", str(src), str(out2), *base]) == 0
    assert read_volume(out2).meta.parameters["detector"] == "bse"
    capsys.readouterr()
    for extra, flag in [(["--detector", "sem"], "--detector"), (["--et-elevation", "30"], "--detector"),
                        (["--detector", "inlens", "--backend", "torch"], "--backend"),
                        (["--detector", "et", "--et-elevation", "120"], "--et-elevation")]:
        bad = tmp_path / "bad.tif"
        assert main(["mc", "stack", str(src), str(bad), *base, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and flag in err and not bad.exists(), (extra, err)


def test_pore_view_factor_of_a_slot():
    """An open slot 3 voxels wide (x = 3..6 nm), long in y, under the face: the view factor of the pore voxels
    along its wall (centre x = 3.5 nm) at depth h is the share of cosine-law directions (ux, uy uniform on the unit
    disk) with -0.5 <= ux h / |uz| <= 2.5 (an independent fine quadrature); matter and pore voxels that touch no
    matter 0; the pore voxels over a floor open to the face 1."""
    from fibsynth.physics.montecarlo.secondary import pore_view_factors

    vol = np.ones((20, 4, 9), np.uint8)
    vol[:, :, 3:6] = 0
    nel = np.array([0, 1], np.int64)
    g = pore_view_factors(vol, 2, (1.0, 1.0, 1.0), nel, 1, False)
    assert g.shape == (18, 4, 9) and (g[:, :, :3] == 0).all() and (g[:-1, :, 4] == 0).all()  # (the last layer touches the backing)
    u = (np.arange(2000) + 0.5) / 2000
    r, phi = np.meshgrid(np.sqrt(u), 2 * np.pi * u, indexing="ij")
    ux, uz = r * np.cos(phi), np.sqrt(1 - r * r)
    for j in (0, 2, 6, 15):
        h = j + 0.5
        want = float(np.mean((ux * h <= 2.5 * uz) & (ux * h >= -0.5 * uz)))
        assert g[j, 1, 3] == pytest.approx(want, abs=0.06), (j, g[j, 1, 3], want)  # march in half-voxel steps
    assert g[0, 1, 3] > g[6, 1, 3] > g[15, 1, 3] and g[6, 1, 5] == pytest.approx(g[6, 1, 3], abs=0.03)  # mirror
    free = np.zeros((6, 4, 4), np.uint8)
    free[5] = 1  # a floor: its pore voxels just above see the face through empty space
    assert np.allclose(pore_view_factors(free, 0, (1.0, 1.0, 1.0), nel, 1, False)[4], 1.0)


def test_straight_pore_view_never_adds_and_leaves_solid_alone():
    """Same electrons: SE leaving pore walls that count only with their pore's view factor give a per-pixel SE
    signal <= that of counting all of them (equal where the electrons never reach a wall: an all-solid sample)."""
    from fibsynth.physics.montecarlo.secondary import simulate_slice_se

    vol = np.ones((6, 8, 8), np.uint8)
    vol[:, 2:6, 3:5] = 0
    st = StackSettings(beam=Beam(energy_kev=1.0), geometry=StackGeometry(solid="Si", pore="vacuum",
                                                                         backing="solid"),
                       electrons_per_pixel=30, seed=2)
    a = simulate_slice_se(vol, (2.0, 2.0, 2.0), 1, st, pore_view="all")
    s = simulate_slice_se(vol, (2.0, 2.0, 2.0), 1, st, pore_view="straight")
    assert np.array_equal(a["all"], s["all"])
    assert (s["se"] <= a["se"] + 1e-12).all() and s["se"][2:6, 3:5].mean() < 0.8 * a["se"][2:6, 3:5].mean()
    solid = np.ones_like(vol)
    a = simulate_slice_se(solid, (2.0, 2.0, 2.0), 1, st, pore_view="all")
    s = simulate_slice_se(solid, (2.0, 2.0, 2.0), 1, st, pore_view="straight")
    assert np.array_equal(a["se"], s["se"])


def test_et_se3_share_of_the_backscattered_electrons(tmp_path, capsys):
    """SE3 (``et_se3``): per BSE that leaves the trench, et_se3 SE from the pole piece and chamber walls. Off by
    default (dumps as before: no ``et_se3`` key); on, the ET image gains exactly et_se3 * eta * v per pixel (v the
    cosine-law trench view factor: less in the deep rows), and with the SE and cone BSE switched off its standard
    error is the binomial one of eta. Only for the et detector (refused for inlens, also on the CLI)."""
    from fibsynth.physics.montecarlo.detectors import signal_image
    from fibsynth.physics.montecarlo.secondary import simulate_slice_se

    assert "et_se3" not in SignalDetector(kind="et").model_dump()
    assert SignalDetector(kind="et", et_se3=0.5).model_dump()["et_se3"] == 0.5
    with pytest.raises(ValueError, match="et_se3"):
        SignalDetector(kind="inlens", et_se3=0.5)
    vol = np.ones((4, 8, 4), np.uint8)
    st = _settings(None, n=200)
    res = simulate_slice_se(vol, (4.0, 8.0, 8.0), 0, st)
    n = st.electrons_per_pixel
    geo = dict(trench_width_nm=32.0, trench_depth_nm=0.0)
    off, _ = signal_image(SignalDetector(kind="et", **geo), res, n, 8.0, 8.0)
    on, _ = signal_image(SignalDetector(kind="et", et_se3=0.4, **geo), res, n, 8.0, 8.0)
    _, _, f3 = collection_maps(SignalDetector(kind="et", et_se3=0.4, **geo), 8, 4, 8.0, 8.0, se3=True)
    eta = res["all"] / n
    assert np.allclose(on - off, f3 * eta, rtol=1e-12, atol=1e-15)
    assert 0.1 < eta.mean() < 0.3  # Si at 2 keV, 38 degrees
    assert f3[0].mean() > 2 * f3[-1].mean() and f3.max() <= 0.4 * 0.5 + 1e-12  # shadowed; <= et_se3 / 2 at the top
    only3 = SignalDetector(kind="et", et_se3=0.4, se_efficiency=1e-12, bse_weight=0.0, **geo)
    img, std = signal_image(only3, res, n, 8.0, 8.0)
    assert np.allclose(img, f3 * eta, rtol=1e-6)
    assert np.allclose(std, f3 * np.sqrt(eta * (1 - eta) / n), rtol=1e-3, atol=1e-9)
    from fibsynth.cli import main

    out = tmp_path / "y.tif"
    assert main(["mc", "stack", str(tmp_path / "x.tif"), str(out), "--energy-kev", "2", "--electrons-per-pixel",
                 "5", "--detector", "inlens", "--et-se3", "0.3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--et-se3" in err and len(err.splitlines()) == 1 and not out.exists(), err
