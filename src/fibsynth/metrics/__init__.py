"""Evaluation metrics: ground-truth scores (MP, MGP, Dice; per phase for n phases) and isotropy errors (TPCF, LPF,
ligament diameter)."""

from fibsynth.metrics.correlation import chord_length_histogram, directional_lineal_path, directional_tpcf
from fibsynth.metrics.ground_truth import confusion_counts, evaluate_segmentation, scores_from_counts
from fibsynth.metrics.isotropy import (
    diameter_error,
    directional_functions,
    isotropy_report,
    l2_anisotropy_error,
    planar_ligament_diameters,
)
from fibsynth.metrics.multiphase import confusion_matrix, evaluate_phases, phase_structure, scores_from_confusion
from fibsynth.metrics.thickness import (
    edt_nm,
    local_thickness,
    mean_ligament_diameter,
    planar_mean_diameter,
    planar_thickness_stack,
)

__all__ = [
    "chord_length_histogram",
    "confusion_counts",
    "confusion_matrix",
    "diameter_error",
    "directional_functions",
    "directional_lineal_path",
    "directional_tpcf",
    "edt_nm",
    "evaluate_phases",
    "evaluate_segmentation",
    "isotropy_report",
    "l2_anisotropy_error",
    "local_thickness",
    "mean_ligament_diameter",
    "phase_structure",
    "planar_ligament_diameters",
    "planar_mean_diameter",
    "planar_thickness_stack",
    "scores_from_confusion",
    "scores_from_counts",
]
