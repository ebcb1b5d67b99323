"""Structure chunks on dask.distributed (``--workers N`` / ``--scheduler ADDRESS``): a local cluster of two worker
processes writes bitwise the same Zarr store as the synchronous path; option mistakes are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fibsynth.cli import main

LWM = ["--shape", "20", "24", "28", "--voxel-nm", "5", "--slice-nm", "6", "--solid-fraction", "0.3",
       "--ligament-nm", "30", "--waves", "200", "--seed", "3", "--chunks", "8", "8", "16", "--json"]
HIER = ["--shape", "20", "20", "24", "--voxel-nm", "4", "--upper-ligament-nm", "40", "--lower-ligament-nm", "12",
        "--upper-solid-fraction", "0.5", "--lower-solid-fraction", "0.5", "--waves", "150", "--seed", "2",
        "--chunks", "16", "8", "8", "--json"]


def _files(root: Path) -> dict[str, bytes]:
    """Every file of a store, by relative path, with its bytes (chunks, .zarray, .zattrs, ...)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _same_store(cmd: str, args: list[str], tmp_path: Path, extra: list[str]) -> dict[str, bytes]:
    """Write the same structure synchronously and with ``extra`` options (same file name in two folders);
    assert the two stores are byte for byte the same and return the files."""
    (tmp_path / "sync").mkdir()
    (tmp_path / "dist").mkdir()
    a, b = tmp_path / "sync" / "s.zarr", tmp_path / "dist" / "s.zarr"
    assert main(["structure", cmd, str(a), *args]) == 0
    assert main(["structure", cmd, str(b), *args, *extra]) == 0
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    assert [k for k in fa if fa[k] != fb[k]] == []
    assert not [p for p in tmp_path.rglob(".*tmp-*")]  # no temporary store left behind
    return fa


def test_lwm_on_local_two_process_cluster_is_bitwise_the_synchronous_store(tmp_path, capsys, monkeypatch):
    from fibsynth.structure import chunked

    calls = {"distributed": 0, "block_here": 0}
    real_dist, real_block = chunked._write_distributed, chunked._write_block

    def spy_dist(*a, **k):
        calls["distributed"] += 1
        return real_dist(*a, **k)

    def spy_block(*a, **k):  # would count only blocks written in this process
        calls["block_here"] += 1
        return real_block(*a, **k)

    monkeypatch.setattr(chunked, "_write_distributed", spy_dist)
    monkeypatch.setattr(chunked, "_write_block", spy_block)
    files = _same_store("lwm", LWM, tmp_path, ["--workers", "2"])
    assert calls == {"distributed": 1, "block_here": 0}  # the blocks were computed by the worker processes
    assert len([k for k in files if k.startswith("0/") and not k.endswith((".zarray", ".zattrs"))]) == 3 * 3 * 2
    from fibsynth.io import read_structure

    v = read_structure(tmp_path / "dist" / "s.zarr")
    assert v.data.shape == (20, 24, 28) and v.meta.generator == "lwm" and 0.2 < v.data.mean() < 0.4


def test_hierarchical_via_scheduler_address_is_bitwise_the_synchronous_store(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                      silence_logs=40) as cluster:
        files = _same_store("hierarchical", HIER, tmp_path, ["--scheduler", cluster.scheduler_address])
    assert len([k for k in files if k.startswith("0/") and not k.endswith((".zarray", ".zattrs"))]) == 2 * 3 * 3


def test_write_chunked_api_with_client_and_without_zarr(tmp_path):
    """The Python API takes a Client too (used, and left open); a non-Zarr output with workers is refused."""
    from distributed import Client, LocalCluster

    from fibsynth.config import VoxelSize
    from fibsynth.errors import FibsynthError
    from fibsynth.structure import write_structure
    from fibsynth.structure.chunked import write_chunked
    from fibsynth.structure.leveled_wave import LeveledWave, LWMConfig

    cfg = LWMConfig.build(None, shape=(12, 10, 14), voxel_size=VoxelSize.from_xy_z(5.0, 5.0), solid_fraction=0.4,
                          ligament_nm=25.0, waves=100, seed=1)
    model = LeveledWave(cfg)
    with pytest.raises(FibsynthError, match="need a .zarr output"):
        write_structure(tmp_path / "x.tif", model, workers=2)
    write_chunked(tmp_path / "a.zarr", model, chunks=(4, 10, 7), progress=False)
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=2, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        write_chunked(tmp_path / "b.zarr", model, chunks=(4, 10, 7), progress=False, scheduler=client)
        assert client.status == "running"
    fa, fb = _files(tmp_path / "a.zarr"), _files(tmp_path / "b.zarr")
    fa.pop(".zattrs"), fb.pop(".zattrs")  # the OME-NGFF name is the store's name, a.zarr / b.zarr
    assert fa == fb and len([k for k in fa if k.startswith("0/") and k[2].isdigit()]) == 3 * 1 * 2
    assert not (tmp_path / "x.tif").exists()


@pytest.mark.parametrize(
    "cmd,out,extra,needle",
    [
        ("lwm", "x.tif", ["--workers", "2"], "need a .zarr output"),
        ("hierarchical", "x.npy", ["--scheduler", "tcp://127.0.0.1:1"], "need a .zarr output"),
        ("lwm", "x.zarr", ["--workers", "0"], "--workers must be >= 1"),
        ("lwm", "x.zarr", ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
    ],
)
def test_bad_cluster_options_one_line_error_before_any_work(tmp_path, capsys, cmd, out, extra, needle):
    args = LWM if cmd == "lwm" else HIER
    capsys.readouterr()
    assert main(["structure", cmd, str(tmp_path / out), *args, *extra]) == 2
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert err.startswith("fibsynth: error:") and needle in err and "\n" not in err
    assert cap.out == "" and list(tmp_path.iterdir()) == []
