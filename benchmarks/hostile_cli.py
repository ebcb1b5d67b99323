"""Try the command line as a careless and a hostile user would (issue 12) and count the clean outcomes.

    PYTHONPATH=src python benchmarks/hostile_cli.py [--only WORD] [--json]

Every case runs ``fibsynth.cli.main`` in this process, in a scratch folder with tiny volumes, foreign files and a
model-like folder. A case is *clean* when its exit status is the expected one, stderr holds at most one line
(``fibsynth: ...``, no traceback, no library warning), and every file the user had is unchanged. The slow commands
(Monte Carlo, GAN, segmentation training) are only given inputs that must be refused before any work.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def digest(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            h.update(str(p.relative_to(path)).encode())
            if p.is_file():
                h.update(p.read_bytes())
    elif path.exists():
        h.update(path.read_bytes())
    return h.hexdigest()


def setup(ws: Path) -> None:
    import tifffile

    from fibsynth.config import VoxelSize
    from fibsynth.io import VolumeMeta, write_volume

    vox = VoxelSize(x=10.0, y=10.0, z=10.0)
    rng = np.random.default_rng(0)
    solid = (rng.random((6, 16, 16)) < 0.4).astype(np.uint8)
    img = rng.random((6, 16, 16)).astype(np.float32)
    write_volume(ws / "s.tif", solid, VolumeMeta(kind="structure", voxel_size_nm=vox))
    write_volume(ws / "s2.tif", 1 - solid, VolumeMeta(kind="structure", voxel_size_nm=vox))
    write_volume(ws / "img.tif", img, VolumeMeta(kind="image", voxel_size_nm=vox))
    write_volume(ws / "p.tif", solid, VolumeMeta(kind="label", voxel_size_nm=vox))
    write_volume(ws / "s.zarr", solid, VolumeMeta(kind="structure", voxel_size_nm=vox))
    tifffile.imwrite(ws / "foreign.tif", (img * 1000).astype(np.uint16))
    (ws / "mydata").mkdir()
    (ws / "mydata" / "notes.txt").write_text("precious\n")
    write_volume(ws / "mydata" / "img.tif", img, VolumeMeta(kind="image", voxel_size_nm=vox))
    (ws / "M").mkdir()
    (ws / "M" / "config.json").write_text("{}")
    (ws / "M" / "model.pt").write_bytes(b"garbage weights")
    (ws / "d.tif").mkdir()
    (ws / "d.tif" / "keep.txt").write_text("keep")
    (ws / "precious.txt").write_text("not a csv\n")
    (ws / "other.csv").write_text("a,b\n1,2")
    (ws / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (ws / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    (ws / "afile").write_text("i am a file")
    (ws / "garbage.pt").write_bytes(b"\x00garbage" * 10)
    (ws / "garbage.json").write_text("{}")
    (ws / "empty.pt").write_bytes(b"")
    (ws / "empty.json").write_text("{}")
    np.save(ws / "v.npy", solid)
    (ws / "v.npy.json").write_text(json.dumps({"voxel_size_nm": {"x": -1, "y": 1, "z": 1}, "fibsynth_version": "0"}))
    np.save(ws / "w.npy", solid)
    (ws / "w.npy.json").write_bytes(b"\xff\xfe not json")
    data = (ws / "img.tif").read_bytes()
    (ws / "trunc.tif").write_bytes(data[: len(data) // 3])
    (ws / "nan.npy").write_bytes(b"")
    np.save(ws / "nan.npy", np.full((2, 4, 4), np.nan, np.float32))
    (ws / "exp.yaml").write_text("name: one\nsteps:\n  gt: {kind: structure, params: {shape: [8, 16, 16], "
                                 "voxel_nm: 5, ligament_nm: 20, seed: 3}}\n")
    (ws / "huge.yaml").write_text("name: big\nsteps:\n  gt: {kind: structure, params: {shape: [4096, 4096, 4096]}}\n")


MC = ["--energy-kev", "2", "--electrons-per-pixel", "10"]
LWM = ["--shape", "8", "8", "8", "--voxel-nm", "10", "--solid-fraction", "0.4", "--ligament-nm", "40"]

# (argv, expected exit status, owner of the command's code)
CASES: list[tuple[list[str], int, str]] = [
    # data lost: folders, foreign files, model folders as outputs
    (["segment", "baseline", "mydata/img.tif", "mydata"], 2, "safety"),
    (["segment", "baseline", "img.tif", "mydata"], 2, "safety"),
    (["segment", "baseline", "img.tif", "d.tif"], 2, "safety"),
    (["segment", "baseline", "img.tif", "foreign.tif"], 2, "safety"),
    (["segment", "baseline", "img.tif", "img.tif"], 2, "safety"),
    (["segment", "baseline", "img.tif", "afile"], 2, "safety"),
    (["segment", "baseline", "img.tif", "out.bmp"], 2, "safety"),
    (["segment", "baseline", "img.tif", "nodir/o.tif"], 2, "safety"),
    (["segment", "baseline", "img.tif", "afile/o.tif"], 2, "safety"),
    (["segment", "predict", "M", "img.tif", "M"], 2, "safety"),
    (["segment", "predict", "M", "img.tif", "img.tif"], 2, "safety"),
    (["segment", "predict", "M", "img.tif", "M/o.tif"], 2, "safety"),
    (["segment", "predict", "M", "img.tif", "o.tif"], 2, "ml"),  # garbage model.pt
    (["segment", "predict", "M", "img.tif", "o.tif", "--device", "banana"], 2, "ml"),
    (["segment", "score", "p.tif", "--truth", "s.tif", "--markdown", "p.tif"], 2, "safety"),
    (["segment", "score", "p.tif", "--truth", "s.tif", "--csv", "s.tif"], 2, "safety"),
    (["segment", "score", "p.tif", "--truth", "s.tif", "--markdown", "mydata"], 2, "safety"),
    (["segment", "score", "p.tif", "--truth", "s.tif", "--markdown", "t.md", "--csv", "t.md"], 2, "safety"),
    (["segment", "score", "p.tif", "--truth", "img.tif"], 2, "safety"),
    (["segment", "score", "trunc.tif", "--truth", "s.tif"], 2, "safety"),
    (["segment", "train", "--images", "img.tif", "--labels", "p.tif", "--mode", "2d", "--out", "p.tif"], 2, "safety"),
    (["segment", "train", "--images", "img.tif", "--labels", "p.tif", "--mode", "2d", "--out", "afile"], 2, "safety"),
    (["segment", "train", "--images", "img.tif", "--labels", "p.tif", "--mode", "4d", "--out", "m2"], 2, "safety"),
    (["fast", "project", "s.tif", "s.tif", "--energy-kev", "2"], 2, "safety"),
    (["fast", "project", "s.tif", "mydata", "--energy-kev", "2"], 2, "safety"),
    (["fast", "project", "s.tif", "out.bmp", "--energy-kev", "2"], 2, "safety"),
    (["fast", "project", "s.tif", "o.tif", "--energy-kev", "30"], 2, "safety"),
    (["fast", "project", "s.tif", "o.tif", "--energy-kev", "2", "--weights", "garbage.pt"], 2, "safety"),
    (["fast", "project", "s.tif", "o.tif", "--energy-kev", "2", "--weights", "empty.pt"], 2, "safety"),
    (["fast", "project", "img.tif", "o.tif", "--energy-kev", "2"], 2, "safety"),
    (["fast", "project", "v.npy", "o.tif", "--energy-kev", "2"], 2, "safety"),
    (["fast", "project", "s.tif", "o.tif", "--energy-kev", "2", "--voxel-nm", "-3"], 2, "safety"),
    (["fast", "eta", "--material", "Au", "--energy-kev", "30"], 2, "safety"),
    (["fast", "eta", "--material", "Au", "--energy-kev", "0.5"], 2, "safety"),
    (["fast", "eta", "--material", "U", "--energy-kev", "2"], 2, "safety"),
    (["fast", "eta", "--material", "Au", "--energy-kev", "2", "--depth-nm", "1e9"], 0, "safety"),
    (["fast", "eta", "--material", "Au", "--energy-kev", "2", "--depth-nm", "0:1e12:1"], 2, "safety"),
    (["fast", "eta", "--material", "Au", "--energy-kev", "2", "--depth-nm", "0:inf:1"], 2, "safety"),
    (["fast", "eta", "--material", "Au", "--energy-kev", "2", "--depth-nm", "nan"], 2, "safety"),
    (["fast", "eta", "--material", "Au", "--energy-kev", "2", "--depth-nm", "-5"], 2, "safety"),
    (["fast", "eta", "--material", "Au", "--energy-kev", "2", "--weights", "garbage.pt"], 2, "safety"),
    (["fast", "eta", "--material", "Au", "--energy-kev", "2", "--weights", "empty.pt"], 2, "safety"),
    (["fast", "eta", "--material", "Xx", "--energy-kev", "2"], 2, "safety"),
    (["fast", "calibrate", "--out", "precious.txt"], 2, "safety"),
    (["fast", "calibrate", "--out", "other.csv", "--restart"], 2, "safety"),
    (["fast", "calibrate", "--out", "mydata"], 2, "safety"),
    (["fast", "calibrate", "--out", "c.csv", "--thickness-nm", "0:1e9:1e-3"], 2, "safety"),
    (["fast", "train-eta", "binary.csv", "--out", "w.pt"], 2, "safety"),
    (["fast", "train-eta", "other.csv", "--out", "w.pt"], 2, "safety"),
    (["fast", "train-eta", "other.csv", "--out", "other.pt"], 2, "safety"),
    (["fast", "train-eta", "precious.txt", "--out", "w.bin"], 2, "safety"),
    (["structure", "lwm", "mydata"] + LWM, 2, "safety"),
    (["structure", "lwm", "foreign.tif"] + LWM, 2, "safety"),
    (["structure", "lwm", "d.tif"] + LWM, 2, "safety"),
    (["structure", "lwm", "afile/x.tif"] + LWM, 2, "safety"),
    (["structure", "lwm", "x.tif", "--shape", "4096", "4096", "4096", "--voxel-nm", "10", "--solid-fraction", "0.4",
      "--ligament-nm", "40"], 2, "safety"),
    (["structure", "lwm", "x.bmp"] + LWM, 2, "safety"),
    (["structure", "lwm", "s.tif"] + LWM, 0, "safety"),  # its own earlier output: replaced
    (["structure", "import", "s.tif", "s.tif"], 2, "safety"),
    (["structure", "import", "img.tif", "t.tif"], 2, "safety"),
    (["structure", "import", "v.npy", "t.tif"], 2, "safety"),
    (["structure", "import", "w.npy", "t.tif"], 2, "safety"),
    (["structure", "import", "trunc.tif", "t.tif"], 2, "safety"),
    (["structure", "import", "s.tif", "mydata"], 2, "safety"),
    (["structure", "import", "s.tif", "t.tif", "--voxel-nm", "0"], 2, "safety"),
    (["info", "v.npy"], 2, "safety"),
    (["info", "w.npy"], 2, "safety"),
    (["info", "trunc.tif"], 2, "safety"),
    (["info", "nan.npy"], 2, "safety"),
    (["info", "binary.csv"], 2, "safety"),
    (["info", "mydata"], 2, "safety"),
    (["info", "nothere.tif"], 2, "safety"),
    (["isotropy", "trunc.tif"], 2, "safety"),
    (["isotropy", "img.tif"], 2, "safety"),
    (["isotropy", "s.tif", "--plot", "s.tif"], 2, "safety"),
    (["isotropy", "s.tif", "--plot", "mydata"], 2, "safety"),
    (["isotropy", "s.tif", "--workers", "0"], 2, "safety"),
    (["evaluate", "p.tif", "--truth", "s2.tif", "--workers", "-1"], 2, "safety"),
    (["evaluate", "p.tif", "--truth", "trunc.tif"], 2, "safety"),
    (["run", "binary.yaml"], 2, "safety"),
    (["run", "exp.yaml", "--workdir", "afile"], 2, "safety"),
    (["run", "huge.yaml", "--workdir", "hw"], 2, "safety"),
    (["run", "nothere.yaml"], 2, "safety"),
    (["run", "exp.yaml", "--workdir", "rw", "--force", "nope"], 2, "safety"),
    (["demo", "--out", "afile"], 2, "safety"),
    # other helpers' commands (physics/montecarlo: mc; gan: ml; synth: pipeline): refused before work?
    (["mc", "stack", "s.tif", "s.tif"] + MC, 2, "mc"),
    (["mc", "stack", "s.tif", "mydata"] + MC, 2, "mc"),
    (["mc", "stack", "s.tif", "out.bmp"] + MC + ["--slices", "0:1"], 2, "mc"),
    (["mc", "layers", "--out", "s.tif", "--film", "epoxy", "--substrate", "Au", "--energy-kev", "2",
      "--thickness-nm", "0:10:10", "--electrons", "10"], 2, "mc"),
    (["mc", "layers", "--out", "mydata", "--film", "epoxy", "--substrate", "Au", "--energy-kev", "2",
      "--thickness-nm", "0:10:10", "--electrons", "10"], 2, "mc"),
    (["mc", "layers", "--out", "l.csv", "--film", "epoxy", "--substrate", "Au", "--energy-kev", "2",
      "--thickness-nm", "0:1e9:1e-3", "--electrons", "10"], 2, "mc"),
    (["gan", "translate", "M", "img.tif", "M"], 2, "ml"),
    (["gan", "translate", "M", "img.tif", "img.tif"], 2, "ml"),
    (["synth", "s.tif", "s.tif", "--energy-kev", "2"], 2, "pipeline"),
    (["synth", "s.tif", "mydata", "--energy-kev", "2"], 2, "pipeline"),
]


def run_case(ws: Path, argv: list[str], expected: int) -> dict:
    from fibsynth.cli import main

    keep = {p.name: digest(p) for p in ws.iterdir()}
    err, out = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = main(argv)
        except BaseException as exc:  # a traceback would reach the user
            import traceback

            traceback.print_exc(file=err)
            rc = f"raised {type(exc).__name__}"
    dt = time.perf_counter() - t0
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    changed = [name for name, d in keep.items() if not (ws / name).exists() or digest(ws / name) != d]
    if expected == 0:  # a command that may replace its own output
        changed = [c for c in changed if c not in argv]
    problems = []
    if rc != expected:
        problems.append(f"exit {rc} (expected {expected})")
    if any("Traceback" in ln for ln in lines):
        problems.append("traceback")
    if expected and (len(lines) != 1 or not lines[0].startswith("fibsynth: ")):
        problems.append(f"{len(lines)} stderr lines")
    if changed:
        problems.append(f"changed {changed}")
    return {"argv": argv, "rc": rc, "clean": not problems, "problems": problems, "line": lines[-1] if lines else "",
            "seconds": round(dt, 2)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=None, help="Run only cases whose command line contains this word.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    cwd = os.getcwd()
    for argv, code, owner in CASES:
        if args.only and args.only not in " ".join(argv):
            continue
        with tempfile.TemporaryDirectory() as d:  # a fresh work folder per case: no case sees another's damage
            ws = Path(d)
            setup(ws)
            os.chdir(ws)
            try:
                r = run_case(ws, argv, code)
                r["owner"] = owner
                results.append(r)
                mark = "ok  " if r["clean"] else "FAIL"
                print(f"{mark} [{owner:8s}] fibsynth {' '.join(argv)}\n       -> {r['rc']}: {r['line'][:150]}"
                      + (f"\n       problems: {'; '.join(r['problems'])}" if r["problems"] else ""), file=sys.stderr)
            finally:
                os.chdir(cwd)
    by_owner: dict[str, list[int]] = {}
    for r in results:
        c = by_owner.setdefault(r["owner"], [0, 0])
        c[0] += 1
        c[1] += r["clean"]
    summary = {"cases": len(results), "clean": sum(r["clean"] for r in results),
               "by_owner": {k: {"cases": v[0], "clean": v[1]} for k, v in by_owner.items()}}
    print(json.dumps(summary) if args.json else summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
