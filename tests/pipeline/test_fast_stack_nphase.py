"""fast_stack / ``fibsynth synth`` of label volumes with one material per label."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from fibsynth.errors import FibsynthError
from fibsynth.fastsim.multiphase import project_labels
from fibsynth.pipeline import fast_stack
from fibsynth.structure import multiphase


@pytest.fixture(scope="module")
def labels():
    return multiphase((6, 24, 24), 4.0, (0.4, 0.35, 0.25), ligament_nm=(16, 20), seed=2)


def test_fast_stack_labels_is_the_n_phase_projection(labels):
    p = fast_stack(labels, 4.0, 2.0, materials=["epoxy", "Au", "Ni"], translation="auto")
    ref, _ = project_labels(labels, (4.0, 4.0, 4.0), 2.0, ["epoxy", "Au", "Ni"])
    assert np.array_equal(p.data, ref)
    assert p.meta.materials == {"0": "epoxy", "1": "Au", "2": "Ni"} and p.meta.generator == "projection"
    for bad in ("paired", "gan"):
        with pytest.raises(FibsynthError) as e:
            fast_stack(labels, 4.0, 2.0, materials=["epoxy", "Au", "Ni"], translation=bad)
        assert e.value.param == "translation"


def test_synth_cli_labels(tmp_path, labels):
    from fibsynth.cli import app
    from fibsynth.io import VolumeMeta, read_volume, write_volume

    s = tmp_path / "lab.tif"
    write_volume(s, labels, VolumeMeta(kind="structure", voxel_size_nm=4.0,
                                       materials={"0": "epoxy", "1": "Au", "2": "Ni"}))
    r = CliRunner().invoke(app, ["synth", str(s), str(tmp_path / "a.tif"), "--energy-kev", "2", "--translation", "auto"])
    assert r.exit_code == 0, r.output
    a = read_volume(tmp_path / "a.tif")
    assert a.meta.materials == {"0": "epoxy", "1": "Au", "2": "Ni"}
    r = CliRunner().invoke(app, ["synth", str(s), str(tmp_path / "b.tif"), "--energy-kev", "2", "--translation",
                                 "projection", "--materials", "epoxy,Ni,Au"])
    assert r.exit_code == 0, r.output
    b = np.asarray(read_volume(tmp_path / "b.tif").data)
    assert b[labels == 2].mean() > b[labels == 1].mean()  # gold now label 2
    from fibsynth.cli import main

    rc = main(["synth", str(s), str(tmp_path / "c.tif"), "--energy-kev", "2", "--materials", "epoxy,Au,Ni"])
    assert rc == 2 and not (tmp_path / "c.tif").exists()  # the default gan translation: none shipped for n phases
