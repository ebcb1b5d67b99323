"""experiments/paper.yaml with several seeds: each table cell as mean +- sd, with time and memory.

Replicate r runs the paper's design with structure seeds 11/12/13 + 100 r and segmentation seed r (r = 0: the
file's own seeds, i.e. the reduced-size run) in WORKDIR/rep<r>; every step is cached by content, so rerunning the
same command resumes an interrupted set. Then the tables of the finished replicates are aggregated
(fibsynth.experiment.replicates) and written to WORKDIR/replicates.md and .json.

    PYTHONPATH=src nice -n 10 python experiments/paper_replicates.py --workdir /tmp/paper-reps --n 3 --set size=96
    python experiments/paper_replicates.py --workdir /tmp/paper-reps --n 3 --aggregate-only
    python experiments/paper_replicates.py --workdir /tmp/paper-reps --n 3 --costs-only   # an unfinished set's costs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml

from fibsynth.experiment.replicates import (aggregate, costs, costs_markdown, finished, replicate_dirs,
                                            run_replicate)

PAPER = Path(__file__).with_name("paper.yaml")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--n", type=int, default=3, help="replicates (>= 3 for a spread)")
    ap.add_argument("--set", action="append", default=[], metavar="VAR=VALUE", help="override a variable of paper.yaml")
    ap.add_argument("--aggregate-only", action="store_true", help="only aggregate the finished replicates")
    ap.add_argument("--costs-only", action="store_true",
                    help="only the costs of the steps finished so far in every replicate folder (finished or not)")
    ap.add_argument("--experiment", type=Path, default=PAPER)
    a = ap.parse_args(argv)
    overrides = {}
    for s in a.set:
        k, _, v = s.partition("=")
        overrides[k] = yaml.safe_load(v)
    t0 = time.perf_counter()
    if a.costs_only:  # an interrupted set: what its finished steps cost
        c = costs([d for d in replicate_dirs(a.workdir, a.n) if d.is_dir()])
        md = [f"steps finished so far in {c['replicates']} replicate folder(s) of {a.experiment.name} "
              f"({', '.join(a.set) or 'default variables'}); per kind and folder: {c['steps_per_kind']}", "",
              costs_markdown(c), ""]
        (a.workdir / "costs.md").write_text("\n".join(md))
        (a.workdir / "costs.json").write_text(json.dumps(c, indent=1, default=str))
        print("\n".join(md))
        return 0
    if not a.aggregate_only:
        for r in range(a.n):  # one at a time, so that a finished replicate is usable while the next runs
            load = os.getloadavg()
            print(f"replicate {r}: load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}", flush=True)
            t = time.perf_counter()
            run_replicate(a.experiment, a.workdir, r, overrides=overrides)
            load = os.getloadavg()
            print(f"replicate {r}: {time.perf_counter() - t:.0f} s wall; load average now {load[0]:.1f} / "
                  f"{load[1]:.1f} / {load[2]:.1f}", flush=True)
    done = finished(replicate_dirs(a.workdir, a.n))
    if not done:
        print("no finished replicate yet", file=sys.stderr)
        return 1
    agg = aggregate(done)
    md = [f"{len(done)} replicate(s) of {a.experiment.name} ({', '.join(a.set) or 'default variables'}); "
          "each cell mean +- sd over the replicates", ""]
    for name, table in agg["tables"].items():
        md += [f"**{name}**", "", table, ""]
    for name, table in agg["paired"].items():
        md += [f"**{name}, within-replicate differences** (mean +- sd [95 % t-interval of the mean])", "", table, ""]
    md += ["**costs**", "", costs_markdown(agg["costs"]), ""]
    (a.workdir / "replicates.md").write_text("\n".join(md))
    (a.workdir / "replicates.json").write_text(json.dumps(agg, indent=1, default=str))
    print("\n".join(md))
    print(f"total {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
