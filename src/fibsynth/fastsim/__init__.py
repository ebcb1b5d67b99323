"""Fast physics path: Hunger-Kuechler, the eta(E, Z, depth) network and the shine-through projection.

    from fibsynth.fastsim import load_model, project
    model = load_model()                                  # the shipped network (trained on the packaged sMC-BS)
    eta = model.predict(2.0, 79, [0, 10, 20])             # gold under 0/10/20 nm of epoxy at 2 keV
    images, record = project(structure, (5, 5, 5), 2.0)   # one float32 image per slice (z, y, x)
    noisy, mean = load_paired()(structure, (5, 5, 5), 2.0, electrons_per_pixel=100, seed=0)  # Monte-Carlo-like

See docs/fastsim.md for the model and its measured fidelity against the Monte Carlo.
"""

_EXPORTS = {
    "CalibrationSettings": "calibration", "generate": "calibration", "read_table": "calibration",
    "DEFAULT_TABLE": "network", "DEFAULT_WEIGHTS": "network", "EtaModel": "network", "TrainSettings": "network",
    "load_model": "network", "train": "network",
    "DEFAULT_SPREAD": "projection", "default_slices_behind": "projection", "project": "projection",
    "ray_cells": "projection", "THIN_SOLID_DEPTH": "projection",
    "check_materials": "multiphase", "project_labels": "multiphase",
    "PairedTranslator": "translator", "load_paired": "translator", "shot_noise": "translator",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):  # lazy: importing the CLI group must not pull in numba/torch
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"fibsynth.fastsim.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'fibsynth.fastsim' has no attribute {name!r}")
