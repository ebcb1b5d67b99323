"""Preloaded into every dask worker process that :func:`fibsynth.distributed.dask_client` starts.

A Ctrl-C in the terminal reaches the whole process group; the workers ignore it, and the command's own process
stops them when it unwinds (so the user sees one line, not a KeyboardInterrupt traceback per worker).
"""

import signal
import threading

if threading.current_thread() is threading.main_thread():  # pragma: no branch - workers load this in their main thread
    signal.signal(signal.SIGINT, signal.SIG_IGN)
