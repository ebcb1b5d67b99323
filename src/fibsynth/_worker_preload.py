"""Preloaded into every dask worker process that :func:`fibsynth.distributed.dask_client` starts.

A Ctrl-C in the terminal reaches the whole process group; the workers do not stop on it (the command's own process
stops them when it unwinds, so the user sees one line, not a KeyboardInterrupt traceback per worker). On that Ctrl-C
a worker also silences its dask/tornado/asyncio loggers: while the command's process closes the cluster, a worker on
a loaded machine can miss its scheduler heartbeat and would log a multi-line "Failed to communicate with scheduler
during heartbeat" traceback into the user's terminal after fibsynth's own line.
"""

import signal
import threading

from fibsynth.cliutil import silence_loggers

_WORKER_LOGGERS = ("distributed", "tornado", "asyncio", "dask")


def _quiet_on_interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    """Do not stop (the parent closes the cluster); only keep the shutdown's log lines out of the terminal."""
    silence_loggers(_WORKER_LOGGERS)


if threading.current_thread() is threading.main_thread():  # pragma: no branch - workers load this in their main thread
    signal.signal(signal.SIGINT, _quiet_on_interrupt)
