"""Ground-truth structures: leveled-wave (single-level) and hierarchical nanoporous gold (binary), and
structures of three or more phases (label volumes 0..n-1, :mod:`.multiphase`).

Python API::

    from fibsynth.structure import leveled_wave, hierarchical, write_structure
    solid = leveled_wave((128, 128, 128), voxel_size=5.0, solid_fraction=0.3, ligament_nm=50.0, seed=1)
    solid, model = leveled_wave(..., return_model=True)      # model: waves, q0, threshold, .meta()
    write_structure("big.zarr", model)                        # chunk by chunk (any size)

See ``docs/structure.md``.
"""

from fibsynth.structure.calibration import ligament_factor
from fibsynth.structure.chunked import to_dask, write_chunked
from fibsynth.structure.hierarchical import Hierarchical, HierarchicalConfig, hierarchical, hierarchical_config
from fibsynth.structure.leveled_wave import (
    DEFAULT_WAVES,
    LeveledWave,
    LWMConfig,
    leveled_wave,
    lwm_config,
    wave_number,
)
from fibsynth.structure.multiphase import (
    Multiphase,
    MultiphaseConfig,
    import_labels,
    multiphase,
    multiphase_config,
    phase_fractions,
    write_multiphase,
)
from fibsynth.structure.write import import_structure, write_structure

__all__ = [
    "DEFAULT_WAVES",
    "Hierarchical",
    "HierarchicalConfig",
    "LWMConfig",
    "LeveledWave",
    "Multiphase",
    "MultiphaseConfig",
    "hierarchical",
    "hierarchical_config",
    "import_labels",
    "import_structure",
    "leveled_wave",
    "ligament_factor",
    "lwm_config",
    "multiphase",
    "multiphase_config",
    "phase_fractions",
    "to_dask",
    "wave_number",
    "write_multiphase",
    "write_chunked",
    "write_structure",
]
