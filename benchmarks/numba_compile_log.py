"""pytest plugin: which test compiles which numba kernel, and for how long (CPU seconds).

    PYTHONPATH=src:benchmarks python -m pytest -p numba_compile_log tests/physics -q
    NUMBA_COMPILE_LOG=out.json (default numba_compile_log.json)

Writes one record per test (its CPU and wall seconds, the load) and one per top-level numba compilation (the
jitted function, the test that triggered it, CPU seconds including the functions compiled inside it, the argument
types), and prints the compilations over 2 s at the end. Run it on a fresh clone or with an empty
``NUMBA_CACHE_DIR`` to see the cold (CI) picture; a kernel listed twice with different argument types is compiled
twice (docs/architecture.md, "The test suite's time")."""

import json
import os
import time

import pytest
from numba.core import event

_state = {"test": None, "depth": 0, "t0": 0.0}
_log = []


class _Listener(event.Listener):
    def on_start(self, ev):
        _state["depth"] += 1
        if _state["depth"] == 1:
            _state["t0"] = time.process_time()

    def on_end(self, ev):
        if _state["depth"] == 1:
            f = getattr(ev.data.get("dispatcher"), "py_func", None)
            name = f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', '?')}"
            _log.append({"test": _state["test"], "compiled": name, "cpu_s": time.process_time() - _state["t0"],
                         "args": str(ev.data.get("args"))[:400]})
        _state["depth"] -= 1


event.register("numba:compile", _Listener())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _state["test"] = item.nodeid
    c0, w0 = time.process_time(), time.perf_counter()
    yield
    _log.append({"test": item.nodeid, "compiled": None, "cpu_s": time.process_time() - c0,
                 "wall_s": time.perf_counter() - w0, "load": os.getloadavg()[0]})


def pytest_terminal_summary(terminalreporter):
    with open(os.environ.get("NUMBA_COMPILE_LOG", "numba_compile_log.json"), "w") as f:
        json.dump(_log, f, indent=0)
    big = sorted((r for r in _log if r["compiled"] and r["cpu_s"] > 2.0), key=lambda r: -r["cpu_s"])
    terminalreporter.write_line(f"numba compilations over 2 s (CPU): {len(big)}, "
                                f"{sum(r['cpu_s'] for r in big):.1f} s in all")
    for r in big:
        terminalreporter.write_line(f"  {r['cpu_s']:6.1f} s  {r['compiled']}  <- {r['test']}")
