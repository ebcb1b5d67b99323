"""Metrics on dask.distributed: confusion counts / scores from a local cluster of two worker processes equal the
single-process ones (CLI ``fibsynth evaluate --workers/--scheduler`` and the Python API), isotropy's per-axis
functions as tasks give the same report; option mistakes are one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from fibsynth.cli import main
from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.io import VolumeMeta, read_structure, write_volume

SHAPE = (18, 20, 22)


def _struct(shape=SHAPE, seed=0, sigma=1.5):
    g = ndi.gaussian_filter(np.random.default_rng(seed).standard_normal(shape), sigma)
    return (g > 0.05).astype(np.uint8)


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                      silence_logs=40) as c:
        yield c


@pytest.fixture
def pair(tmp_path):
    """Truth and a noisy prediction as Zarr stores with different chunks (blocks must still line up)."""
    truth = _struct(seed=1)
    pred = truth.copy()
    flip = np.random.default_rng(2).random(SHAPE) < 0.05
    pred[flip] ^= 1
    meta = VolumeMeta(kind="structure", voxel_size_nm=VoxelSize(x=2.0, y=2.0, z=3.0))
    write_volume(tmp_path / "t.zarr", truth, meta, chunks=(8, 8, 8))
    write_volume(tmp_path / "p.zarr", pred * 255, meta, chunks=(5, 20, 11))  # a {0, 255} mask, as Fiji writes
    return tmp_path / "p.zarr", tmp_path / "t.zarr", pred, truth


def test_evaluate_cli_local_two_process_cluster_equals_one_process(pair, capsys):
    p, t, _, _ = pair
    assert main(["evaluate", str(p), "--truth", str(t), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert main(["evaluate", str(p), "--truth", str(t), "--json", "--workers", "2"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert one == two and 0.8 < one["MDS"] < 1.0


def test_counts_and_scores_on_scheduler_equal_one_process(pair, cluster):
    from fibsynth.metrics.ground_truth import confusion_counts, evaluate_segmentation

    p, t, pred, truth = pair
    lp, lt = read_structure(p, lazy=True).data, read_structure(t, lazy=True).data
    ref = evaluate_segmentation(pred, truth)
    assert evaluate_segmentation(lp, lt, scheduler=cluster.scheduler_address) == ref
    c = confusion_counts(lp, lt, scheduler=cluster.scheduler_address)
    assert c == {k: ref[k] for k in ("TP", "TN", "FP", "FN")} and sum(c.values()) == pred.size
    # zarr arrays are accepted as they are (the truth against itself: no FP, no FN)
    import zarr

    z = zarr.open_group(str(t), mode="r")["0"]
    assert confusion_counts(z, z, scheduler=cluster.scheduler_address) == confusion_counts(truth, truth)


def test_isotropy_per_axis_tasks_equal_one_process(tmp_path, cluster, capsys):
    from fibsynth.metrics.isotropy import isotropy_report

    a = _struct((24, 24, 24), seed=4, sigma=2.0)
    vs = (3.0, 2.0, 2.0)
    ref = isotropy_report(a, vs, return_functions=True)
    dist = isotropy_report(a, vs, return_functions=True, scheduler=cluster.scheduler_address)
    scalars = [k for k, v in ref.items() if isinstance(v, float)]
    assert {k: dist[k] for k in scalars} == {k: ref[k] for k in scalars}
    for kind in ("tpcf", "lpf"):
        for ax in "zyx":
            for x, y in zip(ref["functions"][kind][ax], dist["functions"][kind][ax]):
                np.testing.assert_array_equal(x, y)
    write_volume(tmp_path / "a.tif", a, VolumeMeta(kind="structure", voxel_size_nm=VoxelSize(x=2.0, y=2.0, z=3.0)))
    assert main(["isotropy", str(tmp_path / "a.tif"), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert main(["isotropy", str(tmp_path / "a.tif"), "--json", "--scheduler", cluster.scheduler_address]) == 0
    assert json.loads(capsys.readouterr().out) == one


def test_bad_values_found_on_a_worker_are_one_line_errors(tmp_path, cluster, capsys):
    t = _struct(seed=5)
    bad = t.copy()
    bad[-1, -1, -1] = 2  # in the last block only
    write_volume(tmp_path / "t.zarr", t, VolumeMeta(kind="structure"), chunks=(6, 20, 22))
    write_volume(tmp_path / "b.zarr", bad, VolumeMeta(kind="structure"), chunks=(6, 20, 22))
    from fibsynth.metrics.ground_truth import confusion_counts

    import dask.array as da

    lazy_bad = da.from_zarr(str(tmp_path / "b.zarr"), component="0")
    lazy_t = da.from_zarr(str(tmp_path / "t.zarr"), component="0")
    with pytest.raises(FibsynthError, match="prediction must be binary"):
        confusion_counts(lazy_bad, lazy_t, scheduler=cluster.scheduler_address)
    with pytest.raises(FibsynthError, match="Zarr or dask array"):
        confusion_counts(bad, t, scheduler=cluster.scheduler_address)  # numpy would travel through the scheduler


@pytest.mark.parametrize(
    "files,extra,needle",
    [
        (("p.tif", "t.zarr"), ["--workers", "2"], "need .zarr inputs"),
        (("p.zarr", "t.npy"), ["--scheduler", "tcp://127.0.0.1:1"], "need .zarr inputs"),
        (("p.zarr", "t.zarr"), ["--workers", "0"], "--workers must be >= 1"),
        (("p.zarr", "t.zarr"), ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
    ],
)
def test_evaluate_bad_cluster_options_one_line_errors(tmp_path, capsys, files, extra, needle):
    t = _struct((4, 8, 8))
    for name in files:
        write_volume(tmp_path / name, t, VolumeMeta(kind="structure"))
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / files[0]), "--truth", str(tmp_path / files[1]), "--json", *extra]) == 2
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert cap.out == "" and err.startswith("fibsynth: error:") and needle in err and "\n" not in err


def test_isotropy_bad_cluster_options(tmp_path, capsys):
    write_volume(tmp_path / "a.npy", _struct((8, 8, 8)), VolumeMeta(kind="structure"))
    assert main(["isotropy", str(tmp_path / "a.npy"), "--voxel-nm", "1", "--workers", "0"]) == 2
    assert "--workers must be >= 1" in capsys.readouterr().err
