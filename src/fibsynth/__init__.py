"""fibsynth: synthetic FIB-SEM tomography of nanoporous materials.

Stages (one sub-package each): :mod:`fibsynth.structure`, :mod:`fibsynth.physics`,
:mod:`fibsynth.metrics`, :mod:`fibsynth.io`; the command line lives in :mod:`fibsynth.cli`.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("fibsynth")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
