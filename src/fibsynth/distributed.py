"""One way to get a dask.distributed client for the embarrassingly parallel stages.

Every command that can spread work over dask workers takes the same two options:

* ``--scheduler ADDRESS``: use an existing cluster (``tcp://host:8786``); its workers must see the same file
  system paths as this process (inputs and outputs are read and written by the workers themselves);
* ``--workers N``: start a local cluster of N worker *processes* (one thread each) for this command only.

With neither, the command runs in this process and no dask.distributed machinery is started.
:func:`dask_client` turns these options into a :class:`distributed.Client` (or ``None``) and closes what it
started, the client and any local cluster, when the block ends, also on errors.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator

from fibsynth.errors import FibsynthError

SCHEDULER_HELP = "Address of a running dask scheduler (tcp://HOST:PORT): spread the work over its workers."
WORKERS_HELP = "Start a local dask cluster of N worker processes (one thread each) for this command."


def _is_client(obj: Any) -> bool:
    if obj is None or isinstance(obj, str):
        return False
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return False
    return isinstance(obj, Client)


def wants_cluster(scheduler: Any = None, workers: int | None = None) -> bool:
    """True when the options ask for dask.distributed (an address, a Client, or a worker count)."""
    return bool(scheduler) or workers is not None


def check_options(scheduler: Any = None, workers: int | None = None) -> None:
    """One-line errors (naming ``scheduler`` / ``workers``) for contradictory or out-of-range values."""
    if scheduler is not None and not _is_client(scheduler) and not (isinstance(scheduler, str) and scheduler.strip()):
        raise FibsynthError(f"needs an address such as tcp://HOST:8786 (got {scheduler!r})", param="scheduler")
    if scheduler is not None and workers is not None:
        raise FibsynthError("give a scheduler (an existing cluster) or workers (a local cluster), not both",
                            param=("scheduler", "workers"))
    if workers is not None and int(workers) < 1:
        raise FibsynthError(f"--workers must be >= 1 (got {workers})")  # wording pinned by CLI tests


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextmanager
def dask_client(scheduler: Any = None, workers: int | None = None) -> Iterator[Any]:
    """Yield a :class:`distributed.Client` for ``scheduler`` / ``workers``, or ``None`` when neither is given.

    ``scheduler`` is an address (connect to that cluster) or an existing Client (used as is and left open).
    ``workers`` starts ``LocalCluster(n_workers=workers, processes=True, threads_per_worker=1)``; its workers
    share this machine's cores for numba (``NUMBA_NUM_THREADS`` = cores // workers, at least 1). The client and
    the local cluster this call started are closed when the block exits.
    """
    check_options(scheduler, workers)
    if not wants_cluster(scheduler, workers):
        yield None
        return
    if _is_client(scheduler):
        yield scheduler
        return
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise FibsynthError(f"cannot connect to {scheduler} ({msg})", param="scheduler") from None
    else:
        n = int(workers)  # type: ignore[arg-type]
        numba_threads = max(1, _cpus() // n)
        if os.environ.get("NUMBA_NUM_THREADS", "").isdigit():  # a lower limit set by the user wins
            numba_threads = max(1, min(numba_threads, int(os.environ["NUMBA_NUM_THREADS"])))
        from fibsynth.cliutil import children_ignore_interrupts

        # the workers do not stop on SIGINT (ignored, inherited; fibsynth._worker_preload turns it into "silence your
        # loggers"): a Ctrl-C stops this process, which closes them, instead of every worker printing its own
        # traceback or, on a loaded machine, a missed-heartbeat traceback while it is being closed
        # dashboard_address=":0": with None the scheduler still starts its HTTP server on the default port 8787
        # and warns on stderr when another cluster holds it; ":0" takes any free port silently
        with children_ignore_interrupts():
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                   silence_logs=logging.ERROR, env={"NUMBA_NUM_THREADS": str(numba_threads)},
                                   preload=["fibsynth._worker_preload"])
        try:
            client = Client(cluster)
        except BaseException:
            cluster.close()
            raise
    try:
        yield client
    except KeyboardInterrupt:
        from fibsynth.cliutil import silence_after_interrupt

        silence_after_interrupt()  # the closing client and cluster log their cancelled tasks otherwise
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
