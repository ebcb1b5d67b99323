"""Weights on disk, checkpoints and exact resume.

* :func:`load_weights` / :func:`save_weights`: a flat ``{name: tensor}`` state file, read with
  ``torch.load(weights_only=True)`` (no pickled code runs) and written atomically. Anything else -- a missing,
  empty, truncated or garbage file, pickled objects, a list -- is a one-line :class:`FibsynthError`.
* :func:`last_checkpoint`: a Lightning callback that writes the whole training state to one ``last.ckpt`` after
  every epoch (through a temporary file and a rename, so a killed run leaves the previous epoch's checkpoint,
  never a torn one or a ``last-v1.ckpt``).
* :func:`check_resume`: before resuming, read the checkpoint weights-only and compare its weights with the
  model about to be trained: a corrupt checkpoint or one of another architecture is a one-line error.
* :func:`content_hash`: SHA-256 of training arrays (shape, type and bytes), the key that a resume must match.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from fibsynth.errors import FibsynthError

LAST = "last.ckpt"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]


def load_weights(path: str | Path, *, param: str | None = None) -> dict:
    """``{name: tensor}`` from a weights-only state file, or a one-line refusal naming the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FibsynthError("weights file not found", path, param=param)
    if path.stat().st_size == 0:
        raise FibsynthError("refused: empty weights file", path, param=param)
    try:
        with warnings.catch_warnings():  # torch's remarks on a foreign file's pickle protocol: the refusal says it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any failure to parse a weights-only file is a refusal, never a crash or an abort
        raise FibsynthError(f"refused: not a weights-only tensor file ({_first_line(exc)})", path, param=param) from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise FibsynthError("refused: expected a state_dict of named tensors", path, param=param)
    return state


def save_weights(path: str | Path, state: dict) -> Path:
    """Write a state dict (tensors copied to the CPU) to ``path`` atomically."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save({k: v.detach().cpu().clone() for k, v in state.items()}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_into(module, state: dict, path: str | Path, what: str = "the model") -> None:
    """``module.load_state_dict(state, strict=True)`` with a one-line error when the weights do not fit."""
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise FibsynthError(f"weights do not match {what} ({_first_line(exc)})", path) from None


def last_checkpoint(path: str | Path, *, after: str = "train_epoch"):
    """A Lightning callback that saves the whole training state to ``path`` after every epoch.

    ``after="train_epoch"`` (the one to use for resuming, also when a validation runs at the end of each epoch):
    at the end of the training epoch, as Lightning's ``ModelCheckpoint`` does -- the epoch counts as processed,
    so a resumed run starts the next epoch. ``after="validation"`` saves after the validation instead (a state
    Lightning resumes mid-epoch). As a ``Checkpoint`` it runs after the model's and the other callbacks'
    epoch-end hooks, so the state it writes is complete."""
    from lightning.pytorch.callbacks import Checkpoint

    if after not in ("train_epoch", "validation"):
        raise ValueError(after)

    class LastCheckpoint(Checkpoint):
        def __init__(self):
            self.path = Path(path)

        @property
        def state_key(self) -> str:
            return "fibsynth.LastCheckpoint"

        def _save(self, trainer) -> None:
            if trainer.sanity_checking or trainer.state.fn != "fit":
                return
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            trainer.save_checkpoint(tmp)
            if trainer.is_global_zero:
                os.replace(tmp, self.path)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            if after == "train_epoch":
                self._save(trainer)

        def on_validation_end(self, trainer, pl_module) -> None:
            if after == "validation":
                self._save(trainer)

    return LastCheckpoint()


def check_resume(path: str | Path, module, *, param: str = "resume") -> None:
    """Refuse (one line naming ``param``) a checkpoint that cannot be read weights-only or whose weights are not
    those of ``module`` (names and shapes)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FibsynthError(f"no checkpoint {path}", param=param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FibsynthError(f"cannot read checkpoint {path} ({_first_line(exc)})", param=param) from None
    state = ck.get("state_dict") if isinstance(ck, dict) else None
    if not isinstance(state, dict) or "loops" not in ck:
        raise FibsynthError(f"{path} is not a training checkpoint of this run", param=param)
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items() if torch.is_tensor(v)}
    if want != have:
        diff = sorted(set(want) ^ set(have)) or sorted(k for k in want if want[k] != have.get(k))
        raise FibsynthError(f"checkpoint {path} holds another architecture (differs in {diff[0]}"
                            f"{' and more' if len(diff) > 1 else ''}); train into a new folder", param=param)


def content_hash(arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 over the shape, type and bytes of each array, in order (streamed slice by slice)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        h.update(f"{a.dtype.str}{a.shape};".encode())
        if a.ndim == 0:
            h.update(a.tobytes())
            continue
        for part in a:
            h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()
