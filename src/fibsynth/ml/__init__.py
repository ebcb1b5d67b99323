"""The ML toolkit shared by fibsynth's three trainers (the eta network, the CycleGAN, the segmentation U-Nets).

* :mod:`.sampler` -- :class:`EpochSampler`: the seeded order of training items, epoch by epoch (exact resume).
* :mod:`.tiling` -- tiled inference on images larger than one window: window grids, blending weights (Hann ramps,
  MONAI's Gaussian importance map) and the one weighted-accumulation loop.
* :mod:`.schedule` -- learning-rate plateau and early stopping (one definition of "improved").
* :mod:`.checkpoint` -- weights-only state files (atomic save, one-line refusals), the one ``last.ckpt`` written
  every epoch, resume checks (corrupt or different-architecture checkpoints) and content hashes of training data.
* :mod:`.runtime` -- torch devices and thread counts (validated once, thread settings scoped), and a quiet,
  interrupt-aware Lightning ``Trainer``.

Importing this package imports neither torch nor Lightning; the functions that need them import them when called.
"""

from fibsynth.ml.sampler import EpochSampler
from fibsynth.ml.schedule import EarlyStop

__all__ = ["EarlyStop", "EpochSampler"]
