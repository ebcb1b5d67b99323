"""``fibsynth reconstruct``: from a real FIB-SEM stack to a trusted 3D segmentation in one command (issue 14).

Python API::

    from fibsynth.reconstruct import ReconstructSettings, reconstruct
    summary = reconstruct("my_stack.tif", "out/", ReconstructSettings(voxel_nm=4, slice_nm=8, energy_kev=2))

Steps, outputs and measured accuracy: ``docs/reconstruct.md``.
"""

from pathlib import Path

from fibsynth.reconstruct.estimate import estimate_structure, first_pass, structure_stats
from fibsynth.reconstruct.settings import ReconstructSettings
from fibsynth.reconstruct.run import reconstruct  # the binary workflow, or n phases for MultiphaseSettings

EXAMPLE_STACK = Path(__file__).resolve().parent / "data" / "example_stack.tif"

__all__ = ["EXAMPLE_STACK", "ReconstructSettings", "estimate_structure", "first_pass", "reconstruct",
           "structure_stats"]
