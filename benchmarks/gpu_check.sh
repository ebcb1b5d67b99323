#!/usr/bin/env bash
# One prepared run on a lent GPU node (the device tool: one H200 + 16 CPU cores): every GPU / 16-core figure the
# issues ask for, in priority order, each step under its own time limit so that a slow step cannot eat the rest.
#
#   bash benchmarks/gpu_check.sh                 # on the GPU node, OUT=<folder for the results>
#   PY=.venv/bin/python QUICK=1 OUT=/tmp/g bash benchmarks/gpu_check.sh   # dry run on a CPU machine (tiny sizes)
#
# Missing Python packages travel as wheels in .whl/ (git-ignored; see /work/.library/device/README.md): the node's
# image has torch, numba, scipy, scikit-image, lightning, but not pydantic, zarr, dask or MONAI.
# Results: $OUT/*.json and $OUT/log.txt; a table of the main figures is printed last.
set -u
PY=${PY:-python3}
OUT=${OUT:-/tmp/gpu_check}
QUICK=${QUICK:-0}
mkdir -p "$OUT"
if [ -d .whl ] && [ "$PY" = python3 ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
T0=$(date +%s)
stamp() { echo "## [$(( $(date +%s) - T0 )) s] $*"; }
{
stamp "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | head -3
nproc; $PY -c "import torch, numba, numpy, fibsynth; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
'numba', numba.__version__, 'numpy', numpy.__version__, 'threads', torch.get_num_threads())"

# 1. Monte Carlo torch path on the GPU (issue 16): bulk Au at 1/2/4 keV, one gold/epoxy slice and the same slice
#    with open pores (vacuum, issue 17), marginal rates.
#    Session 7's run aborted on a device-side index assert; first a short run in check mode (every table index
#    checked on the host, launches synchronous) so that a remaining bad index is named, then the timed run.
stamp "bench_mc_gpu, check mode"
if [ "$QUICK" = 1 ]; then MCG="--device cpu --electrons 4000 --batch 4000 --repeats 1 --slice-size 16 --slice-electrons 4 --open-pores"
     MCK="$MCG"
else MCG="--device cuda --repeats 2 --open-pores"; MCK="--device cuda --electrons 200000 --repeats 1 --open-pores"; fi
FIBSYNTH_TORCH_CHECK=1 CUDA_LAUNCH_BLOCKING=1 timeout 120 $PY benchmarks/bench_mc_gpu.py $MCK --json \
    > "$OUT/mc_gpu_check.json" 2> "$OUT/mc_gpu_check.err"; echo "rc $?"; tail -3 "$OUT/mc_gpu_check.err"
stamp "bench_mc_gpu"
timeout 120 $PY benchmarks/bench_mc_gpu.py $MCG --json > "$OUT/mc_gpu.json" 2> "$OUT/mc_gpu.err"; echo "rc $?"
tail -3 "$OUT/mc_gpu.err"

# 2. the tests that skip without CUDA (session 7 gave them 50 s, which CUDA start-up and compilation used up)
stamp "CUDA tests"
timeout 180 $PY -m pytest -q -p no:cacheprovider -rfs --tb=line tests/physics/test_gpu_path.py \
    tests/reconstruct/test_predict_blocks.py tests/ml/test_toolkit.py -k "cuda or gpu or device" 2>&1 | tail -15

# 3. (TIMING=1, the default) the size-dependent reconstruct steps at 64^3..160^3 (16 threads, prediction on the GPU)
[ "${TIMING:-1}" = 1 ] && {
stamp "reconstruct step timing"
if [ "$QUICK" = 1 ]; then TM="--timing 24 32 --device cpu --threads 2"; else TM="--timing 64 112 160 --device cuda --threads 16"; fi
timeout 150 $PY benchmarks/bench_reconstruct.py $TM --out /tmp/gpu_timing > "$OUT/timing_log.txt" 2>&1; echo "rc $?"
cp /tmp/gpu_timing/timing/timing.json "$OUT/timing.json" 2>/dev/null
}

# 4. (RECON=1; measured in session 7: 112 s, MDS 0.917) the whole reconstruct command on one GPU + 16 threads,
#    on a test stack of the issue's size (fast imaging)
[ "${RECON:-0}" = 1 ] && {
stamp "reconstruct on the GPU"
if [ "$QUICK" = 1 ]; then RC="--shape 24 64 64 --budget-min 1 --device cpu --threads 2"
else RC="--shape 128 192 192 --device cuda --threads 16"; fi
timeout 330 $PY benchmarks/bench_reconstruct.py $RC --kinds grf --imaging fast --no-adapt-baseline \
    --out /tmp/gpu_recon > "$OUT/reconstruct_log.txt" 2>&1; echo "rc $?"
cp /tmp/gpu_recon/results.json "$OUT/reconstruct.json" 2>/dev/null
tail -5 "$OUT/reconstruct_log.txt"
}

# 5. (SCALING=1; measured in session 7: 16 processes 10.4x one) numba Monte Carlo on 16 cores
[ "${SCALING:-0}" = 1 ] && {
stamp "MC scaling on 16 cores"
if [ "$QUICK" = 1 ]; then SC="--procs 1,2 --dask-workers 2 --slices 2 --pixels 16 --per-pixel 2"
else SC="--procs 1,16 --dask-workers 16 --slices 32 --pixels 128 --per-pixel 20"; fi
NUMBA_NUM_THREADS=1 timeout 90 $PY benchmarks/bench_mc.py --scaling $SC --repeats 1 --tracking block --json \
    > "$OUT/mc_scaling.json"; echo "rc $?"
}
stamp "done"
} 2>&1 | tee "$OUT/log.txt"

# the main figures, last (the device tool returns the end of the output)
$PY - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(n):
    try:
        return json.loads((out / n).read_text().strip().splitlines()[-1]) if n.endswith("mc_gpu.json") or n.endswith("scaling.json") else json.loads((out / n).read_text())
    except Exception as e:
        print(f"{n}: missing ({type(e).__name__})"); return None
g = load("mc_gpu.json")
if g:
    print("MC torch path on", g.get("device_name"))
    for r in g["rows"]:
        print(f"  {r['target'][:60]:60s} {r['electrons_per_s']:.3g} e/s  512^3x100: {r['stack_512_100epp_hours']:.3g} h")
s = load("mc_scaling.json")
if s:
    for kind in ("pool", "dask"):
        for p, v in s["scaling"].get(kind, {}).items():
            print(f"  numba stack {kind} {p}: {v['electrons_per_s']:.3g} e/s, speed-up {v.get('speedup', 0):.2f}")
r = load("reconstruct.json")
if r:
    for row in r["rows"]:
        print(f"reconstruct {row['kind']} {row['shape']} on {row.get('device')}: MDS {row['U-Net adapted: MDS']:.3f} "
              f"(Otsu {row['Otsu: MDS']:.3f}) in {row['U-Net adapted: seconds']} s")
        for st in row.get("steps") or []:
            print(f"    {st['step']:16s} {st['status']:7s} {st['seconds']:8.1f} s")
t = load("timing.json")
if t:
    for row in t["rows"]:
        print("  timing", row)
EOF
