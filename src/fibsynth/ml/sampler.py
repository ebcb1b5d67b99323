"""The seeded order of training items.

:class:`EpochSampler` yields ``(epoch, index)`` keys. The order of epoch ``e`` depends only on ``(seed, e)``, and a
dataset that draws its augmentation from ``(seed, epoch, index)`` is then reproducible item by item: a run resumed
after epoch ``e`` draws exactly what the uninterrupted run draws (Lightning calls :meth:`set_epoch` before every
epoch, also after a resume).

An epoch may hold fewer items than the data set (``per_epoch < n``: the first ``per_epoch`` of the epoch's
permutation) or more (``per_epoch > n``: several permutations, drawn one after another from the epoch's generator,
concatenated); that is how a schedule counted in optimizer steps runs on a stack of any size.
"""

from __future__ import annotations

import numpy as np

STREAM = 7919  # the sampler's own stream in (seed, STREAM, epoch)


class EpochSampler:
    """Keys ``(epoch, index)`` of one epoch: shuffled (seeded by ``(seed, epoch)``) or in order."""

    def __init__(self, n: int, seed: int, per_epoch: int | None = None, shuffle: bool = True):
        if n < 1:
            raise ValueError("EpochSampler needs at least one item")  # internal misuse
        self.n, self.seed, self.per_epoch, self.shuffle, self.epoch = int(n), int(seed), per_epoch, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if not self.per_epoch:
            return self.n
        return int(self.per_epoch) if self.shuffle else min(self.n, int(self.per_epoch))

    def order(self, epoch: int) -> np.ndarray:
        """The item indices of ``epoch``, in the order they are drawn."""
        if not self.shuffle:
            return np.arange(len(self))
        rng = np.random.default_rng((self.seed, STREAM, int(epoch)))
        need = len(self)
        parts = [rng.permutation(self.n)]
        while sum(p.size for p in parts) < need:
            parts.append(rng.permutation(self.n))
        return np.concatenate(parts)[:need]

    def __iter__(self):
        return iter([(self.epoch, int(i)) for i in self.order(self.epoch)])
