"""The pipeline layer with n phases: structure product, multi-Otsu baseline, evaluation per phase."""

import numpy as np
import pytest

from fibsynth.pipeline import baseline_segmentation, evaluation, make_multiphase


def test_multiphase_product_baseline_and_evaluation():
    st = make_multiphase((16, 16, 16), 4.0, (0.4, 0.35, 0.25), ligament_nm=(12, 12), seed=4)
    lab = st.data
    assert st.meta.generator == "multiphase" and st.meta.materials["1"] == "Ni"
    assert np.allclose(st.record["fractions"], np.bincount(lab.ravel()) / lab.size)
    img = np.array([0.05, 0.4, 0.3], np.float32)[lab] + np.random.default_rng(0).normal(0, 0.02, lab.shape)
    base = baseline_segmentation(img, st.meta, method="multiotsu", classes=3, order=[0, 2, 1])
    assert base.meta.generator == "baseline" and base.meta.parameters["order"] == [0, 2, 1]
    res = evaluation(base.data, lab, phases=3, voxel=4.0, isotropy=True)
    assert res["MDS"] > 0.95 and res["MP"] < 3
    assert res["phase1_solid_fraction"] == pytest.approx(float((base.data == 1).mean()))
    assert "phase2_D_xy_nm" in res and "phase0_e_tpcf" in res
    # two phases: the binary evaluation, unchanged
    b = evaluation((lab > 0).astype(np.uint8), (lab > 0).astype(np.uint8))
    assert b["MDS"] == 1.0 and "dice_solid" in b
