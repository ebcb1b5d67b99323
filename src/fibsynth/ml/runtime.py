"""Where and how a model runs: torch devices and thread counts (validated once, thread settings scoped to the
work that asked for them), and a quiet, interrupt-aware Lightning ``Trainer``.

Lightning catches ``KeyboardInterrupt`` itself, tears down and calls ``sys.exit(1)``; :func:`fit` turns that back
into ``KeyboardInterrupt`` so that the CLI prints its one "interrupted" line and exits with 130, and the last
checkpoint stays for ``--resume``.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import warnings
from typing import Any, Iterator

from fibsynth.errors import FibsynthError

_LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                      "lightning.pytorch.accelerators.cuda", "lightning.fabric.utilities.seed",
                      "lightning.pytorch", "lightning.fabric", "lightning")


def torch_device(device: str | None = None, *, param: str = "device"):
    """A validated ``torch.device``: ``None`` = cuda if available, else cpu; ``cpu``, ``cuda``, ``cuda:N`` or
    ``mps``. Unknown names and devices this machine does not have are one-line errors naming ``param``."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(str(device))
    except (RuntimeError, ValueError, TypeError):
        raise FibsynthError(f"must be cpu, cuda, cuda:N or mps (got {device!r})", param=param) from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise FibsynthError(f"{device!r}: no CUDA device is available on this machine (use cpu)", param=param)
        if dev.index is not None and dev.index >= n:
            raise FibsynthError(f"{device!r}: this machine has {n} CUDA device(s)", param=param)
        return dev
    if dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise FibsynthError(f"{device!r}: no MPS device is available on this machine (use cpu)", param=param)
        return dev
    raise FibsynthError(f"must be cpu, cuda, cuda:N or mps (got {device!r})", param=param)


def lightning_device(device: str) -> dict[str, str]:
    """``accelerator`` / ``devices`` of a Lightning trainer for a torch device name (``auto``, ``cpu``, ``cuda``,
    ``cuda:N``): one device, CPU or the given GPU."""
    dev = torch_device(None if device == "auto" else device)
    if dev.type == "cuda":
        return {"accelerator": "gpu", "devices": f"{dev.index or 0},"}
    return {"accelerator": dev.type, "devices": "1"}


def resolved_device(device: str) -> str:
    """The torch device name ``device`` (``auto``: cuda if available, else cpu) resolves to on this machine."""
    return str(torch_device(None if device == "auto" else device))


