"""Learning-rate plateau and early stopping, one definition for the three trainers.

"Improved" means strictly below the best value so far (Lightning's ``EarlyStopping`` with ``min_delta=0``); the
learning rate is multiplied by ``factor`` after ``lr_patience`` rounds without improvement (torch's
``ReduceLROnPlateau``, mode ``min``); training stops after ``patience`` rounds without improvement.
"""

from __future__ import annotations

import math


class EarlyStop:
    """Plain-Python early stopping on a value to minimise: :meth:`step` returns True when training should stop.

    Same rule as the Lightning callback made by :func:`early_stopping`, for loops without Lightning."""

    def __init__(self, patience: int):
        self.patience = int(patience)
        self.best = math.inf
        self.best_round = -1
        self.bad = 0
        self.rounds = 0

    def step(self, value: float) -> bool:
        improved = value < self.best
        if improved:
            self.best, self.best_round, self.bad = float(value), self.rounds, 0
        else:
            self.bad += 1
        self.rounds += 1
        return self.bad >= self.patience

    @property
    def improved(self) -> bool:
        """Whether the last :meth:`step` set a new best."""
        return self.best_round == self.rounds - 1


def plateau_scheduler(optimizer, *, factor: float, patience: int):
    """torch's ``ReduceLROnPlateau`` (mode ``min``, its default relative threshold 1e-4) with these settings."""
    import torch

    return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=patience)


def early_stopping(monitor: str, patience: int, *, on_train_epoch_end: bool | None = None):
    """The Lightning callback with :class:`EarlyStop`'s rule, on the logged metric ``monitor``."""
    from lightning.pytorch.callbacks import EarlyStopping

    kw = {} if on_train_epoch_end is None else {"check_on_train_epoch_end": on_train_epoch_end}
    return EarlyStopping(monitor=monitor, mode="min", patience=patience, min_delta=0.0, verbose=False, **kw)
