"""Evaluation metrics: ground-truth scores (MP, MGP, Dice) and isotropy errors (TPCF, LPF, ligament diameter)."""

from fibsynth.metrics.thickness import (
    edt_nm,
    local_thickness,
    mean_ligament_diameter,
    planar_mean_diameter,
    planar_thickness_stack,
)

__all__ = [
    "edt_nm",
    "local_thickness",
    "mean_ligament_diameter",
    "planar_mean_diameter",
    "planar_thickness_stack",
]
