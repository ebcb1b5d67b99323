"""Deprecated alias of :mod:`fibsynth.physics.montecarlo.backend_torch` (the torch backend runs on the CPU
too, so it is no longer called ``gpu``). Kept for one release; import from ``backend_torch``."""

import warnings

warnings.warn("fibsynth.physics.montecarlo.gpu is deprecated: import fibsynth.physics.montecarlo.backend_torch",
              DeprecationWarning, stacklevel=2)

from fibsynth.physics.montecarlo.backend_torch import *  # noqa: F401,F403
from fibsynth.physics.montecarlo.backend_torch import (  # noqa: F401
    _BIG,
    _POLAR,
    _STATE,
    TorchTables,
    _dtype,
    _Geometry,
    _splitmix64,
    _sync,
    _threads,
    bulk_eta_torch,
    default_batch,
    film_eta_torch,
    pick_device,
    run_layers_torch,
    sample_mu_table,
    scatter,
    simulate_slice_torch,
    torch_seed,
    transport,
)
