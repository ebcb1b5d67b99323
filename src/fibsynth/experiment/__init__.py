"""Declarative, content-cached experiments: ``fibsynth run EXPERIMENT.yaml`` (see :mod:`.spec` for the format)."""

from fibsynth.experiment.runner import RunReport, StepReport, run_experiment
from fibsynth.experiment.spec import load_experiment

__all__ = ["RunReport", "StepReport", "load_experiment", "run_experiment"]
