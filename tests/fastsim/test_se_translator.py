"""The paired SE translator of one open-pore configuration (issue 17, item 4: silicon, vacuum pores, 2 keV, 38
degrees, in-lens): shipped weights and record, the per-primary noise law, determinism, where it applies, the
fast-stack wiring, and the BSE translator's inputs unchanged by the generalisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.fastsim import translator as T


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def se():
    return T.load_paired(detector="inlens")


@pytest.fixture(scope="module")
def small():
    from fibsynth.structure import leveled_wave

    return leveled_wave((12, 24, 24), voxel_size=5.0, solid_fraction=0.45, ligament_nm=50.0, seed=3).astype(np.uint8)


def test_shipped_se_weights_are_small_and_carry_their_record(se):
    w = T.SHIPPED["inlens"]
    assert w.stat().st_size < 200_000
    cfg = json.loads(w.with_suffix(".json").read_text())
    tr = cfg["training"]
    assert tr["materials"] == ["silicon", "vacuum"] and tr["energy_range_kev"] == [2.0, 2.0]
    assert tr["detector"] == "inlens" and cfg["signal"]["detector"] == "inlens"
    assert set(tr["data"]["held_out_test_structures"]).isdisjoint(tr["data"]["train_structures"])
    assert set(tr["data"]["held_out_test_structures"]).isdisjoint(tr["data"]["monitor_structures"])
    law = cfg["signal"]["noise"]
    assert np.all(np.diff(law["m"]) > 0) and min(law["v"]) > 0  # measured points, a positive variance
    rows = cfg["measured"]["rows"]
    assert {"se translator", "mc second realisation", "se projection + mean/std rescale + noise"} <= set(rows)
    assert len(cfg["measured"]["test"]["structures"]) >= 3
    assert se.detector == "inlens" and se.summary()["measured"]["se translator: ssim"] > 0


def test_se_noise_follows_the_per_primary_law_at_the_dose():
    law = {"m": [0.1, 0.5, 1.0], "v": [0.06, 0.4, 0.9]}
    v = T.per_primary_variance(np.array([0.05, 0.3, 0.5, 2.0]), law)
    assert v == pytest.approx([0.03, 0.23, 0.4, 3.6])  # ~m below the points, interpolated, ~m^2 above
    for m0, n in ((0.7, 100), (0.2, 20)):
        m = np.full((300, 300), m0, np.float32)
        a = T.se_shot_noise(m, n, 5, law)
        assert np.array_equal(a, T.se_shot_noise(m, n, 5, law)) and not np.array_equal(a, T.se_shot_noise(m, n, 6, law))
        assert a.mean() == pytest.approx(m0, rel=0.01)
        assert a.var() == pytest.approx(float(T.per_primary_variance(m0, law)) / n, rel=0.05)  # 9e4 px: ~0.5 % sd
        assert a.min() >= 0
    assert np.array_equal(T.se_shot_noise(m, 0, 1, law), m)  # no dose: the mean image
    assert (T.se_shot_noise(np.zeros((4, 4), np.float32), 50, 1, law) == 0).all()  # nothing seen: no signal
    with pytest.raises(FibsynthError) as ei:
        T.se_shot_noise(m, -1, 0, law)
    assert ei.value.param == "electrons_per_pixel"


def test_noise_law_fit_recovers_a_known_law():
    rng = np.random.default_rng(0)
    m = rng.uniform(0.05, 1.5, 20000)
    v = 0.45 * m + 0.3 * m * m
    std = np.sqrt(v / 100 * rng.chisquare(50, m.size) / 50)  # noisy per-pixel estimates, as the Monte Carlo's
    fit = T.fit_se_noise_law([m], [std], 100)
    x = np.array([0.1, 0.5, 1.0, 1.4])
    assert T.per_primary_variance(x, fit) == pytest.approx(0.45 * x + 0.3 * x * x, rel=0.03)
    two = fit["two_parameter_law"]
    assert (two["a"], two["b"]) == pytest.approx((0.45, 0.3), abs=0.02) and two["worst_bin_deviation"] < 0.03


def test_se_translator_is_deterministic_and_brightens_solid_at_the_face(se, small):
    vox = (5.0, 5.0, 5.0)
    kw = dict(electrons_per_pixel=100, slices=(0, 2), solid="silicon", pore="vacuum", detector="inlens")
    a, m = se(small, vox, 2.0, seed=3, **kw)
    b, m2 = se(small, vox, 2.0, seed=3, **kw)
    c, _ = se(small, vox, 2.0, seed=4, **kw)
    assert np.array_equal(a, b) and np.array_equal(m, m2) and not np.array_equal(a, c)
    assert a.shape == m.shape == (2, 24, 24) and m.min() >= 0
    face = small[:2].astype(bool)
    # silicon at the face against the open pores' bottoms and walls seen through them
    assert m[face].mean() > m[~face].mean() and 0.3 < m[face].mean() < 2.0
    # the noise at the dose: the law's variance (pixel by pixel, over all pixels)
    z = (a - m) / np.sqrt(T.per_primary_variance(m, se.signal["noise"]) / 100)
    assert abs(float(z.mean())) < 0.2 and 0.8 < float(z.var()) < 1.2


def test_se_translator_applies_only_to_its_configuration(se, small):
    vox = (5.0, 5.0, 5.0)
    with pytest.raises(FibsynthError) as ei:
        se(small, vox, 3.0, solid="silicon", pore="vacuum", detector="inlens")
    assert ei.value.param == "energy_kev" and "2 keV" in ei.value.message
    with pytest.raises(FibsynthError) as ei:
        se(small, vox, 2.0, solid="gold", pore="vacuum", detector="inlens")
    assert ei.value.param == "solid"
    with pytest.raises(FibsynthError) as ei:
        se(small, vox, 2.0, solid="silicon", pore="vacuum")  # detector bse
    assert ei.value.param == "detector"
    with pytest.raises(FibsynthError) as ei:  # and the BSE translator refuses an SE detector
        T.load_paired()(small, vox, 2.0, detector="inlens")
    assert ei.value.param == "detector"
    with pytest.raises(FibsynthError) as ei:
        T.load_paired(detector="se")
    assert ei.value.param == "detector"


def test_fast_stack_uses_the_se_translator_by_default_and_records_it(small):
    from fibsynth import pipeline

    kw = dict(solid="silicon", pore="vacuum", detector="inlens", seed=5, electrons_per_pixel=60)
    d = pipeline.fast_stack(small[:6], 5.0, 2.0, **kw)
    p = pipeline.fast_stack(small[:6], 5.0, 2.0, translation="paired", keep_projection=True, **kw)
    assert np.array_equal(d.data, p.data) and d.data.shape == (6, 24, 24)
    par = d.meta.parameters
    assert d.meta.generator == pipeline.FAST and par["translator"] == "paired" and par["detector"] == "inlens"
    assert "paired SE translator" in par["translation_choice"]
    rec = par["translator_record"]
    assert rec["materials"] == ["silicon", "vacuum"] and rec["held_out_test_structures"]
    assert "se translator: ssim" in rec["measured"] and rec["noise_law"]["m"]
    assert p.record["projection_product"].meta.generator == pipeline.PROJECTION
    # elsewhere: the SE projection alone, saying why
    q = pipeline.fast_stack(small[:6], 5.0, 2.0, solid="silicon", pore="vacuum", detector="inlens",
                            incidence_deg=30.0)
    assert q.meta.generator == pipeline.PROJECTION and "degrees incidence" in q.meta.parameters["translation_choice"]
    for bad, param in ((dict(pore="epoxy"), "pore"), (dict(detector="et"), "detector"),
                       (dict(translation="gan"), "translation"), (dict(energy_kev=3.0, translation="paired"),
                                                                   "energy_kev")):
        args = dict(kw, **bad)
        e = args.pop("energy_kev", 2.0)
        with pytest.raises(FibsynthError) as ei:
            pipeline.fast_stack(small[:6], 5.0, e, **args)
        assert ei.value.param == param and "\n" not in ei.value.message


def test_bse_features_unchanged_by_multichannel_projections(small):
    """The generalisation to several projection channels leaves the BSE translator's inputs as they were."""
    from fibsynth.fastsim.projection import project

    p, _ = project(small, (5.0, 5.0, 5.0), 2.0, slices=(0, 3))
    one = T.features(small, (5.0, 5.0, 5.0), 2.0, projection=p, slices=(0, 3))
    four_d = T.features(small, (5.0, 5.0, 5.0), 2.0, projection=p[:, None], slices=(0, 3))
    assert one.shape == (3, 9, 24, 24) and np.array_equal(one, four_d)


def test_synth_cli_detector(tmp_path, capsys, small):
    from fibsynth.cli import main
    from fibsynth.io import read_volume, write_volume
    from fibsynth.io.metadata import VolumeMeta

    src = tmp_path / "s.tif"
    write_volume(src, small[:4], VolumeMeta(kind="structure", voxel_size_nm=5.0))
    out = tmp_path / "o.tif"
    assert main(["synth", str(src), str(out), "--energy-kev", "2", "--solid", "silicon", "--pore", "vacuum",
                 "--detector", "inlens", "--electrons-per-pixel", "40"]) == 0
    meta = read_volume(out).meta
    assert meta.parameters["translator"] == "paired" and meta.parameters["detector"] == "inlens"
    assert "paired SE translator" in capsys.readouterr().err
    bad = tmp_path / "bad.tif"
    assert main(["synth", str(src), str(bad), "--energy-kev", "2", "--solid", "silicon", "--detector", "inlens"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--pore" in err and len(err.splitlines()) == 1 and not bad.exists()