def check_threads(threads: int | None, *, param: str = "threads") -> int | None:
    """``None`` (torch's default) or a thread count in [1, 1024]."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024:
        raise FibsynthError(f"must be a whole number in [1, 1024] (got {threads!r})", param=param)
    return threads


AUTO_THREADS_CAP = 16  # most threads the automatic rule gives one run (a choice: one run leaves a big node's rest free)


def _cgroup_cpus(path: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """CPUs a cgroup-v2 quota allows (``cpu.max`` = "QUOTA PERIOD"; "max" = no quota), or None when there is no
    quota or no such file (cgroup v1, macOS, Windows)."""
    try:
        with open(path) as fh:
            quota, period = fh.read().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(float(quota) / float(period), 0.0)
    except (ValueError, ZeroDivisionError):
        return None


def usable_cpus() -> int:
    """CPUs this process may run on: its CPU affinity (``os.sched_getaffinity``, which a batch scheduler or
    ``taskset`` narrows; ``os.cpu_count()`` where the platform has no affinity), further bounded by a cgroup-v2 CPU
    quota (a container's ``--cpus``), rounded up. At least 1."""
    import math
    import os

    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    q = _cgroup_cpus()
    if q is not None:
        n = min(n, max(1, math.ceil(q)))
    return max(1, n)


def load_1min() -> float:
    """The 1-minute load average (runnable + waiting tasks of the whole machine), 0 where the platform has none."""
    import os

    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def auto_threads(usable: int | None = None, load: float | None = None, cap: int = AUTO_THREADS_CAP) -> int:
    """The thread count of ``threads="auto"``: the usable CPUs less the machine's current 1-minute load (rounded
    half up), between 1 and ``cap``: ``max(1, min(usable - round(load), cap))``. So a 2-core machine already
    running two or more busy processes gets 1 thread (oversubscribing shared cores made torch 15-17x slower there,
    docs/reconstruct.md), an idle one 2, an idle 16-core node 16. ``usable`` / ``load``: default
    :func:`usable_cpus` / :func:`load_1min` (given in tests)."""
    import math

    usable = usable_cpus() if usable is None else int(usable)
    load = load_1min() if load is None else float(load)
    busy = math.floor(max(load, 0.0) + 0.5)
    return max(1, min(usable - busy, int(cap)))


def resolve_threads(threads: int | str, *, param: str = "threads") -> tuple[int, dict[str, Any]]:
    """``threads`` as a count: an integer in [1, 1024] as given, ``"auto"`` by :func:`auto_threads` at this moment.
    Returns the count and a record of how it was chosen (for a run's summary): ``{"threads", "rule", "usable_cpus",
    "load_1min"}``."""
    if isinstance(threads, str) and threads.strip().lower() == "auto":
        usable, load = usable_cpus(), load_1min()
        n = auto_threads(usable, load)
        return n, {"threads": n, "rule": f"auto: max(1, min(usable CPUs - round(1-min load), {AUTO_THREADS_CAP}))",
                   "usable_cpus": usable, "load_1min": load}
    if isinstance(threads, str) and threads.strip().isdigit():
        threads = int(threads.strip())
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024:
        raise FibsynthError(f"must be auto or a whole number in [1, 1024] (got {threads!r})", param=param)
    return threads, {"threads": threads, "rule": "given"}


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` torch CPU threads, then give the process its previous count back
    (``None``: leave it as it is)."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def quiet_lightning(verbose: bool = False) -> Iterator[None]:
    """Lightning without its banners ("GPU available", "TPU available", tips), seed lines, and without
    deprecation / "possible user" warnings from the libraries; errors and fibsynth's own warnings pass."""
    if verbose:
        yield
        return
    levels = {}
    for name in _LIGHTNING_LOGGERS:
        lg = logging.getLogger(name)
        levels[name] = lg.level
        lg.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        for mod in ("lightning", "torch", "monai", "pytorch_lightning", "lightning_utilities"):
            warnings.filterwarnings("ignore", category=UserWarning, module=rf"{mod}(\.|$)")
        try:
            yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


def _trainer_error(exc: Exception, keys: dict[str, str]) -> FibsynthError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    low = first.lower()
    if "strateg" in low and "strategy" in keys:
        param = keys["strategy"]
    elif "device" in low and "devices" in keys and "accelerator" not in low:
        param = keys["devices"]
    else:
        param = keys.get("accelerator", "accelerator")
    return FibsynthError(first, param=param)


def make_trainer(*, params: dict[str, str] | None = None, **kw: Any):
    """``lightning.Trainer(**kw)``, quietly; a setting Lightning refuses (an accelerator this machine lacks, an
    unknown strategy, a device list it cannot use) is a one-line error naming the Python parameter
    (``params`` maps accelerator / devices / strategy to the caller's parameter names)."""
    import lightning.pytorch as pl

    keys = {"accelerator": "accelerator", "devices": "devices", "strategy": "strategy", **(params or {})}
    with quiet_lightning():
        try:
            return pl.Trainer(**kw)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise _trainer_error(exc, keys) from None
        except Exception as exc:  # lightning's MisconfigurationException and friends
            if type(exc).__module__.startswith(("lightning", "pytorch_lightning")):
                raise _trainer_error(exc, keys) from None
            raise


def fit(trainer, module, *loaders, ckpt_path: str | None = None, verbose: bool = False) -> None:
    """``trainer.fit`` quietly, restoring the process-wide deterministic-algorithms flag that
    ``Trainer(deterministic=True)`` switches, and re-raising a Ctrl-C that Lightning turned into ``sys.exit(1)``."""
    import torch

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    handler = signal.getsignal(signal.SIGINT)
    try:
        with quiet_lightning(verbose):
            trainer.fit(module, *loaders, ckpt_path=ckpt_path, weights_only=True if ckpt_path else None)
    except SystemExit as exc:  # Lightning's sys.exit(1), raised while it handles the KeyboardInterrupt
        if isinstance(exc.__context__, KeyboardInterrupt) or getattr(trainer, "interrupted", False):
            raise KeyboardInterrupt from None
        raise
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
        with contextlib.suppress(ValueError, TypeError):  # Lightning ignores SIGINT while it shuts down
            signal.signal(signal.SIGINT, handler if handler is not None else signal.default_int_handler)
