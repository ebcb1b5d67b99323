"""Alignment on a fiducial band: the forward model's static cap with milled marks (off by default, its own random
generator) and ``register_slices(..., region=...)``, which measures the stage drift on the band alone, against
the known applied shifts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from fibsynth.errors import FibsynthError
from fibsynth.microscope import (Curtaining, Detector, Drift, Fiducial, MicroscopeModel, apply, fiducial_band,
                                 register_slices)


def sheared_stack(nz=12, ny=64, nx=64, shear=0.4, seed=0):
    """Blobs that move steadily by ``shear`` px per slice along x (a slanted 3D structure: the apparent motion
    that whole-image registration takes for drift), as a backscatter yield 0.1 / 0.5."""
    f = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal((ny, nx + 32)), 3.0, mode="wrap")
    lab = np.stack([ndimage.shift(f, (0, shear * k), order=3, mode="wrap")[:, 16:16 + nx] for k in range(nz)])
    lab = lab > np.quantile(f, 0.65)
    return 0.1 + 0.4 * ndimage.gaussian_filter(lab.astype(float), (0, 0.6, 0.6))


def model(seed, **fid):
    return MicroscopeModel(detector=Detector(electrons_per_pixel=300, read_noise=0.005),
                           drift=Drift(xy_step_px=1.5, blur_px=0.5), curtaining=Curtaining(amplitude=0.02),
                           fiducial=Fiducial(**fid), seed=seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_region_on_the_fiducial_recovers_the_shifts_where_the_whole_image_does_not(seed):
    r = apply(sheared_stack(seed=seed), model(seed + 10, height_px=16, top_px=4))
    true = np.array(r.record["realised"]["shifts_px"])
    whole = np.abs(register_slices(r.image) + true)
    # the structure's steady shear (0.4 px / slice along x): whole-image alignment misses the 0.5-px target
    assert whole.mean() > 0.7 and whole[:, 1].max() > 2.5
    for kw in ({}, {"method": "neighbours"}, {"method": "template"}):
        err = np.abs(register_slices(r.image, region=(0, 20, 0, 64), **kw) + true)
        assert err.mean() < 0.3, (kw, err.mean())
        # the chain's registration noise on a 20 x 64 px band adds up (a random walk: up to 0.65 px at slice 11);
        # the neighbours' pairs average it
        assert err.max() < (0.5 if kw else 1.0), (kw, err.max())


def test_default_forward_output_unchanged_and_band_static():
    x = sheared_stack(nz=4, ny=40, nx=48)
    base = apply(x, model(3))
    off = apply(x, model(3, height_px=0, gray=0.9))  # off: no rows replaced, no draw taken from the model's stream
    assert np.array_equal(base.image, off.image) and "fiducial_rows" not in off.record["realised"]
    on = apply(x, model(3, height_px=12, top_px=2))
    assert on.record["realised"]["fiducial_rows"] == [2, 14]
    assert on.record["realised"]["shifts_px"] == base.record["realised"]["shifts_px"]  # same drift drawn
    # without drift, blur, noise and grain: the band is the same in every slice and the rows below are untouched
    quiet = MicroscopeModel(fiducial=Fiducial(height_px=12, top_px=2, grain_rms=0.0), seed=3)
    q, q0 = apply(x, quiet).image, apply(x, MicroscopeModel(seed=3)).image
    assert np.array_equal(q[:, 14:], q0[:, 14:]) and (q[:, 2:14] == q[:1, 2:14]).all()
    assert np.allclose(q[:, :2], 0.05)
    band = fiducial_band(quiet, 48, np.random.default_rng(0))
    assert band.min() == pytest.approx(0.05) and band.max() == pytest.approx(0.3)  # marks milled into the cap
    with pytest.raises(FibsynthError) as e:
        apply(x, MicroscopeModel(fiducial=Fiducial(height_px=40, top_px=2)))
    assert e.value.param == "fiducial.height_px"


@pytest.mark.parametrize("region, text", [
    ((0, 50, 0, 20), "must lie inside"), ((-2, 10, 0, 20), "must lie inside"), ((10, 10, 0, 20), "must lie inside"),
    ((0, 6, 0, 20), "too small"), ((0, 10, 0), "four whole numbers"), ((0, 10.5, 0, 20), "four whole numbers"),
])
def test_bad_regions_name_the_parameter(region, text):
    with pytest.raises(FibsynthError) as e:
        register_slices(np.random.default_rng(0).random((3, 32, 32)), region=region)
    assert e.value.param == "region" and text in e.value.message


def test_cli_apply_band_then_correct_on_the_region(tmp_path, capsys):
    from fibsynth.cli import main

    p, real, out = tmp_path / "sim.npy", tmp_path / "real.npy", tmp_path / "out.npy"
    np.save(p, sheared_stack(nz=8).astype(np.float32))
    assert main(["microscope", "apply", str(p), str(real), "--fiducial-px", "16", "--xy-drift-px", "1.5",
                 "--dose", "300", "--seed", "5"]) == 0
    assert main(["microscope", "correct", str(real), str(out), "--align", "--align-region", "0:16,0:64",
                 "--align-method", "neighbours", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    true = np.array(apply(sheared_stack(nz=8), MicroscopeModel(detector=Detector(electrons_per_pixel=300),
                                                             drift=Drift(xy_step_px=1.5),
                                                             fiducial=Fiducial(height_px=16), seed=5)
                          ).record["realised"]["shifts_px"])
    assert rec["config"]["align_region"] == [0, 16, 0, 64]
    assert np.abs(np.array(rec["shifts_px"]) + true).max() < 0.5


def test_region_follows_a_drift_that_carries_the_marks_out_of_where_they_were_drawn():
    """A steady stage drift of 1.5 px/slice up: after 11 slices the band (rows 24..40 on slice 0) lies at rows
    7..23, so a fixed window at the rows drawn on slice 0 (the cap and the surface edge above it, 16..40) would
    hold two thirds structure by then (a fixed window: 1.1-2.0 px, this one 0.07-0.4)."""
    nz = 12
    x = sheared_stack(nz=nz, ny=80)
    band_model = MicroscopeModel(fiducial=Fiducial(height_px=16, top_px=24))
    x[:, 24:40] = fiducial_band(band_model, 64, np.random.default_rng(0))
    x[:, :24] = 0.05
    path = np.stack([-1.5 * np.arange(nz), 0.3 * np.arange(nz)], 1)
    moved = np.stack([ndimage.shift(x[k], path[k], order=3, mode="nearest") for k in range(nz)])
    img = apply(moved, MicroscopeModel(detector=Detector(electrons_per_pixel=300), drift=Drift(blur_px=0.5),
                                       seed=2)).image
    for kw in ({}, {"method": "neighbours"}, {"method": "template"}):
        err = np.abs(register_slices(img, region=(16, 40, 0, 64), **kw) + path)
        assert err.max() < 0.5, (kw, err.max())


@pytest.mark.parametrize("seed", [1, 2])
def test_search_range_keeps_repeated_marks_from_aliasing_at_low_dose(seed):
    """Marks every 16 px at 20 e/px: an unlimited peak search takes a step of a multiple of the spacing; the
    region's default search range (a third of its shorter side, 8 px) does not."""
    m = MicroscopeModel(detector=Detector(electrons_per_pixel=20), drift=Drift(xy_step_px=1.5, blur_px=0.5),
                        fiducial=Fiducial(height_px=16, top_px=8, mark_spacing_px=16), seed=seed)
    r = apply(sheared_stack(nz=12, ny=48, seed=seed), m)
    true = np.array(r.record["realised"]["shifts_px"])
    assert np.abs(register_slices(r.image, region=(0, 24, 0, 64), search_px=1e6) + true).max() > 10
    assert np.abs(register_slices(r.image, region=(0, 24, 0, 64)) + true).max() < 1.5
    assert np.abs(register_slices(r.image, region=(0, 24, 0, 64), method="neighbours") + true).max() < 0.5
    with pytest.raises(FibsynthError) as e:
        register_slices(r.image, region=(0, 24, 0, 64), search_px=0.5)
    assert e.value.param == "search_px"
