#!/usr/bin/env python3
"""Run every speed benchmark one after another (``make bench``) and print their figures.

Each benchmark is a standalone script in this folder; see its docstring for options. They measure on the machine
that runs them; ratios (e.g. against PENEPMA) are taken in the same run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    ["bench_structure.py"],
    ["bench_metrics.py", "--warm"],
    ["bench_mc.py"],
    # the microscope stage at a short size: speed of apply / correct / non-local means (16 x 256 x 256) and the
    # alignment error at 96 px (2 seeds x 2 structures); the full accuracy run is
    # `bench_microscope.py --parts align,destripe,estimate,charging,speed` (docs/microscope.md)
    ["bench_microscope.py", "--quick", "--parts", "speed,align", "--align-sizes", "96"],
]


def main() -> int:
    failed = []
    for cmd in SCRIPTS:
        path = HERE / cmd[0]
        if not path.is_file():
            print(f"== {cmd[0]}: not present, skipped", flush=True)
            continue
        print(f"\n== {' '.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(path), *cmd[1:]])
        print(f"== {cmd[0]} finished in {time.perf_counter() - t0:.0f} s (exit {rc})", flush=True)
        if rc:
            failed.append(cmd[0])
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
