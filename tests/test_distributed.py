"""The local dask cluster fibsynth starts for ``--workers``."""

from __future__ import annotations

import socket
import warnings

import pytest

from fibsynth.distributed import dask_client


@pytest.mark.slow
def test_local_cluster_is_silent_when_port_8787_is_taken():
    """Another dask cluster on the machine holds the default dashboard port: fibsynth's own cluster must not warn
    about it (the warning lands in a microscopist's terminal and broke the one-line Ctrl-C check)."""
    holder = socket.socket()
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("0.0.0.0", 8787))
            holder.listen()
        except OSError:
            pass  # already taken by someone else: the situation under test
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with dask_client(workers=1) as client:
                assert client.submit(sum, [1, 2, 3]).result(timeout=60) == 6
        assert not [w for w in caught if "8787" in str(w.message)], [str(w.message) for w in caught]
    finally:
        holder.close()


def test_worker_keeps_running_on_ctrl_c_and_its_shutdown_logs_stay_out_of_the_terminal():
    """A dask worker (with fibsynth's preload) survives the terminal's Ctrl-C (the command closes it) and, from then
    on, logs nothing: a missed scheduler heartbeat while the command unwinds printed a 61-line traceback under load."""
    import subprocess
    import sys

    code = (
        "import io, logging, os, signal, time\n"
        "buf = io.StringIO()\n"
        "logging.getLogger('distributed').addHandler(logging.StreamHandler(buf))\n"
        "logging.getLogger('distributed').setLevel(logging.INFO)\n"
        "w = logging.getLogger('distributed.worker'); w.setLevel(logging.INFO)\n"
        "import fibsynth._worker_preload\n"
        "w.error('before the interrupt')\n"
        "os.kill(os.getpid(), signal.SIGINT); time.sleep(0.2)\n"
        "w.error('Failed to communicate with scheduler during heartbeat')\n"
        "logging.getLogger('distributed.nanny').warning('after')\n"
        "print(repr(buf.getvalue()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == repr("before the interrupt\n")
