"""``reestimate_bias`` through the workflow: off by default (the step keys of a run stay as they were), and the
n-phase workflow refuses it in one line."""

from __future__ import annotations

import pytest

from fibsynth.errors import FibsynthError
from fibsynth.reconstruct.settings import ReconstructSettings


def test_off_by_default():
    assert ReconstructSettings().reestimate_bias is False


def test_the_n_phase_workflow_refuses_it():
    from fibsynth.reconstruct.multiphase import MultiphaseSettings

    assert MultiphaseSettings(phases=3).reestimate_bias is False
    with pytest.raises((FibsynthError, ValueError)):
        MultiphaseSettings(phases=3, reestimate_bias=True)
