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
