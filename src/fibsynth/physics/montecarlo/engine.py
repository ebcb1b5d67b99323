"""Python API of the electron Monte Carlo on the numba backend: bulk and film targets (point beam on layers).

Settings live in :mod:`~fibsynth.physics.montecarlo.settings` (``Physics``, ``Beam``, ``Detector``), the set-up,
result type and parameter record shared with the torch backend in :mod:`~fibsynth.physics.montecarlo.setup`;
this module supplies the numba transport (:mod:`~fibsynth.physics.montecarlo.kernel`). The torch backend's
counterparts are ``backend_torch.run_layers_torch`` / ``bulk_eta_torch`` / ``film_eta_torch`` (same arguments,
same result and record); ``backend="torch"`` here dispatches to them.

Conventions: lengths in nm, energies in keV, z is the depth / milling direction (+z into the sample), the face
is the plane z = const. The beam is tilted within the y-z plane: direction (0, sin a, cos a) for incidence
angle a to the face normal (0 = normal incidence; the usual 52-degree stage tilt gives a = 38 degrees).
"""

from __future__ import annotations

import time

from fibsynth.errors import FibsynthError
from fibsynth.physics.materials import Material

# re-exported: the settings and shared pieces were defined here before the split (import them from here or there)
from fibsynth.physics.montecarlo.settings import (  # noqa: F401
    E_MAX_KEV,
    E_MIN_KEV,
    Beam,
    Detector,
    Physics,
    beam_direction,
    check_energy,
    check_incidence,
)
from fibsynth.physics.montecarlo.setup import (  # noqa: F401
    BACKENDS,
    LATERAL_INFINITE_NM,
    BseResult,
    binomial_std,
    check_backend,
    layer_column,
    layer_setup,
)

N_CHUNKS = 256  # fixed work partition of point-beam runs: tallies do not depend on the thread count


def run_layers(
    layers: list[tuple[str | Material, float]],
    substrate: str | Material,
    energy_kev: float,
    electrons: int,
    *,
    seed: int = 0,
    physics: Physics | None = None,
    detector: Detector | None = None,
    incidence_deg: float = 0.0,
    stream: int = 0,
    backend: str = "numba",
    device: str | None = None,
) -> BseResult:
    """Point beam on a laterally infinite stack of layers ``[(material, thickness_nm), ...]`` on ``substrate``.

    Implemented as a voxel column (one voxel per layer would need equal thicknesses, so layers are resolved on
    a grid of the greatest common thickness when there are several; one layer is one voxel).
    ``backend="torch"`` runs :func:`~fibsynth.physics.montecarlo.backend_torch.run_layers_torch` on ``device``.
    """
    check_backend(backend, device)
    if backend == "torch":
        from fibsynth.physics.montecarlo.backend_torch import run_layers_torch

        return run_layers_torch(layers, substrate, energy_kev, electrons, seed=seed, physics=physics,
                                detector=detector, incidence_deg=incidence_deg, stream=stream, device=device)
    from fibsynth.physics.montecarlo import kernel

    su = layer_setup(layers, substrate, energy_kev, electrons, seed=seed, physics=physics, detector=detector,
                     incidence_deg=incidence_deg)
    lat = LATERAL_INFINITE_NM
    t0 = time.perf_counter()
    tal, he, ha = kernel.run_point(
        su.electrons, N_CHUNKS, int(seed), int(stream), su.e0, 0.5 * lat, 0.5 * lat, su.by, su.bz, 0.0, 0.0,
        su.vol, su.dz, lat, lat, 0, su.substrate_id, False,
        su.emin, su.cmin, su.cmax, *su.tables.as_tuple(),
    )
    dt = time.perf_counter() - t0
    return BseResult(electrons=su.electrons, backscattered=int(tal[0]), detected=int(tal[1]), energy_hist=he,
                     angle_hist=ha, seconds=dt, parameters={**su.record, "backend": "numba"})


def bulk_eta(material, energy_kev, electrons, *, seed=0, physics=None, detector=None, incidence_deg=0.0,
             stream=0, backend="numba", device=None):
    """Backscatter coefficient of a bulk target (:class:`BseResult`)."""
    from fibsynth.physics.materials import is_vacuum

    if is_vacuum(material):
        raise FibsynthError("vacuum has no atoms: a bulk target needs matter", param="material")
    return run_layers([], material, energy_kev, electrons, seed=seed, physics=physics, detector=detector,
                      incidence_deg=incidence_deg, stream=stream, backend=backend, device=device)


def check_thickness(thickness_nm: float) -> float:
    if not float(thickness_nm) >= 0:
        raise FibsynthError(f"must be >= 0 nm (got {thickness_nm})", param="thickness_nm")
    return float(thickness_nm)


def film_eta(film, substrate, thickness_nm, energy_kev, electrons, *, seed=0, physics=None, detector=None,
             incidence_deg=0.0, stream=0, backend="numba", device=None):
    """Backscatter coefficient of a film of ``thickness_nm`` on a substrate (:class:`BseResult`)."""
    check_thickness(thickness_nm)
    return run_layers([(film, thickness_nm)], substrate, energy_kev, electrons, seed=seed, physics=physics,
                      detector=detector, incidence_deg=incidence_deg, stream=stream, backend=backend, device=device)
