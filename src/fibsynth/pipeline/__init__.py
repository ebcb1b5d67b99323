"""The pipeline layer: one function per product, each also making the product's one metadata record.

Stages (``structure``, ``physics.montecarlo``, ``fastsim``, ``gan``, ``segment``, ``metrics``) compute arrays; the
functions here call them and label the result (:mod:`fibsynth.pipeline.products`). Experiment steps
(:mod:`fibsynth.experiment.steps`), the demo (a shipped experiment, ``pipeline/data/demo.yaml``), the napari widget,
``fibsynth synth`` and ``fibsynth mc stack`` go through this layer. See docs/architecture.md.
"""

from fibsynth.pipeline.products import (
    ADAPTED,
    BASELINE,
    FAST,
    GROUND_TRUTH,
    MONTECARLO,
    PHASES,
    PORE,
    PROJECTION,
    SEGMENTATION,
    SOLID,
    TRANSLATIONS,
    Product,
    adapted_stack,
    baseline_segmentation,
    best_translation,
    evaluation,
    fast_stack,
    label_meta,
    label_phases,
    make_multiphase,
    make_structure,
    montecarlo_meta,
    montecarlo_stack,
    phases,
    segmentation,
    shipped_model_for,
)

__all__ = [
    "ADAPTED", "BASELINE", "FAST", "GROUND_TRUTH", "MONTECARLO", "PHASES", "PORE", "PROJECTION", "SEGMENTATION",
    "SOLID", "TRANSLATIONS", "Product", "adapted_stack", "baseline_segmentation", "best_translation", "evaluation",
    "fast_stack", "label_meta",
    "label_phases", "make_multiphase", "make_structure", "montecarlo_meta", "montecarlo_stack", "phases",
    "segmentation", "shipped_model_for",
]
