"""Scores of an n-phase segmentation (per-phase Dice, MDS over phases, MP) and per-phase structure measures."""

import numpy as np
import pytest

from fibsynth.errors import FibsynthError
from fibsynth.metrics import evaluate_phases, evaluate_segmentation, phase_structure


def test_two_phases_equal_the_binary_scores():
    rng = np.random.default_rng(0)
    t = (rng.random((6, 10, 10)) < 0.4).astype(np.uint8)
    p = np.where(rng.random(t.shape) < 0.1, 1 - t, t).astype(np.uint8)
    b = evaluate_segmentation(p, t)
    m = evaluate_phases(p, t, 2)
    assert m["MP"] == pytest.approx(b["MP"]) and m["MDS"] == pytest.approx(b["MDS"])
    assert m["dice_1"] == pytest.approx(b["dice_solid"]) and m["dice_0"] == pytest.approx(b["dice_pore"])
    assert m["MGP_1"] == pytest.approx(b["MGP"])


def test_three_phases_by_hand():
    t = np.array([[0, 0, 1, 1, 2, 2, 2, 2]], np.uint8)
    p = np.array([[0, 1, 1, 1, 2, 2, 0, 2]], np.uint8)
    m = evaluate_phases(p, t, 3, names=["pore", "Au", "Ni"], chunk=1)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 3]]
    assert m["MP"] == pytest.approx(25.0)
    assert m["dice_pore"] == pytest.approx(2 * 1 / (2 + 2))
    assert m["dice_Au"] == pytest.approx(2 * 2 / (2 + 3))
    assert m["dice_Ni"] == pytest.approx(2 * 3 / (4 + 3))
    assert m["MDS"] == pytest.approx((0.5 + 0.8 + 6 / 7) / 3)
    assert m["MGP_Ni"] == pytest.approx(25.0) and m["fraction_true_Ni"] == 0.5
    # perfect: MDS 1 even with a phase absent from both (its Dice is 1)
    assert evaluate_phases(t, t, 4)["MDS"] == 1.0
    with pytest.raises(FibsynthError, match="labels 0..1"):
        evaluate_phases(p, t, 2)
    with pytest.raises(FibsynthError, match="same shape"):
        evaluate_phases(p[:, :4], t, 3)


def test_phase_structure_per_phase():
    from fibsynth.structure import multiphase

    lab = multiphase((16, 16, 16), 4.0, (0.4, 0.35, 0.25), ligament_nm=(12, 12), seed=2)
    rep = phase_structure(lab, 4.0)
    assert set(rep) == {"0", "1", "2"}
    assert sum(r["solid_fraction"] for r in rep.values()) == pytest.approx(1.0)
    for r in rep.values():
        assert {"e_tpcf", "e_diameter", "D_xy_nm", "D_xz_nm", "D_yz_nm"} <= set(r)
        assert r["D_xy_nm"] > 4.0  # at least a voxel wide
    only = phase_structure(lab, 4.0, isotropy=False)
    assert only["2"] == {"solid_fraction": rep["2"]["solid_fraction"]}


def test_evaluate_and_isotropy_cli_phases(tmp_path, capsys):
    import json

    from fibsynth.cli import main
    from fibsynth.io import VolumeMeta, write_volume
    from fibsynth.structure import multiphase

    t = multiphase((16, 16, 16), 4.0, (0.4, 0.35, 0.25), ligament_nm=(12, 12), seed=2)
    p = t.copy()
    p[:2] = 0
    meta = VolumeMeta(kind="label", voxel_size_nm=4.0)
    write_volume(tmp_path / "t.npy", t, meta)
    write_volume(tmp_path / "p.npy", p, meta)
    assert main(["evaluate", str(tmp_path / "p.npy"), "--truth", str(tmp_path / "t.npy"), "--phases", "3",
                 "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = evaluate_phases(p, t, 3)
    assert got["MDS"] == pytest.approx(want["MDS"]) and got["dice_2"] == pytest.approx(want["dice_2"])
    assert main(["evaluate", str(tmp_path / "p.npy"), "--truth", str(tmp_path / "t.npy"), "--phases", "2"]) == 2
    assert "0..1" in capsys.readouterr().err
    assert main(["isotropy", str(tmp_path / "t.npy"), "--phase", "2", "--json"]) == 0
    iso = json.loads(capsys.readouterr().out)
    assert iso["solid_fraction"] == pytest.approx(float((t == 2).mean()))
