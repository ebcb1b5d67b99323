"""``fibsynth reconstruct``: from the user's real FIB-SEM stack to a 3D segmentation they can trust (issue 14).

Steps (each a content-cached step of the experiment engine's cache, :mod:`fibsynth.experiment.cache`, under
``OUT/work/cache/<key>``: a key is the hash of the step's parameters and its inputs' keys, so a crash or a changed
parameter redoes only what depends on it):

1. ``inspect``   read the stack, measure histogram / noise / stripes / drift, apply the corrections asked for;
2. ``estimate``  first-pass segmentations (Otsu, k-means) -> structure estimates with uncertainties;
3. ``generate``  training and held-out structures around the estimates, imaged (fast path or Monte Carlo) and
                 augmented with randomised microscope artifacts;
4. ``adapt``     the synthetic -> real gray-value map: the real stack's quantiles (histogram matching, the default)
                 or a small CycleGAN trained on this stack; ``translate`` applies it;
5. ``train``     the 2.5D U-Net on the adapted images, validated on held-out synthetic structures (and compared
                 with Otsu on the same validation data); ``seg_seeds`` networks with seeds seed, seed + 1, ...;
6. ``predict``   P(solid) of the whole real stack, block by block, with each network; ``choose_seed`` keeps the
                 one whose segmentation, imaged again, correlates best with the real stack
                 (:func:`fibsynth.reconstruct.estimate.choose_candidate`, label-free), or, with
                 ``seg_combine="mean"``, ``combine`` averages their P(solid) (an ensemble);
   ``reestimate`` the structure from the reconstruction; if it moved beyond the uncertainties, steps 3-6 run once
                 more around the new estimate (the adaptation model is reused; its U-Nets train ``round2_steps`` of
                 round 1's optimizer steps, from random weights or, ``round2_init="round1"``, from round 1's
                 networks), and the second round is kept only
                 when its reconstruction, imaged again, looks more like the real stack than the first round's
                 (:func:`fibsynth.reconstruct.estimate.forward_consistency`, label-free);
7. ``evaluate``  solid fraction, ligament diameters and isotropy errors of the result, of Otsu and of k-means
                 (and scores against a ground truth when one is given, for benchmarks);
then the outputs (segmentation, probability, confidence, baselines, ``summary.json``) and ``report.html``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import re
import shutil
import stat
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from fibsynth import __version__
from fibsynth.config import VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.ml.runtime import lightning_device, resolved_device
from fibsynth.reconstruct.settings import DEFAULT_ENERGY_KEV, ReconstructSettings, check_imaging

WORK = "work"


class _Console:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self._status = None
        if not quiet:
            from rich.console import Console

            self.c = Console(stderr=True)

    #: without a terminal (a batch job's log), a long step's progress is printed as a line at most this often (s)
    PROGRESS_LINE_S = 60.0

    def status(self, text: str):
        self._status, self._last_line, self._lines = None, time.perf_counter(), 0
        self._status_text = text[:-4] if text.endswith(" ...") else text
        if self.quiet:
            return contextlib.nullcontext()
        st = self.c.status(text)
        self._status = st
        return st

    def progress(self, done: int, total: int, unit: str) -> None:
        """Progress of the running step (``done`` of ``total`` ``unit``): the spinner's text on a terminal; in a log
        (no terminal) a line at most every :attr:`PROGRESS_LINE_S` seconds, so a long step is never silent."""
        if self.quiet or self._status is None:
            return
        text = f"{self._status_text}: {done}/{total} {unit}"
        if self.c.is_terminal:
            self._status.update(text + " ...")
        elif time.perf_counter() - self._last_line >= self.PROGRESS_LINE_S or (done == total and self._lines):
            self._last_line = time.perf_counter()
            self._lines += 1  # the last count only after earlier ones (a short step prints none)
            self.c.print(f"[dim]  {text}[/]", soft_wrap=True)

    def print(self, text: str) -> None:
        if not self.quiet:
            self.c.print(text, soft_wrap=True)  # whole lines in a log file (no wrap at 80 columns)


class _Steps:
    """Run or reuse content-cached steps."""

    def __init__(self, work: Path, console: _Console):
        from fibsynth.experiment.cache import Cache

        self.cache = Cache(work)
        self.console = console
        self.log: list[dict[str, Any]] = []

    @staticmethod
    def key(name: str, params: dict[str, Any], inputs: dict[str, str]) -> str:
        """The cache key of step ``name`` with these parameters and inputs (what :meth:`__call__` uses)."""
        from fibsynth.experiment.cache import step_key

        return step_key("reconstruct." + name, params, inputs)

    def __call__(self, name: str, params: dict[str, Any], inputs: dict[str, str], fn: Callable[[Path], dict],
                 message: str) -> tuple[str, Path, dict]:
        key = self.key(name, params, inputs)
        t0 = time.perf_counter()
        if self.cache.done(key):
            rec = self.cache.record(key)
            self.log.append({"step": name, "status": "cached", "seconds": 0.0, "key": key[:12]})
            self.console.print(f"[dim]{name}: cached[/]")
            return key, self.cache.path(key), rec
        record: dict[str, Any] = {"step": name, "params": params, "inputs": inputs}
        with self.console.status(message + " ..."):
            with self.cache.writing(key, record) as tmp:
                record["result"] = fn(tmp)
                record["seconds"] = time.perf_counter() - t0
        dt = time.perf_counter() - t0
        self.log.append({"step": name, "status": "ran", "seconds": round(dt, 2), "key": key[:12]})
        self.console.print(f"[green]{name}[/] {message} ({dt:.1f} s)")
        return key, self.cache.path(key), record

    def _record(self, key: str) -> dict | None:
        try:
            return self.cache.record(key) if self.cache.done(key) else None
        except (OSError, ValueError):
            return None

    def files(self, name: str, out: Path, items: dict[str, tuple[dict[str, Any], dict[str, str],
                                                                   Callable[[Path], dict | None]]],
              message: str) -> dict[str, dict]:
        """A step whose products are files in the output folder ``out`` (the user's), not in the cache: ``items``
        maps each file's name to ``(params, inputs, write)``; ``write(path)`` writes the file (atomically) and may
        return values to keep. Each file has a cache entry of its own, keyed by the step, the file's name, ``out``'s
        path, its ``params`` (what the file holds beyond its inputs: the metadata) and its ``inputs`` (the keys of
        the steps whose results it holds), that records the file as written (:func:`output_stamp`: size, times,
        inode) and the values. A file whose entry exists and which is still as written is not written again; a
        file that is missing, was edited or replaced (by the user, or by a run with other settings) is. Returns
        each file's values."""
        t0 = time.perf_counter()
        where = str(Path(out).resolve())
        keys, values, todo = {}, {}, []
        for f, (params, inputs, _) in items.items():
            keys[f] = self.key(name, {"file": f, "out": where, **params}, inputs)
            rec = self._record(keys[f])
            stamp = output_stamp(out / f)
            if rec is not None and stamp is not None and (rec.get("result") or {}).get("stamp") == stamp:
                values[f] = rec["result"].get("values") or {}
            else:
                todo.append(f)
        if not todo:
            self.log.append({"step": name, "status": "cached", "seconds": 0.0, "key": keys[next(iter(items))][:12]})
            self.console.print(f"[dim]{name}: cached ({', '.join(items)} as written)[/]")
            return values
        with self.console.status(message + " ..."):
            for f in todo:
                params, inputs, write = items[f]
                values[f] = write(out / f) or {}
                record = {"step": name, "params": {"file": f, "out": where, **params}, "inputs": inputs,
                          "result": {"stamp": output_stamp(out / f), "values": values[f]}}
                with self.cache.writing(keys[f], record):
                    pass
        dt = time.perf_counter() - t0
        self.log.append({"step": name, "status": "ran", "seconds": round(dt, 2), "key": keys[todo[0]][:12],
                         "files": todo})
        kept = len(items) - len(todo)
        self.console.print(f"[green]{name}[/] wrote {', '.join(todo)} ({dt:.1f} s"
                           + (f"; {kept} unchanged, not rewritten)" if kept else ")"))
        return values

    def partial(self, key: str) -> Path:
        """The folder for the unfinished work of step ``key`` that a rerun resumes (``WORK/partial/<key>``: outside
        the cache, so a crash or Ctrl-C, which discards the step's temporary folder, keeps it)."""
        return self.cache.root.parent / "partial" / key


def output_stamp(path: Path) -> list[int] | None:
    """One written state of an output file: its size, modification and change times and inode (an edit, a copy
    or a replacement changes at least one of them: :func:`fibsynth.io.atomic_path` gives every write a new inode);
    None where it is missing or not a plain file (a link is never taken for the output)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


#: settings that change where and how fast a run computes, not what it writes: left out of the outputs' and the
#: report's keys (a rerun with another ``--threads`` rewrites nothing; the files keep the values of the run that
#: wrote them)
RUN_ONLY_SETTINGS = ("threads", "device")
#: the summary's entries about the run itself rather than its result (same reason)
RUN_ONLY_SUMMARY = ("steps", "seconds_total", "threads", "threads_choice", "device")


def meta_key(meta: Any) -> dict[str, Any]:
    """The metadata of an output as its key sees it (:data:`RUN_ONLY_SETTINGS` left out)."""
    m = json.loads(meta.to_json())
    st = (m.get("parameters") or {}).get("settings")
    if isinstance(st, dict):
        m["parameters"]["settings"] = {k: v for k, v in st.items() if k not in RUN_ONLY_SETTINGS}
    m.pop("fibsynth_version", None)  # in every key already
    return m


def summary_key(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as the report's key sees it: :data:`RUN_ONLY_SUMMARY` and :data:`RUN_ONLY_SETTINGS` left out."""
    core = {k: v for k, v in summary.items() if k not in RUN_ONLY_SUMMARY}
    if isinstance(core.get("settings"), dict):
        core["settings"] = {k: v for k, v in core["settings"].items() if k not in RUN_ONLY_SETTINGS}
    return json.loads(json.dumps(core, default=str))


class LazyConfidence:
    """The confidence |2P - 1| of a (memory-mapped) probability map, computed for the part indexed only (the
    report's three planes), exactly as :func:`confidence_blocks` computes it."""

    def __init__(self, prob: np.ndarray):
        self.prob, self.shape, self.ndim, self.dtype = prob, tuple(prob.shape), prob.ndim, np.dtype(np.float32)

    def __getitem__(self, idx: Any) -> np.ndarray:
        return np.abs(2.0 * np.asarray(self.prob[idx], np.float32) - 1.0)


def _save(path: Path, arr: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(arr))


def _file_id(path: Path) -> dict[str, Any]:
    st = os.stat(path)
    if path.is_dir():  # folder of slices or Zarr: size and time of every entry
        ents = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*") if p.is_file())
        import hashlib

        return {"path": str(path.resolve()), "entries": len(ents),
                "digest": hashlib.sha256(json.dumps(ents).encode()).hexdigest()[:16]}
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


NOT_KEYED = {"accelerator", "devices"}  # where a model trains does not change what the step means


def _seg_settings(s: ReconstructSettings, side: int, nz: int) -> tuple[Any, dict[str, Any]]:
    from fibsynth.segment.train import TrainSettings

    div = 2 ** (len(s.seg_features) - 1)
    patch = 64 if side >= 64 else max(div, (side // div) * div)
    if s.mode == "3d":
        patch = min(patch, max(div, (nz // div) * div))
    steps = s.seg_steps or int(np.clip(40 * s.budget_min, 100, 600))
    per_epoch_steps = max(1, min(20, steps))
    epochs = max(1, math.ceil(steps / per_epoch_steps))
    k = int(s.seg_k) if s.mode == "2.5d" else 2  # 2d / 3d: no context slices (k unused; their keys as before)
    ts = TrainSettings(mode=s.mode, k=k, features=tuple(s.seg_features), num_res_units=1, patch=patch,
                       stride=patch // 2, batch=s.seg_batch, epochs=epochs, lr=2e-3, lr_patience=4,
                       early_stop=max(8, epochs // 3), augment="dihedral", seed=int(s.seed),
                       patches_per_epoch=per_epoch_steps * s.seg_batch, **lightning_device(s.device))
    return ts, {"optimizer_steps": epochs * per_epoch_steps, "epochs": epochs, "steps_per_epoch": per_epoch_steps,
                "patch": patch, "batch": s.seg_batch,
                **({"context_slices_each_side": k} if s.mode == "2.5d" else {})}


def predict_batch(device: str) -> int:
    """Patches per forward pass when segmenting the real stack: a GPU wants more work per launch."""
    return 16 if device.startswith("cuda") else 4


#: at most this many voxels per block of the prediction: a block's input, its normalised copy, the 2.5D stacks and
#: the output held ~1.3 GB (RssAnon) for 32 slices of 1024 x 1024; larger slices get fewer slices per block
PREDICT_BLOCK_VOXELS = 32 * 1024 * 1024


def predict_block_slices(block: int, shape: tuple[int, ...]) -> int:
    """Slices per block of the prediction: ``block`` (the ``--block`` setting), fewer where the slices are so large
    that ``block`` of them would exceed :data:`PREDICT_BLOCK_VOXELS` (8 of 2048 x 2048, 2 of 4096 x 4096): memory
    then stays that of 32 slices of 1024 x 1024 whatever the slice size. Stacks of slices up to 1024 x 1024 keep
    ``block``."""
    per_slice = max(1, int(np.prod(shape[1:])))
    return max(1, min(int(block), PREDICT_BLOCK_VOXELS // per_slice))


def _alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


def predict_blocks(model_dir: Path, stack_npy: Path, out_npy: Path, *, block: int = 32, tta: int = 1,
                   device: str = "cpu", progress: Callable[[int, int], None] | None = None,
                   resume: Path | None = None) -> dict[str, Any]:
    """P(solid) of a stack stored as ``.npy`` into ``out_npy``, block by block with bounded memory: the stack is
    memory-mapped, each block of ``block`` output slices (plus the network's neighbour slices) is read, predicted
    (:func:`fibsynth.segment.infer.predict_array` with ``z_range``; ``tta``: averaged over that many in-plane
    symmetries) and written into a memory-mapped ``.npy``, so only one block is held in memory whatever the stack's
    size. ``progress(done, total)`` is called after each block (slices done, slices in all).

    ``resume``: a folder that keeps the unfinished map and the number of slices done (``done.json``, written after
    each block is flushed to disk): an interrupted run (Ctrl-C, a killed job) that calls this again with the same
    folder goes on from the first block not done (each block's probabilities depend only on the stack and the
    model, so the map is the one an uninterrupted run writes); at the end the map is moved to ``out_npy`` and the
    folder removed. A folder in use by a live process (its pid in ``done.json``) is not touched: the map is then
    computed afresh into ``out_npy``. Returns the solid fraction (P > 0.5), the number of blocks and, when it
    resumed, ``resumed_at_slice``."""
    from fibsynth.io import atomic_path
    from fibsynth.segment.infer import predict_array
    from fibsynth.segment.model import load_model

    dev = resolved_device(device)
    model = load_model(str(model_dir), dev)
    batch = predict_batch(dev)
    src = np.load(stack_npy, mmap_mode="r")
    b = predict_block_slices(block, src.shape)
    z_start, solid, part, out = 0, 0, Path(out_npy), None
    if resume is not None:
        state_file = Path(resume) / "done.json"
        try:
            state = json.loads(state_file.read_text())
        except (OSError, ValueError):
            state = None
        if state is not None and state.get("pid") != os.getpid() and _alive(state.get("pid")):
            resume = None  # another live run is filling this folder
        else:
            Path(resume).mkdir(parents=True, exist_ok=True)
            part = Path(resume) / "probability.npy"
            if (state is not None and state.get("shape") == list(src.shape) and state.get("block") == b
                    and part.is_file()):
                out = np.load(part, mmap_mode="r+")
                z_start, solid = int(state["slices"]), int(state["solid"])
    if out is None:
        out = np.lib.format.open_memmap(part, mode="w+", dtype=np.float32, shape=src.shape)
    for z0 in range(z_start, src.shape[0], b):
        z1 = min(z0 + b, src.shape[0])
        p = predict_array(model, src, block=b, z_range=(z0, z1), probabilities=True, tta=tta, device=dev,
                          batch=batch)
        out[z0:z1] = p
        solid += int(np.count_nonzero(p > 0.5))
        if resume is not None:  # the block is on disk before the count says so
            out.flush()
            with atomic_path(state_file) as tmp:
                tmp.write_text(json.dumps({"shape": list(src.shape), "block": b, "slices": z1, "solid": solid,
                                           "pid": os.getpid()}))
        if progress is not None:
            progress(z1, int(src.shape[0]))
    out.flush()
    del out
    if resume is not None:
        os.replace(part, out_npy)
        remove_partial(Path(resume))
    rec = {"solid_fraction": solid / max(1, int(np.prod(src.shape))), "blocks": -(-src.shape[0] // b)}
    if z_start:
        rec["resumed_at_slice"] = z_start
    return rec


def threshold_blocks(src: np.ndarray, threshold: float, out_npy: Path, block: int = 32) -> float:
    """``src > threshold`` (uint8) of a (memory-mapped) stack into a memory-mapped ``out_npy``, ``block`` slices at a
    time, so memory does not grow with the stack. Returns the solid fraction."""
    out = np.lib.format.open_memmap(out_npy, mode="w+", dtype=np.uint8, shape=tuple(src.shape))
    n = 0
    step = max(1, int(block))
    for z0 in range(0, src.shape[0], step):
        b = np.asarray(src[z0:z0 + step]) > threshold
        out[z0:z0 + step] = b
        n += int(np.count_nonzero(b))
    out.flush()
    del out
    return n / max(1, int(np.prod(src.shape)))


def mean_blocks(srcs: list[Path], out_npy: Path, block: int = 32) -> None:
    """The mean of several float32 probability maps (``.npy``, read memory-mapped) into a memory-mapped ``out_npy``,
    ``block`` slices at a time, so memory does not grow with the stack (an ensemble of networks)."""
    maps = [np.load(p, mmap_mode="r") for p in srcs]
    shape = tuple(maps[0].shape)
    if any(tuple(m.shape) != shape for m in maps):
        raise FibsynthError(f"probability maps differ in shape: {[tuple(m.shape) for m in maps]}")
    out = np.lib.format.open_memmap(out_npy, mode="w+", dtype=np.float32, shape=shape)
    step = max(1, int(block))
    for z0 in range(0, shape[0], step):
        acc = np.zeros((min(step, shape[0] - z0),) + shape[1:], np.float64)
        for m in maps:
            acc += np.asarray(m[z0:z0 + step], np.float64)
        out[z0:z0 + step] = (acc / len(maps)).astype(np.float32)
    out.flush()
    del out


def confidence_blocks(prob: np.ndarray, out_npy: Path, block: int = 32) -> float:
    """The confidence |2P - 1| (float32) of a (memory-mapped) probability map into a memory-mapped ``out_npy``, block
    by block. Returns the fraction of voxels below 0.5 (P between 0.25 and 0.75), for the report."""
    out = np.lib.format.open_memmap(out_npy, mode="w+", dtype=np.float32, shape=tuple(prob.shape))
    low = 0
    step = max(1, int(block))
    for z0 in range(0, prob.shape[0], step):
        c = np.abs(2.0 * np.asarray(prob[z0:z0 + step], np.float32) - 1.0)
        out[z0:z0 + step] = c
        low += int(np.count_nonzero(c < 0.5))
    out.flush()
    del out
    return low / max(1, int(np.prod(prob.shape)))


def write_baselines(out: Path, eval_dir: Path | dict[str, Path], label_meta: Any, real_path: Path) -> None:
    """``otsu.tif`` and ``kmeans.tif`` from the baseline steps' segmentations (``eval_dir``: one folder holding
    ``otsu.npy`` and ``kmeans.npy``, or each method's folder), read memory-mapped (at 1000 x 2048 x 2048 each is
    4 GB; the TIFF writer reads them in pieces)."""
    from fibsynth.io import write_volume

    for fn in BASELINES:
        d = eval_dir[fn] if isinstance(eval_dir, dict) else eval_dir
        write_volume(out / f"{fn}.tif", np.load(d / f"{fn}.npy", mmap_mode="r"),
                     baseline_meta(label_meta, fn, real_path))


def baseline_meta(label_meta: Any, method: str, real_path: Path) -> Any:
    """The metadata of ``otsu.tif`` / ``kmeans.tif`` (``method``: a key of :data:`BASELINES`)."""
    return label_meta.model_copy(update={"generator": f"fibsynth reconstruct: global {BASELINES[method]} threshold",
                                         "parameters": {"real_stack": str(real_path)}})


def confidence_fraction(prob: np.ndarray, block: int = 32) -> float:
    """The fraction of voxels whose confidence |2P - 1| is below 0.5 (:func:`confidence_blocks`' count, without
    writing the map), block by block."""
    low, step = 0, max(1, int(block))
    for z0 in range(0, prob.shape[0], step):
        low += int(np.count_nonzero(np.abs(2.0 * np.asarray(prob[z0:z0 + step], np.float32) - 1.0) < 0.5))
    return low / max(1, int(np.prod(prob.shape)))


def report_inputs(rounds: list[dict[str, Any]]) -> dict[str, str]:
    """The keys of the steps whose files the report reads beyond the stack and the evaluation: each round's
    generated and adapted sets, networks (their training curves) and predictions."""
    keys: dict[str, str] = {}
    for r in rounds:
        i = r["round"]
        keys[f"round{i}_generate"] = r["generate"]["key"]
        if r.get("adapt"):
            keys[f"round{i}_adapt"] = r["adapt"]["key"]
        keys[f"round{i}_predict"] = r["predict"]["key"]
        for j, c in enumerate(r["candidates"]):
            keys[f"round{i}_train{j}"] = c["train"]["key"]
            keys[f"round{i}_predict{j}"] = c["predict"]["key"]
    return keys


def segmentation_row(seg: np.ndarray, phi: float, vz, functions_file: Path, truth: np.ndarray | None
                     ) -> dict[str, Any]:
    """The evaluation's row of one segmentation of the whole stack (memory-mapped): its solid fraction ``phi``,
    the statistics of its central crop (:func:`crop_statistics`, the directional functions into ``functions_file``)
    and, with a ``truth`` of the same stack, MDS / MP / MGP against it."""
    from fibsynth.metrics import evaluate_segmentation
    from fibsynth.reconstruct.estimate import _crop

    row: dict[str, Any] = {"solid_fraction": phi}
    if 0 < phi < 1:
        row.update(crop_statistics(np.asarray(_crop(seg)), vz, functions_file))
    if truth is not None:
        sc = evaluate_segmentation(seg, truth)
        row.update({"MDS": float(sc["MDS"]), "MP %": float(sc["MP"]), "MGP %": float(sc["MGP"])})
    return row


#: the global-threshold baselines of the evaluation (step name -> the evaluation's row)
BASELINES = {"otsu": "Otsu", "kmeans": "k-means"}


def baseline_step(steps: _Steps, method: str, real: np.ndarray, k_in: str, vz, block: int,
                  truth: np.ndarray | None, truth_id: dict[str, Any] | None) -> tuple[str, Path, dict]:
    """The global ``method`` threshold (``otsu`` or ``kmeans``, :mod:`fibsynth.segment.baseline`) of the stored
    stack ``real`` (step ``k_in``): its segmentation of the whole stack block by block into ``METHOD.npy`` and its
    evaluation row (:func:`segmentation_row`). A cached step of its own, keyed by the stack (and the ground truth)
    only: whatever the networks do, a rerun reuses it."""
    from fibsynth.reconstruct.estimate import THICKNESS_MAX_PX
    from fibsynth.segment.baseline import kmeans_threshold, otsu_threshold

    def do_baseline(d: Path) -> dict:
        thr = otsu_threshold(real) if method == "otsu" else kmeans_threshold(real)[0]
        phi = threshold_blocks(real, thr, d / f"{method}.npy", block)
        row = segmentation_row(np.load(d / f"{method}.npy", mmap_mode="r"), phi, vz, d / "functions.npz", truth)
        return {"threshold": float(thr), "row": row}

    return steps(method, {"truth": truth_id, "blocks": "memmap",
                          "statistics_grid": {"max_px": THICKNESS_MAX_PX, "percentile": 90}},
                 {"real": k_in}, do_baseline, f"segmenting the stack by the global {BASELINES[method]} threshold")


def evaluate_step(steps: _Steps, k_pred: str, d_pred: Path, k_in: str, base: dict[str, tuple[str, Path, dict]],
                  vz, block: int, truth: np.ndarray | None, truth_id: dict[str, Any] | None) -> tuple[str, Path]:
    """Step 7: the evaluation of the chosen prediction (step ``k_pred``, folder ``d_pred``) beside the baselines
    (``base``: :func:`baseline_step`'s results by method): the U-Net's segmentation of the whole stack block by
    block into a memory-mapped ``segmentation.npy`` (memory does not grow with the stack), its row
    (:func:`segmentation_row`), the baselines' rows with their directional functions copied here (the report reads
    every row's functions from this folder), and with a ground truth its own row; ``evaluation.json``."""
    from fibsynth.reconstruct.estimate import THICKNESS_MAX_PX

    def do_evaluate(d: Path) -> dict:
        prob = np.load(d_pred / "probability.npy", mmap_mode="r")
        phi = threshold_blocks(prob, 0.5, d / "segmentation.npy", block)
        res = {"U-Net (fibsynth)": segmentation_row(np.load(d / "segmentation.npy", mmap_mode="r"), phi, vz,
                                                    d / "functions_0.npz", truth)}
        for i, m in enumerate(BASELINES, start=1):
            _, d_b, rec = base[m]
            row = dict(rec["result"]["row"])
            if row.get("functions_file"):
                shutil.copyfile(d_b / row["functions_file"], d / f"functions_{i}.npz")
                row["functions_file"] = f"functions_{i}.npz"
            res[BASELINES[m]] = row
        if truth is not None:
            res["ground truth"] = segmentation_row(truth, float(truth.mean()), vz, d / f"functions_{len(res)}.npz",
                                                   None)
        (d / "evaluation.json").write_text(json.dumps(res))
        return {}

    k_ev, d_ev, _ = steps("evaluate", {"truth": truth_id, "blocks": "memmap",
                                       "statistics_grid": {"max_px": THICKNESS_MAX_PX, "percentile": 90}},
                          {"prediction": k_pred, "real": k_in, **{m: base[m][0] for m in BASELINES}},
                          do_evaluate, "measuring the result")
    return k_ev, d_ev


def crop_statistics(crop: np.ndarray, vz, functions_file: Path | None = None) -> dict[str, Any]:
    """Ligament and pore diameters (3D local thickness) and isotropy errors of a binary crop, each phase measured on
    the grid :func:`fibsynth.reconstruct.estimate.thickness_steps` chooses for it: the full resolution for fine
    structures; for a coarse phase every f-th voxel along an axis, so that its larger features span about
    :data:`~fibsynth.reconstruct.estimate.THICKNESS_MAX_PX` grid points (the local thickness costs ~ feature size^3
    per medial-axis voxel: > 11 min on the SOFC crop at full resolution). The isotropy errors and directional
    functions use the solid's grid. The grids are returned (``statistics_grid``: steps z, y, x per phase) and
    shown in the report. ``functions_file``: the directional functions are saved there (``functions_file`` in the
    result: its name)."""
    from fibsynth.metrics import isotropy_report, mean_ligament_diameter
    from fibsynth.reconstruct.estimate import thickness_steps

    c = np.asarray(crop, np.uint8)
    row: dict[str, Any] = {}
    grid = {}
    for phase, key, a in (("solid", "ligament_nm", c != 0), ("pore", "pore_nm", c == 0)):
        st = thickness_steps(a, vz)
        grid[phase] = list(st)
        sub = a[tuple(slice(None, None, f) for f in st)]
        row[key] = float(mean_ligament_diameter(sub, [h * f for h, f in zip(vz, st)]))
    st = grid["solid"]
    sub = c[tuple(slice(None, None, f) for f in st)]
    row["statistics_grid"] = grid
    if not 0 < sub.mean() < 1:
        return row
    iso = isotropy_report(sub, [h * f for h, f in zip(vz, st)], return_functions=True)
    row.update({k: float(iso[k]) for k in ("e_tpcf", "e_lpf", "e_diameter", "D_xy_nm", "D_xz_nm", "D_yz_nm")})
    if functions_file is not None:
        row["functions_file"] = Path(functions_file).name
        np.savez(functions_file, **{f"{kind}_{ax}_{w}": np.asarray(v[i]) for kind in ("tpcf", "lpf")
                                    for ax, v in iso["functions"][kind].items() for i, w in enumerate(("lag", "val"))})
    return row


def region_in_crop(region: Any, shape: tuple[int, ...], fill: dict[str, Any] | None) -> tuple[int, int, int, int]:
    """``align_region`` (y0, y1, x0, x1; pixels of the stack as given, ``shape``) in the coordinates of the stack
    without its alignment fill (``fill``: :func:`fibsynth.reconstruct.inspect.crop_fill`'s record, or None): one
    line naming ``align_region`` when it does not lie inside the slices, reaches into the fill or is too small to
    register on (:func:`fibsynth.microscope.check_region`)."""
    from fibsynth.microscope import check_region

    y0, y1, x0, x1 = (int(v) for v in region)
    ny, nx = (int(n) for n in shape[-2:])
    if not (y1 <= ny and x1 <= nx):
        raise FibsynthError(f"rows {y0}:{y1}, columns {x0}:{x1} must lie inside the {ny} x {nx} slices "
                            f"(Y1 <= {ny}, X1 <= {nx})", param="align_region")
    if fill is None:
        check_region((y0, y1, x0, x1), shape, param="align_region")
        return y0, y1, x0, x1
    _, (by0, by1), (bx0, bx1) = fill["box"]
    if not (by0 <= y0 and y1 <= by1 and bx0 <= x0 and x1 <= bx1):
        raise FibsynthError(f"rows {y0}:{y1}, columns {x0}:{x1} reach into the alignment fill that is left out "
                            f"(the image region is rows {by0}:{by1}, columns {bx0}:{bx1}): give a rectangle inside it",
                            param="align_region")
    out = (y0 - by0, y1 - by0, x0 - bx0, x1 - bx0)
    check_region(out, (by1 - by0, bx1 - bx0), param="align_region")
    return out


def resolve_align_region(align_region: Any, raw: Any, path: Any = None, *, quiet: bool = True
                         ) -> tuple[tuple[int, int, int, int] | None, dict[str, Any] | None]:
    """Before any folder is made: ``align_region`` as the inspection will use it, and for ``"auto"`` the record of
    the detection (else None). A rectangle is checked to lie inside the slices (the alignment fill is checked once
    it is found, :func:`region_in_crop`). ``auto``: :func:`fibsynth.microscope.find_fiducial_region` on the stack's
    first ``BAND_MAX_SLICES`` (48) slices only -- read from the lazily read stack, never the whole of it -- with the
    alignment fill of those slices left out (:func:`fibsynth.reconstruct.inspect.fill_borders`), the region it finds
    moved back into the stack's own pixels, as a hand-given one; one line naming ``align_region`` when no band
    stands out (the detector's reason), so that nothing runs on a registration the user did not ask for.
    ``quiet=False``: a line on stderr says the detection is running (about 20 s of CPU for 1024 x 1024 slices,
    docs/microscope.md, micro14)."""
    if align_region is None:
        return None, None
    if align_region != "auto":
        return region_in_crop(align_region, raw.shape, None), None
    from fibsynth.microscope.fiducial import BAND_MAX_SLICES, find_fiducial_region
    from fibsynth.reconstruct.inspect import fill_borders

    n = min(int(raw.shape[0]), BAND_MAX_SLICES)
    _Console(quiet).print(f"--align-region auto: looking for a static fiducial band in the first {n} slices ...")
    head = np.asarray(raw[:n])  # the slices the detector reads (it registers at most BAND_MAX_SLICES)
    fill = fill_borders(head)
    (z0, z1), (y0, y1), (x0, x1) = ((0, n), (0, head.shape[1]), (0, head.shape[2])) if fill is None else (
        fill["box"] or ((0, 0), (0, 0), (0, 0)))
    if z1 - z0 < 4 or min(y1 - y0, x1 - x0) < 16:
        raise FibsynthError(f"auto needs at least 4 slices of 16 x 16 pixels of image among the first {n} (found "
                            f"{max(z1 - z0, 0)} of {max(y1 - y0, 0)} x {max(x1 - x0, 0)} once the alignment fill is "
                            "left out): give the region as Y0:Y1,X0:X1", path, param="align_region")
    band = find_fiducial_region(head[z0:z1, y0:y1, x0:x1], warn=False)
    rec = band.as_dict()

    def back(r):  # the head's image box -> the stack's own pixels
        return None if r is None else [int(r[0]) + y0, int(r[1]) + y0, int(r[2]) + x0, int(r[3]) + x0]

    rec.update(region=back(band.region), candidate=back(band.candidate), slices=[z0, z1])
    if band.region is None:
        raise FibsynthError(f"auto found no static fiducial band in slices {z0}:{z1}: {band.reason}; give the region "
                            "as Y0:Y1,X0:X1, or leave --align-region out to register the whole slices", path,
                            param="align_region")
    return tuple(rec["region"]), rec


def auto_region_line(rec: dict[str, Any]) -> str:
    """The console's line about the band ``--align-region auto`` found (:func:`resolve_align_region`'s record)."""
    y0, y1, x0, x1 = rec["region"]
    used = rec.get("used")
    clip = (f"; used as rows {used[0]}:{used[1]}, columns {used[2]}:{used[3]} inside the image region"
            if used and list(used) != list(rec["region"]) else "")
    return (f"--align-region auto: fiducial band found at rows {y0}:{y1}, columns {x0}:{x1} (confidence "
            f"{rec['confidence']:.2f}: correlation {rec['correlation']:.2f} between slices >= {rec['min_lag']} apart "
            f"against {rec['background']:.2f} elsewhere, isotropy {rec['isotropy']:.2f}; slices "
            f"{rec['slices'][0]}:{rec['slices'][1]}){clip}")


def inspect_step(steps: _Steps, raw: Any, real_path: Path, vz, correct, align_region: Any = None,
                 auto: dict[str, Any] | None = None) -> tuple[str, Path, np.ndarray, dict]:
    """Step 1 of both workflows (binary and n phases share its cache): inspect the stack
    (:func:`fibsynth.reconstruct.inspect.inspect_to_npy`: lazily, block by block, for large or lazily read stacks),
    apply the corrections, store it as ``real.npy``. ``align_region``: register on that rectangle of the stack as
    given (:func:`region_in_crop`). ``auto``: the record of ``--align-region auto`` (:func:`resolve_align_region`;
    ``align_region`` is then the band it found): the band is cut to the whole stack's image region where the
    alignment fill of later slices reaches into it (a hand-given rectangle there is refused), and from there on is
    used exactly as a hand-given one (same key, same record); the record goes into the inspection as
    ``drift_region_auto`` (with ``used``: the rectangle registered on). Returns the key, the folder, the stored stack
    memory-mapped (read-only: only what a later step touches is read) and the inspection record."""
    from fibsynth.reconstruct.inspect import inspect_to_npy

    cropped, fill = _crop_fill_cached(steps, raw, real_path)  # alignment fill (constant edge rows/columns, blank end
    # slices) left out
    if auto is not None and fill is not None and fill["box"] is not None:  # the fill of the slices after the first
        _, (by0, by1), (bx0, bx1) = fill["box"]  # 48 that the detection did not see
        y0, y1, x0, x1 = align_region
        align_region = (max(y0, by0), min(y1, by1), max(x0, bx0), min(x1, bx1))
        if not (align_region[0] < align_region[1] and align_region[2] < align_region[3]):
            raise FibsynthError(f"auto: the band found (rows {y0}:{y1}, columns {x0}:{x1}) lies in the alignment fill "
                                f"of later slices (the image region is rows {by0}:{by1}, columns {bx0}:{bx1}): give "
                                "a region as Y0:Y1,X0:X1", real_path, param="align_region")
    region = None if align_region is None else region_in_crop(align_region, raw.shape, fill)

    def do_inspect(d: Path) -> dict:
        rec = inspect_to_npy(cropped, d / "real.npy", tuple(correct), fill=fill, align_region=region)
        if region is not None:
            rec["drift_region"] = [int(v) for v in align_region]  # as given (the stack's own coordinates)
        (d / "inspect.json").write_text(json.dumps(rec))
        return {"noise_relative": rec["noise_relative"]}

    key = {"file": _file_id(real_path), "voxel": list(vz), "correct": list(correct), "estimators": "fibsynth.microscope"}
    if fill is not None:  # keys of stacks without fill as before (their caches stay valid)
        key["alignment_fill"] = fill["box"]
    if align_region is not None:  # likewise: only where a region is given
        key["align_region"] = [int(v) for v in align_region]
    k_in, d_in, _ = steps("inspect", key, {}, do_inspect, "inspecting the real stack")
    insp = json.loads((d_in / "inspect.json").read_text())
    if auto is not None:  # not in the cached record: a hand-given run with the same rectangle shares the step
        insp["drift_region_auto"] = {**auto, "used": [int(v) for v in align_region]}
    return k_in, d_in, np.load(d_in / "real.npy", mmap_mode="r"), insp


def _crop_fill_cached(steps: _Steps, raw: Any, real_path: Path) -> tuple[Any, dict[str, Any] | None]:
    """:func:`fibsynth.reconstruct.inspect.crop_fill` of the user's stack, its fill record cached by the file's
    identity (the one the inspect key uses), so that a rerun does not read the whole stack again to find its fill.
    Not one of the logged steps; a stack refused for its fill (all blank, too little left) is refused before anything
    is cached. The inspect key still carries the fill box wherever there is fill, so an inspect cache of an uncropped
    stack is never reused for a cropped one."""
    from fibsynth.experiment.cache import step_key
    from fibsynth.reconstruct.inspect import FILL_MARGIN_PX, crop_fill, crop_to_fill

    params = {"file": _file_id(real_path), "margin_px": FILL_MARGIN_PX}
    key = step_key("reconstruct.fill", params, {})
    if steps.cache.done(key):
        return crop_to_fill(raw, steps.cache.record(key)["result"], real_path)
    cropped, fill = crop_fill(raw, real_path)
    record: dict[str, Any] = {"step": "fill", "params": params, "inputs": {}, "result": fill}
    with steps.cache.writing(key, record):
        pass
    return cropped, fill


def fill_region(insp: dict[str, Any], truth_arr: np.ndarray | None, console: Any
                ) -> tuple[np.ndarray | None, tuple[int, int, int] | None, str | None]:
    """After the inspect step: where the stack had alignment fill (:func:`fibsynth.reconstruct.inspect.fill_borders`),
    the ground truth (benchmarks) cropped to the reconstructed region, that region's offset (z, y, x) for the
    outputs' metadata, and the sentence for the console, summary and report; else ``(truth_arr, None, None)``."""
    from fibsynth.reconstruct.inspect import fill_line

    fill = insp.get("alignment_fill")
    if not fill:
        return truth_arr, None, None
    (z0, z1), (y0, y1), (x0, x1) = fill["box"]
    line = fill_line(fill, tuple(insp["input_shape"]))
    console.print(f"[yellow]{line}[/]")
    if truth_arr is not None:
        truth_arr = np.ascontiguousarray(truth_arr[z0:z1, y0:y1, x0:x1])
    return truth_arr, (z0, y0, x0), line


def disk_need_bytes(shape: tuple[int, ...], s: Any) -> int:
    """Disk space the binary workflow needs for a stack of ``shape`` (at most: both rounds run): the float32 stack
    (``real.npy``), one float32 probability map per trained U-Net (``seg_seeds`` per round), the evaluate step's three
    uint8 segmentations, the transient float32 confidence and the outputs (probability and confidence float32,
    segmentation, Otsu and k-means uint8), and with ``seg_combine="mean"`` (the default) each round's float32 mean
    map. 46 bytes per voxel with the defaults (38 with ``choose``): ~12 GB for 256 x 1024 x 1024, ~193 GB for
    1000 x 2048 x 2048. The synthetic data and models add a few hundred MB at most."""
    rounds = 2 if s.reestimate else 1
    ens = 4 * rounds if s.seg_seeds > 1 and getattr(s, "seg_combine", "choose") == "mean" else 0
    per_voxel = 4 + 4 * s.seg_seeds * rounds + ens + 3 + 4 + (4 + 4 + 1 + 1 + 1)
    return int(np.prod(shape)) * per_voxel


def disk_warning(out: Path, work: Path, shape: tuple[int, ...], s: Any) -> str | None:
    """A warning when the file system of the output folder (and of the step cache) has less free space than
    :func:`disk_need_bytes` less what the cache already holds (a rerun reuses it); None when it has enough."""
    import shutil

    need = disk_need_bytes(shape, s)
    have = work.rglob("*") if work.exists() else ()
    cached = sum(p.stat().st_size for p in have if p.is_file())
    free = min(shutil.disk_usage(p).free for p in {out, work if work.exists() else out})
    if free + cached >= need:
        return None
    return (f"this stack needs up to {need / 1e9:.1f} GB of disk for the step cache and the outputs "
            f"({shape[0]} x {shape[1]} x {shape[2]} voxels; {free / 1e9:.1f} GB free"
            + (f", {cached / 1e9:.1f} GB already cached" if cached else "") +
            "): the run may stop when the disk is full; free some space or choose an output folder on a larger disk")


def read_real(real_path: Path, s: Any) -> tuple[Any, VoxelSize, float, str, dict[str, Any]]:
    """The start of both workflows: the user's stack read lazily (:func:`fibsynth.reconstruct.inspect.read_stack`),
    its voxel size, the beam energy (the default where neither the options nor the file give one), the sentence
    saying where the energy came from, and the stack's description."""
    from fibsynth.reconstruct.inspect import read_stack

    raw, voxel, energy, desc = read_stack(real_path, voxel_nm=s.voxel_nm, slice_nm=s.slice_nm, energy_kev=s.energy_kev,
                                          lazy=True)
    energy_note = "from the options" if s.energy_kev is not None else ("from the file" if energy is not None else
                                                                         f"not given: assumed {DEFAULT_ENERGY_KEV:g} keV")
    return raw, voxel, float(energy if energy is not None else DEFAULT_ENERGY_KEV), energy_note, desc


#: the run's resources released when it ends (the work folder's lock): set by :func:`run_scope`
_RUN: contextvars.ContextVar[contextlib.ExitStack | None] = contextvars.ContextVar("fibsynth_reconstruct_run",
                                                                                    default=None)

#: the files either workflow writes into OUT; their temporaries (``.NAME.tmp-XXXXXXXX``, :func:`fibsynth.io.atomic_path`)
#: are what a killed run leaves there
_OUTPUT_TMP = re.compile(r"^\.(segmentation|probability|probability_[0-9]+|confidence|otsu|kmeans|multiotsu)\.tif"
                         r"\.tmp-[0-9a-f]{8}$|^\.(summary\.json|report\.html)\.tmp-[0-9a-f]{8}$")
#: the resume state's temporary in ``WORK/partial/<key>/`` (predict_blocks writes done.json through atomic_path)
_PARTIAL_TMP = re.compile(r"^\.done\.json\.tmp-[0-9a-f]{8}$")
_KEY = re.compile(r"^[0-9a-f]{64}$")
#: the output folder's lock (beside the user's own files: a name no other tool uses), held with the work folder's
OUT_LOCK = ".fibsynth-reconstruct.lock"
#: the confidence map's scratch file in the work folder (removed at the end of a run)
CONFIDENCE_SCRATCH = "confidence.tmp.npy"


@contextlib.contextmanager
def run_scope(threads: int | str) -> Iterator[dict[str, Any]]:
    """One run of either workflow: :func:`thread_scope`, and the resources :func:`open_run` takes (the work folder's
    lock), released when the run ends, also on errors and Ctrl-C. Yields the threads record."""
    with contextlib.ExitStack() as stack, thread_scope(threads) as rec:
        token = _RUN.set(stack)
        try:
            yield rec
        finally:
            _RUN.reset(token)


def _size(path: Path) -> int:
    if path.is_dir() and not path.is_symlink():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    try:
        return path.lstat().st_size
    except OSError:
        return 0


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


#: the files :func:`predict_blocks` keeps in a resume folder ``WORK/partial/KEY/`` (besides done.json's temporaries)
_PARTIAL_FILES = ("probability.npy", "done.json")


def _partial_files(d: Path) -> list[Path]:
    """The files of the resume folder ``d`` that :func:`predict_blocks` writes there: plain files of exactly those
    names, never a link, never anything else."""
    return sorted(f for f in d.iterdir() if (f.name in _PARTIAL_FILES or _PARTIAL_TMP.match(f.name))
                  and f.is_file() and not f.is_symlink())


def remove_partial(d: Path) -> int:
    """Remove a resume folder ``WORK/partial/KEY``: the files :func:`predict_blocks` writes there, then the folder
    itself if nothing else is left in it (a file someone else put there stays, and with it the folder). Returns
    the bytes removed."""
    n = 0
    for f in _partial_files(d):
        n += f.lstat().st_size
        f.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        d.rmdir()
    return n


def drop_abandoned_partials(work: Path, console: Any) -> list[tuple[Path, int]]:
    """Once a run has made all its predictions: remove the resume folders ``WORK/partial/KEY`` left in the work
    folder by predictions that were interrupted under other settings (this run's own are gone by then: a finished
    prediction removes its folder, and a killed run's finished ones go at the start, :func:`clean_killed_run`).
    Such a map is resumed only if a run asks for exactly that prediction again; it is the size of the stack in
    float32 (1 GB at 256 x 1024 x 1024), so a run that finished under other settings removes it, and says so. Call it
    holding the work folder's lock. Only ``KEY`` folders (64 hex digits; real folders, not links) are looked at,
    only the files the prediction writes there are removed (:func:`remove_partial`); a folder whose ``done.json``
    names another live process is left alone. Returns each folder and the bytes removed."""
    part = work / "partial"
    removed: list[tuple[Path, int]] = []
    if not part.is_dir() or part.is_symlink():
        return removed
    for d in sorted(part.iterdir()):
        if not (_KEY.match(d.name) and d.is_dir() and not d.is_symlink()):
            continue
        try:
            pid = json.loads((d / "done.json").read_text()).get("pid")
        except (OSError, ValueError, AttributeError):
            pid = None
        if pid is not None and pid != os.getpid() and _alive(pid):
            continue
        if not _partial_files(d) and any(d.iterdir()):
            continue  # nothing of the prediction's in it
        n = remove_partial(d)
        removed.append((d, n))
        console.print(f"removed {d} ({n / 1e6:.1f} MB): the unfinished prediction map of an earlier run with other "
                      "settings (kept until now to be resumed, should those settings come back)")
    return removed


def clean_killed_run(work: Path, out: Path | None) -> tuple[list[Path], int]:
    """Remove what a killed run of either workflow left behind (a SIGKILL or a crashed node gives it no chance to
    clean up) and return the paths removed and their size in bytes. Call it holding the work folder's lock: then
    no live run writes there (and the output folder's, for ``out``). Removed, each only where its name is exactly one
    this workflow makes:

    * the step cache's temporary and replaced folders (``cache/.KEY.tmp-XXXXXXXX``, ``cache/.KEY.old-XXXXXXXX``;
      :meth:`fibsynth.experiment.cache.Cache.clean_stale`);
    * in ``WORK/partial/KEY/`` (a prediction's resume state) the temporaries of ``done.json``, and when step KEY is
      finished in the cache (the run died between finishing the step and removing it) the files the prediction
      writes there and the folder (:func:`remove_partial`); an unfinished map is kept: the next run resumes from it
      (and a run that finishes under other settings removes it, :func:`drop_abandoned_partials`);
    * the confidence map's scratch file ``WORK/confidence.tmp.npy``;
    * with ``out`` (the output folder, whose own lock the caller holds as well): the temporaries of the outputs
      (``OUT/.segmentation.tif.tmp-XXXXXXXX``, ``.summary.json.tmp-...``, ``.report.html.tmp-...``, ...).

    Nothing else is touched: no file of the user's, no folder that merely looks similar."""
    from fibsynth.experiment.cache import Cache

    cache = Cache(work)
    found: list[Path] = cache.stale()
    done_dirs: list[Path] = []
    part = work / "partial"
    if part.is_dir() and not part.is_symlink():
        for d in part.iterdir():
            if not (_KEY.match(d.name) and d.is_dir() and not d.is_symlink()):
                continue
            if cache.done(d.name):  # its files, then the folder if nothing else is in it
                found += _partial_files(d)
                done_dirs.append(d)
            else:
                found += [f for f in _partial_files(d) if _PARTIAL_TMP.match(f.name)]
    scratch = work / CONFIDENCE_SCRATCH
    if scratch.is_file() and not scratch.is_symlink():
        found.append(scratch)
    if out is not None and out.is_dir():
        found += [f for f in out.iterdir() if _OUTPUT_TMP.match(f.name) and not f.is_symlink()]
    nbytes = sum(_size(f) for f in found)
    for f in found:
        _remove(f)
    for d in done_dirs:
        with contextlib.suppress(OSError):
            d.rmdir()
            found.append(d)
    return found, nbytes


def open_run(out: Path, quiet: bool, work_dir: str | Path | None, threads: dict[str, Any] | None
             ) -> tuple[_Console, _Steps, dict[str, Any]]:
    """Once every input of either workflow is checked: the output folder (one line when ``out`` is a file) and its
    lock (``OUT/.fibsynth-reconstruct.lock``), the work folder (``work_dir``, default ``OUT/work``) and its lock
    (``WORK/.lock``), both held until the run ends (:func:`run_scope`; another run on the same output folder or the
    same work folder is refused in one line naming the lock and the holder's pid, whatever its other folder; a killed
    run's locks are taken over and what it left is removed, :func:`clean_killed_run`), the console with the threads line,
    the step cache and the threads record (``threads``, or what torch runs with when called without
    :func:`thread_scope`)."""
    from fibsynth.experiment.lock import workdir_lock

    if out.exists() and not out.is_dir():
        raise FibsynthError("exists and is not a folder", out, param="out_dir")
    stack = _RUN.get()
    if stack is None:
        raise RuntimeError("open_run outside run_scope: the work folder's lock would never be released")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(work_dir) if work_dir is not None else out / WORK
    if work.exists() and not work.is_dir():
        raise FibsynthError("exists and is not a folder (the step cache goes there)", work,
                            param="out_dir" if work_dir is None else "work_dir")
    dead: list[dict] = []
    # OUT's own lock first: a run that writes the same OUT with its step cache elsewhere (the Python API's work_dir)
    # is refused as well, and a refusal names the folder the user gave
    stack.enter_context(workdir_lock(out, command="fibsynth reconstruct", took_over=dead, name=OUT_LOCK,
                                     what="output folder"))
    work.mkdir(parents=True, exist_ok=True)
    stack.enter_context(workdir_lock(work, command="fibsynth reconstruct", took_over=dead))
    removed, nbytes = clean_killed_run(work, out)
    console = _Console(quiet)
    if dead or removed:
        who = f"an earlier run on this folder (pid {dead[0].get('pid', '?')})" if dead else "an earlier run"
        what = (f"; removed {len(removed)} temporary {'entry' if len(removed) == 1 else 'entries'} it left "
                f"({nbytes / 1e6:.1f} MB)" if removed else "")
        console.print(f"note: {who} ended without finishing (killed?){what}")
    if threads is None:  # called without thread_scope: report what torch runs with
        import torch

        threads = {"threads": torch.get_num_threads(), "rule": "not set by the run"}
    console.print(threads_line(threads))
    return console, _Steps(work, console), threads


def synth_plan(s: Any, real_shape: tuple[int, ...]) -> tuple[tuple[int, int, int], str | None, Any, Any, dict]:
    """Both workflows' sizes for the synthetic data: the generated stacks' shape, the adaptation method (None
    without adaptation), the CycleGAN's plan (None unless it is used), the U-Net's settings and plan."""
    from fibsynth.reconstruct import adapt as A

    nz_s = max(s.synth_slices or int(min(real_shape[0], 48)), 8 if s.mode != "3d" else 16)
    side = s.synth_side or int(np.clip(min(real_shape[1:]), 64, 128))
    synth_shape = (nz_s, side, side)
    method = s.adapt_method if s.adapt else None
    gan_plan = (A.plan(real_shape, synth_shape, budget_min=s.budget_min, epochs=s.gan_epochs, patches=s.gan_patches,
                       channels=s.gan_channels) if method == "cyclegan" else None)
    return (synth_shape, method, gan_plan, *_seg_settings(s, side, nz_s))


#: a warm-started round 2's input normalisation: round 1's network's ("init") or fitted to round 2's images ("data")
ROUND2_NORM = "init"


def train_key(ts: Any, k_imgs: str, init_key: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``train`` step's (parameters, inputs): the U-Net's settings and the images' step key, and for a warm start
    (round 2, ``round2_init="round1"``) the key of the network it starts from, among the inputs and named in the
    parameters; so a round 2 trained from scratch by an earlier run is never reused for a warm start or the other
    way round, and a training from random weights keys exactly as before round16."""
    params = {"settings": ts.model_dump(mode="json", exclude=NOT_KEYED)}
    inputs = {"images": k_imgs}
    if init_key is not None:
        params["init"] = "round 1's network of the same seed"
        params["init_norm"] = ROUND2_NORM
        inputs["init"] = init_key
    return params, inputs


def round2_plan(s: Any, seg_plan: dict[str, Any]) -> dict[str, Any]:
    """Round 2's U-Net training (``round2_init``, ``round2_steps``): where it starts and its optimizer steps, whole
    validation rounds of round 1's length, at least one."""
    epochs = max(1, min(seg_plan["epochs"], math.ceil(s.round2_steps * seg_plan["epochs"] - 1e-9)))
    return {"init": s.round2_init, "epochs": epochs, "optimizer_steps": epochs * seg_plan["steps_per_epoch"]}


def round_train_settings(s: Any, seg_ts: Any, seg_plan: dict[str, Any], seed_offset: int = 0, second: bool = False
                         ) -> tuple[Any, int]:
    """The U-Net settings of network ``seed_offset`` (seed ``s.seed + seed_offset``) of round 1, or of round 2
    (``second``: ``round2_steps`` of round 1's optimizer steps), and its optimizer steps."""
    ts = seg_ts if not seed_offset else seg_ts.model_copy(update={"seed": int(s.seed) + int(seed_offset)})
    r2 = round2_plan(s, seg_plan)
    if second and r2["epochs"] != seg_plan["epochs"]:
        return ts.model_copy(update={"epochs": r2["epochs"]}), r2["optimizer_steps"]
    return ts, seg_plan["optimizer_steps"]


def set_names(d: Path, prefix: str) -> list[str]:
    """The stacks of group ``prefix`` (``train``, ``val``) of a generated or adapted set: its ``*_img.npy`` files."""
    return sorted(p.name[:-len("_img.npy")] for p in d.glob(f"{prefix}_*_img.npy"))


def adapt_step(steps: _Steps, s: Any, method: str, gan_plan: Any, real: np.ndarray, k_in: str,
               gen: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    """Step 4 of both workflows: the synthetic -> real gray-value map, fitted once (the real stack's quantiles, or a
    CycleGAN trained on the first generated set ``gen``; ``model`` keeps its key and folder so that round 2 reuses
    it), then ``translate`` applies it to the set ``gen`` (``{"key", "dir"}``). Returns the adapted set's
    ``{"key", "dir", "distances"}`` (histogram distances before and after)."""
    from fibsynth.reconstruct import adapt as A

    d_g = gen["dir"]
    if not model and method in ("histogram", "linear"):
        def do_hist(d: Path) -> dict:
            q = A.fit_histogram(real, seed=s.seed)
            _save(d / "quantiles.npy", q)
            return {"levels": int(q.size), "range": [float(q[0]), float(q[-1])]}

        k, d, _ = steps("adapt", {"method": "histogram", "levels": A.HIST_LEVELS, "seed": s.seed},
                        {"real": k_in}, do_hist, "measuring the real stack's gray-value distribution "
                                                 "(histogram adaptation)")
        model.update(key=k, dir=d)
    elif not model:
        def do_gan(d: Path) -> dict:
            srcs = [np.load(d_g / f"{n}_img.npy") for n in set_names(d_g, "train")]
            return A.train_adaptation(srcs, real, d / "model", gan_plan, s.seed, device=s.device)

        k, d, _ = steps("adapt", {"plan": gan_plan, "seed": s.seed}, {"generate": gen["key"], "real": k_in},
                        do_gan, f"training the adaptation CycleGAN ({gan_plan['epochs']} epochs x "
                                f"{gan_plan['patches_per_epoch']} patches of {gan_plan['patch']} px, "
                                f"width {gan_plan['gen_channels']})")
        model.update(key=k, dir=d)

    def do_translate(d: Path) -> dict:
        return A.adapt_set(d_g, model["dir"], d, set_names(d_g, "train") + set_names(d_g, "val"), method, real,
                           s.seed, device=s.device)

    k_t, d_t, rec = steps("translate", {"seed": s.seed, "method": method}, {"model": model["key"], "generate": gen["key"]},
                          do_translate, "adapting the synthetic stacks to the real stack")
    return {"key": k_t, "dir": d_t, "distances": rec["result"]}


def round_reason(keep2: bool, f1: float, f2: float, test: dict[str, Any]) -> str:
    """The sentence the summary and report give for the round choice (:func:`fibsynth.reconstruct.estimate.choose_round`)."""
    octs = (f"; octants {test['octant_delta_mean']:+.4f} +- {test['octant_delta_sem']:.4f}"
            if "octant_delta_mean" in test else "")
    dis = (f"; its U-Nets agree with kappa {test['seed_kappa'][1]:.3f} (differ on "
           f"{100 * test['seed_disagreement'][1]:.1f} % of the voxels), round 1's {test['seed_kappa'][0]:.3f} "
           f"({100 * test['seed_disagreement'][0]:.1f} %)" if "seed_kappa" in test else "")
    if keep2:
        return (f"round 2 kept: its reconstruction, imaged again, correlates clearly better with your stack "
                f"(r = {f2:.4f} vs {f1:.4f} for round 1{octs}{dis})")
    if test.get("vetoed_by_agreement"):
        return (f"round 1 kept: round 2's reconstruction, imaged again, correlates better with your stack (r = "
                f"{f2:.4f} vs {f1:.4f} for round 1{octs}), but its U-Nets agree less on your stack (kappa "
                f"{test['seed_kappa'][1]:.3f} vs {test['seed_kappa'][0]:.3f} for round 1's; they differ on "
                f"{100 * test['seed_disagreement'][1]:.1f} % vs {100 * test['seed_disagreement'][0]:.1f} % of the "
                "voxels): its training data fit your stack less well")
    return (f"round 1 kept: round 2's reconstruction, imaged again, does not correlate clearly better with your "
            f"stack (r = {f2:.4f} vs {f1:.4f} for round 1{octs}{dis}; rule: {test['rule']}), so regenerating did "
            "not help")


def reconstruct(real_path: str | Path, out_dir: str | Path, settings: ReconstructSettings | None = None, *,
                truth: str | Path | None = None, quiet: bool = False, work_dir: str | Path | None = None
                ) -> dict[str, Any]:
    """Run the whole workflow (module docstring) and return the summary (also ``OUT/summary.json``).

    ``truth``: a ground-truth segmentation of the same stack (benchmarks and tests only): adds MDS / MP / MGP of the
    U-Net, Otsu and k-means. ``work_dir``: the step cache (default ``OUT/work``; runs that share it share every
    step whose inputs and parameters agree). Raises :class:`FibsynthError` (one line) for any bad input before
    writing outputs."""
    s = settings or ReconstructSettings()
    with run_scope(s.threads) as threads:
        return _reconstruct(real_path, out_dir, s, truth=truth, quiet=quiet, work_dir=work_dir, threads=threads)


@contextlib.contextmanager
def thread_scope(threads: int | str) -> Iterator[dict[str, Any]]:
    """torch's and numba's CPU threads for the run: ``threads`` as given, or for ``"auto"`` the rule of
    :func:`fibsynth.ml.runtime.auto_threads` (usable CPUs less the current 1-minute load, 1..16) evaluated now;
    the previous counts are restored afterwards. Yields the record of the choice (``threads``, ``rule``, and for
    auto ``usable_cpus`` and ``load_1min``) for the run's output and summary."""
    import numba
    import torch

    from fibsynth.ml.runtime import resolve_threads

    n, rec = resolve_threads(threads)
    old = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        yield rec
    finally:
        torch.set_num_threads(old[0])
        numba.set_num_threads(old[1])


def threads_line(rec: dict[str, Any]) -> str:
    """The one line a run prints about its CPU threads."""
    if "usable_cpus" not in rec:
        return f"CPU threads: {rec['threads']} ({rec.get('rule', 'given')})"
    return (f"CPU threads: {rec['threads']} (auto: {rec['usable_cpus']} usable CPUs, 1-minute load "
            f"{rec['load_1min']:.1f}; give --threads N to choose)")


def _reconstruct(real_path: str | Path, out_dir: str | Path, s: ReconstructSettings, *,
                 truth: str | Path | None, quiet: bool, work_dir: str | Path | None,
                 threads: dict[str, Any] | None = None) -> dict[str, Any]:
    from fibsynth.reconstruct import adapt as A
    from fibsynth.reconstruct import estimate as E
    from fibsynth.reconstruct import generate as G

    real_path, out = Path(real_path), Path(out_dir)
    t_start = time.perf_counter()
    raw, voxel, energy, energy_note, desc = read_real(real_path, s)
    truth_arr = None
    if truth is not None:
        from fibsynth.io import read_structure

        truth_arr = np.asarray(read_structure(truth).data, np.uint8)
        if truth_arr.shape != raw.shape:
            raise FibsynthError(f"shape {truth_arr.shape} differs from the stack's {raw.shape}", truth, param="truth")
    check_imaging(s, energy)  # every energy-dependent refusal before any step runs or any folder is made
    device = resolved_device(s.device)  # an unknown or absent device: one line before anything runs
    # a rectangle inside the slices (the alignment fill is checked once it is found); auto: the band found, or one line
    align_region, auto_region = resolve_align_region(s.align_region, raw, real_path, quiet=quiet)
    console, steps, threads = open_run(out, quiet, work_dir, threads)
    vz = voxel.zyx()
    materials = (s.solid, s.pore)
    disk_note = disk_warning(out, Path(work_dir) if work_dir is not None else out / WORK, tuple(raw.shape), s)
    if disk_note:
        console.print(f"[bold yellow]warning[/] {disk_note}")

    # 1. inspect ---------------------------------------------------------------------------------------------
    k_in, d_in, real, insp = inspect_step(steps, raw, real_path, vz, s.correct, align_region, auto_region)
    if auto_region is not None:
        console.print(auto_region_line(insp["drift_region_auto"]))
    truth_arr, offset, fill_note = fill_region(insp, truth_arr, console)

    detector_key = {"detector": s.detector} if s.detector != "bse" else {}  # BSE keys as before (caches kept)
    # SE of open pores: the fast images come from the paired SE translator where it applies, else the SE projection
    # (generate.se_translation). Keys change only where the translator makes them (the projection's images are
    # the same as before it existed): the estimate's calibration (fast images, any engine) and the fast generate.
    se_use = se_key = None
    fd = G.fast_detector(s.detector, s.pore)
    if fd != "bse":
        use, why = G.se_translation(s.translation, energy, materials, fd)
        se_use = {"detector": fd, "translation": use, "why": why,
                  "used_for": ("the training images and the estimate's calibration" if s.engine == "fast" else
                               "the estimate's calibration images (the training images are Monte Carlo)"),
                  "forward_consistency": ("the paired SE translator, with the segmentation mirrored behind its last "
                                          f"slice ({G.SE_BEHIND_NM:g} nm)" if use == "paired" else
                                          "the SE projection alone (as the BSE projection alone for BSE)")}
        if use == "paired":
            se_use["translator"] = G.se_translator_record(fd)
            se_key = {"se_translation": use, "se_translator": G.se_translator_id(fd)}
    # the forward model of the label-free checks (seed choice, round choice): BSE the projection (keys as before);
    # SE of open pores the model the training images came from (se16: the SE projection alone scored the true
    # structure below the reconstructions and preferred the worse round on the in-lens silicon stacks)
    fc_translation = se_use["translation"] if se_use else "projection"
    fc_key = ({"forward_model": {"translation": "paired", "translator": se_key["se_translator"],
                                 "behind_nm": G.SE_BEHIND_NM}} if fc_translation == "paired" else {})

    # 2. estimate ----------------------------------------------------------------------------------------------
    fp_classes = E.first_pass_classes(fd)  # 2 for SE images of open pores, 3 for backscatter (shine-through)
    # SE images of open pores (se16): the calibration's structures are imaged with sample behind their last slice
    # (as the real stack's are) and carry the stack's measured noise only, not randomly drawn artifacts; the bias is
    # removed over E.CALIBRATION_ITERATIONS_SE iterations. Backscatter: as before (its keys and images unchanged).
    cal_iterations = E.calibration_iterations(fd)
    cal_key = ({} if fd == "bse" else
               {"calibration_images": {"behind_nm": G.SE_BEHIND_NM, "behind_slices": G.behind_slices(fd, vz),
                                       "augment_strength": G.CALIBRATION_AUGMENT_STRENGTH_SE}})

    def simulate(est: dict, i: int):
        """One structure at the estimate (no spread), imaged and augmented (G.calibration_image: like the training
        data for BSE; SE of open pores with sample behind the last slice and the measured noise alone)."""
        p = G.draw_parameters(est, 1, vz, s.seed + 500 + i, spread=False)[0]
        return G.calibration_image(p, (int(min(real.shape[0], 32)), 96, 96), vz, energy, materials=materials,
                                   translation=s.translation, detector=fd, seed=s.seed + i,
                                   rng=np.random.default_rng((s.seed, 99, i)), noise_relative=insp["noise_relative"])

    def do_estimate(d: Path) -> dict:
        raw_est = E.estimate_structure(E.first_pass(E._crop(real), classes=fp_classes), vz,
                                       seed=s.seed)  # the crop only in memory
        est = E.calibrate(raw_est, simulate, vz, seed=s.seed, scale=E.CALIBRATION_SCALE,
                          iterations=cal_iterations, simulations=E.CALIBRATION_SIMULATIONS,
                          classes=fp_classes)
        if cal_key:
            est["calibration"].update(cal_key)
        est["first_pass_uncalibrated"] = {k: v["value"] for k, v in raw_est["quantities"].items()}
        (d / "estimate.json").write_text(json.dumps(est))
        return {"hierarchical": est["hierarchical"]}

    k_e1, d_e1, _ = steps("estimate", {"seed": s.seed, "energy": energy, "materials": list(materials),
                                       "translation": s.translation, **detector_key, **(se_key or {}),
                                       "calibrated": list(E.CALIBRATED), "scale": E.CALIBRATION_SCALE,
                                       "first_pass": "crop", **({"level": E.LEVEL_PERCENTILES} if E.FIRST_PASS_LEVEL else {}),
                                       "first_pass_classes": fp_classes,
                                       "calibration_iterations": cal_iterations, **cal_key,
                                       **({"calibration_simulations": E.CALIBRATION_SIMULATIONS}
                                          if E.CALIBRATION_SIMULATIONS != 1 else {}),
                                       "two_level": "networks follow the corrected total",
                                       "thickness_max_px": E.THICKNESS_MAX_PX},
                          {"real": k_in}, do_estimate,
                          f"estimating the structure (brightest of {fp_classes} gray classes: "
                          f"{'multi-Otsu, k-means' if fp_classes > 2 else 'Otsu, k-means'}; bias removed "
                          "through the forward model)")
    est1 = json.loads((d_e1 / "estimate.json").read_text())

    synth_shape, method, gan_plan, seg_ts, seg_plan = synth_plan(s, real.shape)
    seg_plan = {**seg_plan, "round2": round2_plan(s, seg_plan)}

    def generate_round(r: int, est: dict, k_est: str) -> dict[str, Any]:
        gen_params = {"round": r, "structures": s.structures, "val": s.val_structures, "shape": list(synth_shape),
                      "voxel": list(vz), "energy": energy, "engine": s.engine, "epp": s.electrons_per_pixel,
                      "translation": s.translation, **detector_key,
                      **(se_key if se_key and s.engine == "fast" else {}),
                      "materials": list(materials), "seed": s.seed,
                      "augment": {"model": "fibsynth.microscope", "strength": G.AUGMENT_STRENGTH}}

        def do_generate(d: Path) -> dict:
            def measure(solid):
                st = E.structure_stats(solid, vz)
                return {k: st[k] for k in ("solid_fraction", "ligament_nm", "pore_nm")}

            return G.write_set(
                d, G.draw_parameters(est, s.structures + s.val_structures, vz, s.seed + 1000 * r), s.structures,
                lambda p: G.make_structure(p, synth_shape, vz),
                lambda solid, p: G.image_structure(solid, vz, energy, engine=s.engine, materials=materials,
                                                   electrons_per_pixel=s.electrons_per_pixel, seed=p["seed"] % 2**31,
                                                   translation=s.translation, detector=s.detector),
                measure, insp["noise_relative"], np.random.default_rng((s.seed, r, 7)))

        k_g, d_g, _ = steps("generate", gen_params, {"estimate": k_est}, do_generate,
                            f"generating {s.structures}+{s.val_structures} matched synthetic stacks {synth_shape}")
        return {"key": k_g, "dir": d_g, "structures": json.loads((d_g / "structures.json").read_text())}

    adapt_model: dict[str, Any] = {}  # the adaptation model of round 1, reused by round 2

    def train_round(k_imgs: str, d_imgs: Path, seed_offset: int = 0, *, second: bool = False,
                    init: dict[str, Any] | None = None) -> dict[str, Any]:
        """One U-Net of a round; ``second``: of round 2 (``round2_steps`` of round 1's optimizer steps); ``init``
        (round 2 with ``round2_init="round1"``): round 1's network of the same seed, whose weights start the
        training (its key joins the step's inputs)."""
        ts, n_opt = round_train_settings(s, seg_ts, seg_plan, seed_offset, second)

        def do_train(d: Path) -> dict:
            from fibsynth.io import VolumeMeta, write_volume
            from fibsynth.metrics import evaluate_segmentation
            from fibsynth.segment.baseline import otsu_threshold
            from fibsynth.segment.train import train

            vox = VoxelSize(z=vz[0], y=vz[1], x=vz[2])
            files: dict[str, list[Path]] = {"ti": [], "tl": [], "vi": [], "vl": []}
            for group, (ki, kl) in (("train", ("ti", "tl")), ("val", ("vi", "vl"))):
                for n in set_names(d_imgs, group):
                    fi, fl = d / "data" / f"{n}_img.tif", d / "data" / f"{n}_lbl.tif"
                    fi.parent.mkdir(exist_ok=True)
                    write_volume(fi, np.load(d_imgs / f"{n}_img.npy"), VolumeMeta(kind="image", voxel_size_nm=vox,
                                                                                   energy_kev=energy))
                    write_volume(fl, np.load(d_imgs / f"{n}_lbl.npy"), VolumeMeta(kind="label", voxel_size_nm=vox))
                    files[ki].append(fi)
                    files[kl].append(fl)
            with A.quiet_lightning():
                rec = train(files["ti"], files["tl"], d / "model", ts, val_images=files["vi"],
                            val_labels=files["vl"], verbose=False, progress=False,
                            init=init["dir"] / "model" if init is not None else None, init_norm=ROUND2_NORM)
            otsu_mds = []
            for fi, fl in zip(files["vi"], files["vl"]):
                v = np.load(d_imgs / (fi.name[:-len("_img.tif")] + "_img.npy"))
                lbl = np.load(d_imgs / (fl.name[:-len("_lbl.tif")] + "_lbl.npy"))
                otsu_mds.append(float(evaluate_segmentation((v > otsu_threshold(v)).astype(np.uint8), lbl)["MDS"]))
            for p in (d / "data").glob("*"):
                p.unlink()
            (d / "data").rmdir()
            return {"best_val_mds": rec.get("best_val_mds"), "epochs_run": rec.get("epochs_run"),
                    "val_otsu_mds": float(np.mean(otsu_mds)), "history": rec.get("history", []),
                    **({"init": "round 1's network of this seed"} if init is not None else {})}

        k_s, d_s, rec = steps("train", *train_key(ts, k_imgs, init["key"] if init is not None else None), do_train,
                              f"training the {s.mode.upper()} U-Net ({n_opt} optimizer steps of {seg_plan['batch']} "
                              "patches" + (f", seed {ts.seed}" if s.seg_seeds > 1 else "")
                              + (", from round 1's network" if init is not None else "") + ")")
        return {"key": k_s, "dir": d_s, "record": rec["result"], "seed": int(ts.seed)}

    def predict_round(k_model: str, d_model: Path) -> dict[str, Any]:
        p_params = {"block": s.block, **({"tta": s.tta} if s.tta > 1 else {})}
        p_inputs = {"model": k_model, "real": k_in}
        part = steps.partial(steps.key("predict", p_params, p_inputs))  # the unfinished map a rerun resumes

        def do_predict(d: Path) -> dict:
            try:
                done = json.loads((part / "done.json").read_text())["slices"]
            except (OSError, ValueError, KeyError):
                done = 0
            if done:
                console.print(f"[dim]predict: resuming after slice {done} of {real.shape[0]} (an earlier run was "
                              "interrupted)[/]")
            return predict_blocks(d_model / "model", d_in / "real.npy", d / "probability.npy", block=s.block,
                                  tta=s.tta, device=s.device,
                                  progress=lambda done, total: console.progress(done, total, "slices"),
                                  resume=part)

        k_p, d_p, _ = steps("predict", p_params, p_inputs, do_predict,
                            f"segmenting the real stack block by block ({s.block} slices"
                            + (f", mean of {s.tta} in-plane symmetries)" if s.tta > 1 else ")"))
        return {"key": k_p, "dir": d_p}

    rounds: list[dict[str, Any]] = []

    def choose_seed(r: int, cands: list[dict[str, Any]]) -> dict[str, Any]:
        """The U-Net of this round whose reconstruction, imaged again, correlates best with the real stack."""
        def do_choose(d: Path) -> dict:
            fcs = [E.forward_consistency_octants((np.asarray(E._crop(np.load(c["predict"]["dir"] / "probability.npy",
                                                                             mmap_mode="r"))) > 0.5).astype(np.uint8),
                                                 E._crop(real), vz, energy, materials,
                                                 detector=fd, translation=fc_translation) for c in cands]
            ch = E.choose_candidate(fcs)
            return {**ch, "seeds": [c["train"]["seed"] for c in cands], "octants": [f["octants"] for f in fcs]}

        _, _, rec = steps("choose_seed", {"round": r, "score": E.CANDIDATE_SCORE, **detector_key, **fc_key},
                          {f"prediction_{i}": c["predict"]["key"] for i, c in enumerate(cands)} | {"real": k_in},
                          do_choose, f"choosing among {len(cands)} U-Nets of round {r + 1} by forward consistency")
        ch = rec["result"]
        console.print(f"round {r + 1}: U-Net seed {ch['seeds'][ch['chosen']]} kept ({ch['score']} = "
                      + ", ".join(f"{v:.4f}" for v in ch["scores"]) + " for seeds "
                      + ", ".join(str(x) for x in ch["seeds"]) + ")")
        return ch

    def combine_round(r: int, cands: list[dict[str, Any]]) -> dict[str, Any]:
        """The mean of the round's networks' P(solid), block by block (memory does not grow with the stack)."""
        def do_combine(d: Path) -> dict:
            mean_blocks([c["predict"]["dir"] / "probability.npy" for c in cands], d / "probability.npy", s.block)
            return {"seeds": [c["train"]["seed"] for c in cands]}

        k_c, d_c, _ = steps("combine", {"round": r, "how": "mean"},
                            {f"prediction_{i}": c["predict"]["key"] for i, c in enumerate(cands)}, do_combine,
                            f"averaging the {len(cands)} U-Nets of round {r + 1} (ensemble)")
        return {"key": k_c, "dir": d_c}

    def one_round(r: int, est: dict, k_est: str) -> dict[str, Any]:
        gen = generate_round(r, est, k_est)
        ad = adapt_step(steps, s, method, gan_plan, real, k_in, gen, adapt_model) if s.adapt else None
        k_imgs, d_imgs = (ad["key"], ad["dir"]) if ad else (gen["key"], gen["dir"])
        cands = []
        for j in range(s.seg_seeds):
            warm = rounds[0]["candidates"][j]["train"] if r > 0 and s.round2_init == "round1" else None
            tr = train_round(k_imgs, d_imgs, j, second=r > 0, init=warm)
            if tr["record"]["best_val_mds"] is not None and tr["record"]["best_val_mds"] < tr["record"]["val_otsu_mds"]:
                console.print(f"[bold red]warning[/] the U-Net's validation MDS {tr['record']['best_val_mds']:.3f} is below "
                              f"Otsu's {tr['record']['val_otsu_mds']:.3f} on the same held-out synthetic data")
            cands.append({"train": tr, "predict": predict_round(tr["key"], tr["dir"])})
        if len(cands) > 1 and s.seg_combine == "mean":  # an ensemble: the round's P(solid) is the networks' mean
            return {"round": r, "estimate": est, "estimate_key": k_est, "generate": gen, "adapt": ad,
                    "train": cands[0]["train"], "predict": combine_round(r, cands), "images_dir": d_imgs,
                    "candidates": cands, "seed_choice": None}
        seed_choice = choose_seed(r, cands) if len(cands) > 1 else None
        best = cands[seed_choice["chosen"] if seed_choice else 0]
        return {"round": r, "estimate": est, "estimate_key": k_est, "generate": gen, "adapt": ad, "train": best["train"],
                "predict": best["predict"], "images_dir": d_imgs, "candidates": cands, "seed_choice": seed_choice}

    rounds.append(one_round(0, est1, k_e1))
    est2 = moved_keys = None
    choice: dict[str, Any] = {"chosen_round": 1, "reason": "one round only"}

    def held_out_pairs(rd: dict[str, Any], d: Path) -> list[tuple[np.ndarray, np.ndarray]]:
        """(segmentation, truth) of round ``rd``'s held-out synthetic stacks, segmented as the real stack was: by
        the round's ensemble mean (seg_combine mean) or its chosen network, with the same block and tta."""
        cands = rd["candidates"]
        models = ([c["train"]["dir"] / "model" for c in cands] if len(cands) > 1 and s.seg_combine == "mean"
                  else [rd["train"]["dir"] / "model"])
        pairs = []
        for n in set_names(rd["images_dir"], "val"):
            p = None
            for i, m in enumerate(models):
                tmp = d / f"held_out_{n}_{i}.npy"
                predict_blocks(m, rd["images_dir"] / f"{n}_img.npy", tmp, block=s.block, tta=s.tta, device=s.device)
                q = np.load(tmp)
                p = q if p is None else p + q
                tmp.unlink()
            pairs.append(((p / len(models) > 0.5).astype(np.uint8), np.load(rd["images_dir"] / f"{n}_lbl.npy")))
        return pairs

    def reestimate(r: int, used: dict) -> tuple[str, dict]:
        d_p = rounds[r]["predict"]["dir"]

        def do_reestimate(d: Path) -> dict:
            # the central crop only (all the estimate and the check use): memory does not grow with the stack
            seg = (np.asarray(E._crop(np.load(d_p / "probability.npy", mmap_mode="r"))) > 0.5).astype(np.uint8)
            est = E.estimate_structure({"U-Net": seg}, vz, seed=s.seed)
            # one method only: keep at least the estimate's uncertainty (the U-Net is not free of bias either)
            for k, q in est["quantities"].items():
                if k in used["quantities"]:
                    q["uncertainty"] = max(q["uncertainty"], used["quantities"][k]["uncertainty"])
            if s.reestimate_bias:  # the round's own bias on its held-out synthetic structures, removed
                est = E.remove_bias(est, E.reconstruction_bias(held_out_pairs(rounds[r], d), vz), vz)
            (d / "estimate.json").write_text(json.dumps(est))
            fc = E.forward_consistency_octants(seg, E._crop(real), vz, energy, materials,
                                               detector=fd, translation=fc_translation)
            return {"forward_consistency": fc["r"], "forward_consistency_octants": fc["octants"]}

        k_r, d_r, rec = steps("reestimate", {"seed": s.seed, "round": r, "check": "forward_consistency_octants",
                                             "thickness_max_px": E.THICKNESS_MAX_PX,
                                             **detector_key, **fc_key,
                                             **({"reconstruction_bias": "held-out synthetic",
                                                 "corrected": list(E.RECONSTRUCTION_CORRECTED)}
                                                if s.reestimate_bias else {})},
                              {"prediction": rounds[r]["predict"]["key"], "real": k_in}, do_reestimate,
                              f"re-estimating the structure from reconstruction {r + 1}")
        est = json.loads((d_r / "estimate.json").read_text())
        est["forward_consistency"] = rec["result"]["forward_consistency"]
        est["forward_consistency_octants"] = rec["result"].get("forward_consistency_octants")
        return k_r, est

    if s.reestimate:
        k_e2, est2 = reestimate(0, est1)
        moved_keys = E.moved(est1, est2)
        c1 = E.self_consistency(est1, est2)
        choice = {"chosen_round": 1, "self_consistency": [c1], "forward_consistency": [est2["forward_consistency"]],
                  "reason": "the reconstruction confirmed the estimate (within its uncertainty): one round"}
        if moved_keys:
            console.print(f"[yellow]estimate moved[/] ({', '.join(moved_keys)}): regenerating once around the new estimate")
            rounds.append(one_round(1, est2, k_e2))
            _, est3 = reestimate(1, est2)
            c2 = E.self_consistency(est2, est3)
            f1, f2 = est2["forward_consistency"], est3["forward_consistency"]
            # rounds of several U-Nets: how well they agree on the stack (the crop; seconds, so not a step)
            agree = ([E.seed_agreement([E._crop(np.load(c["predict"]["dir"] / "probability.npy", mmap_mode="r"))
                                        for c in rd["candidates"]]) for rd in rounds]
                     if all(len(rd["candidates"]) > 1 for rd in rounds) else None)
            test = E.choose_round(*({"r": e["forward_consistency"], "octants": e.get("forward_consistency_octants")}
                                    for e in (est2, est3)), agreement=agree)
            keep2 = test["keep_round_2"]
            choice = {"chosen_round": 2 if keep2 else 1, "self_consistency": [c1, c2], "forward_consistency": [f1, f2],
                      "test": test, "estimate_round_2_result": est3, "reason": round_reason(keep2, f1, f2, test)}
            console.print(("[green]" if keep2 else "[yellow]") + choice["reason"] + "[/]")
        else:
            console.print("[green]estimate confirmed[/] by the reconstruction (within its uncertainty)")
    final = rounds[choice["chosen_round"] - 1]
    d_pf = final["predict"]["dir"]
    round_mds = candidate_mds = None
    if truth_arr is not None:  # benchmarks: the score of every round, to judge the round choice
        from fibsynth.metrics import evaluate_segmentation

        def _mds(pr: dict) -> float:
            return float(evaluate_segmentation((np.load(pr["dir"] / "probability.npy", mmap_mode="r") > 0.5)
                                               .astype(np.uint8), truth_arr)["MDS"])

        round_mds = [_mds(r["predict"]) for r in rounds]
        if s.seg_seeds > 1:  # every candidate U-Net's score, to judge the choice among seeds
            candidate_mds = [[_mds(c["predict"]) for c in r["candidates"]] for r in rounds]

    # 7. evaluate ------------------------------------------------------------------------------------------------
    truth_id = _file_id(Path(truth)) if truth is not None else None

    # Otsu and k-means depend on the stack only: steps of their own, so that a new prediction (another round, seed
    # or training) or a run killed while measuring the U-Net's result does not redo them
    base = {m: baseline_step(steps, m, real, k_in, vz, s.block, truth_arr, truth_id) for m in BASELINES}
    k_ev, d_ev = evaluate_step(steps, final["predict"]["key"], d_pf, k_in, base, vz, s.block, truth_arr, truth_id)
    evaluation = json.loads((d_ev / "evaluation.json").read_text())

    # outputs --------------------------------------------------------------------------------------------------------
    from fibsynth.io import VolumeMeta, write_volume

    prob = np.load(d_pf / "probability.npy", mmap_mode="r")  # never read whole: outputs go block by block
    seg = np.load(d_ev / "segmentation.npy", mmap_mode="r")
    conf = LazyConfidence(prob)  # the report's planes only; confidence.tif is written from a scratch map
    work = Path(work_dir) if work_dir is not None else out / WORK
    drop_abandoned_partials(work, console)  # every prediction of this run is made
    vox = VoxelSize(z=vz[0], y=vz[1], x=vz[2])
    params = {"settings": s.model_dump(mode="json"), "real_stack": str(real_path), "energy_kev": energy,
              "energy_source": energy_note, "detector": s.detector, "estimate": {k: v["value"] for k, v in (est2 or est1)["quantities"].items()},
              "rounds": len(rounds), "chosen_round": choice["chosen_round"], "adaptation": method,
              "gan_plan": gan_plan, "segmentation_plan": seg_plan}
    if se_use:
        params["se_translation"] = {k: se_use[k] for k in ("detector", "translation", "why", "used_for")}
    label_meta = VolumeMeta(kind="label", voxel_size_nm=vox, generator="fibsynth reconstruct (U-Net)",
                            materials={"0": s.pore, "1": s.solid}, seed=s.seed, energy_kev=energy, parameters=params,
                            offset_voxels=offset)
    prob_meta = label_meta.model_copy(update={"kind": "image", "generator": "fibsynth reconstruct: P(solid) per voxel"})
    conf_meta = label_meta.model_copy(update={
        "kind": "image", "generator": "fibsynth reconstruct: confidence |2P-1| (0 = undecided, 1 = certain)"})

    def write_confidence(path: Path) -> dict:
        scratch = work / CONFIDENCE_SCRATCH
        try:
            low = confidence_blocks(prob, scratch, s.block)
            write_volume(path, np.load(scratch, mmap_mode="r"), conf_meta)
        finally:
            scratch.unlink(missing_ok=True)
        return {"low_confidence_fraction": low}

    # each file a cached step of its own (_Steps.files): a rerun writes only what is missing, was changed or is made
    # from other results; the baselines' files depend on the stack alone (not on the prediction, nor the truth)
    k_pf = final["predict"]["key"]
    written = steps.files("outputs", out, {
        "segmentation.tif": ({"meta": meta_key(label_meta)}, {"prediction": k_pf},
                             lambda p: write_volume(p, seg, label_meta) and None),
        "probability.tif": ({"meta": meta_key(prob_meta)}, {"prediction": k_pf},
                            lambda p: write_volume(p, prob, prob_meta) and None),
        "confidence.tif": ({"meta": meta_key(conf_meta)}, {"prediction": k_pf}, write_confidence),
        **{f"{m}.tif": ({"meta": meta_key(baseline_meta(label_meta, m, real_path))}, {"real": k_in},
                        lambda p, m=m: write_volume(p, np.load(base[m][1] / f"{m}.npy", mmap_mode="r"),
                                                    baseline_meta(label_meta, m, real_path)) and None)
           for m in BASELINES}}, "writing the segmentation, its confidence and the baselines")
    low_conf = written["confidence.tif"].get("low_confidence_fraction")
    if low_conf is None:  # an entry of confidence.tif always records it; a hand-edited one may not
        low_conf = confidence_fraction(prob, s.block)
    total = time.perf_counter() - t_start
    summary: dict[str, Any] = {
        "fibsynth_version": __version__, "real_stack": desc, "energy_kev": energy, "energy_source": energy_note,
        "detector": s.detector, "device": device, "threads": threads["threads"], "threads_choice": threads,
        "voxel_size_nm": {"x": vz[2], "y": vz[1], "z": vz[0]}, "settings": s.model_dump(mode="json"),
        "inspection": {k: v for k, v in insp.items() if k not in ("histogram", "drift_shifts_px")},
        "estimate_first_pass": est1, "estimate_from_reconstruction": est2, "moved": moved_keys,
        "round_choice": choice, "round_mds": round_mds, "candidate_mds": candidate_mds, "adaptation": method,
        "rounds": [{"round": r["round"], "structures": r["generate"]["structures"],
                    "histogram_distances": r["adapt"]["distances"] if r["adapt"] else None,
                    "training": {k: v for k, v in r["train"]["record"].items() if k != "history"},
                    "seed": r["train"]["seed"], "seed_choice": r["seed_choice"],
                    **({"ensemble_seeds": [c["train"]["seed"] for c in r["candidates"]]}
                       if r["seed_choice"] is None and len(r["candidates"]) > 1 else {}),
                    "candidates_training": ([{k: v for k, v in c["train"]["record"].items() if k != "history"}
                                             for c in r["candidates"]] if len(r["candidates"]) > 1 else None)}
                   for r in rounds],
        "gan_plan": gan_plan, "segmentation_plan": seg_plan,
        "evaluation": evaluation, "low_confidence_fraction": low_conf, "steps": steps.log, "seconds_total": round(total, 1),
        "outputs": {"segmentation": "segmentation.tif", "probability": "probability.tif",
                    "confidence": "confidence.tif", "otsu": "otsu.tif", "kmeans": "kmeans.tif",
                    "report": "report.html"},
    }
    if se_use:  # which SE imaging made the fast images, and why (BSE summaries: as before)
        summary["se_translation"] = se_use
    if fill_note:  # the outputs cover the region without the alignment fill (summaries of other stacks: as before)
        summary["region"] = {"offset_zyx": list(offset), "shape_zyx": list(seg.shape), "note": fill_note}
    tr_last = final["train"]["record"]
    summary["warnings"] = [disk_note] if disk_note else []
    if tr_last.get("best_val_mds") is not None and tr_last["best_val_mds"] < tr_last["val_otsu_mds"]:
        summary["warnings"].append(f"the U-Net's validation MDS ({tr_last['best_val_mds']:.3f}) ended below Otsu's "
                                   f"({tr_last['val_otsu_mds']:.3f}) on the same held-out synthetic data: do not trust "
                                   "this segmentation more than the threshold; give it more training (seg_steps) or "
                                   "check the structure estimate")
    from fibsynth.io import atomic_path
    from fibsynth.reconstruct.report import write_reconstruct_report

    def write_summary(path: Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(summary, indent=2, default=str))

    def write_report(path: Path) -> None:
        write_reconstruct_report(path, summary, real=real, seg=seg, conf=conf, prob=prob, insp=insp, rounds=rounds,
                                 eval_dir=d_ev, voxel=vox, final=final)

    # the summary and the report: rewritten only where what they show changed (not for a rerun's own timings)
    r_key = ({"summary": summary_key(summary)}, {"real": k_in, "evaluation": k_ev, **report_inputs(rounds)})
    steps.files("report", out, {"summary.json": (*r_key, write_summary), "report.html": (*r_key, write_report)},
                "writing the summary and the report")
    console.print(f"[bold green]done[/] in {time.perf_counter() - t_start:.0f} s: {out / 'segmentation.tif'}, "
                  f"report {out / 'report.html'}")
    return summary
