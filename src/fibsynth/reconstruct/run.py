"""``fibsynth.reconstruct.reconstruct``: the binary workflow (:mod:`.workflow`) or, for
:class:`~fibsynth.reconstruct.multiphase.MultiphaseSettings`, the n-phase one (:mod:`.multiphase`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def reconstruct(real_path: str | Path, out_dir: str | Path, settings: Any = None, *,
                truth: str | Path | None = None, quiet: bool = False, work_dir: str | Path | None = None
                ) -> dict[str, Any]:
    """Run the reconstruction of ``real_path`` into ``out_dir`` and return its summary: two phases with
    :class:`~fibsynth.reconstruct.ReconstructSettings` (:func:`fibsynth.reconstruct.workflow.reconstruct`), three or
    more with :class:`~fibsynth.reconstruct.multiphase.MultiphaseSettings`
    (:func:`fibsynth.reconstruct.multiphase.reconstruct_phases`, under the same thread settings)."""
    from fibsynth.reconstruct.multiphase import MultiphaseSettings, reconstruct_phases
    from fibsynth.reconstruct.workflow import reconstruct as reconstruct_binary

    if not isinstance(settings, MultiphaseSettings):
        return reconstruct_binary(real_path, out_dir, settings, truth=truth, quiet=quiet, work_dir=work_dir)
    from fibsynth.reconstruct.workflow import run_scope

    with run_scope(settings.threads) as threads:
        return reconstruct_phases(real_path, out_dir, settings, truth=truth, quiet=quiet, work_dir=work_dir,
                                  threads=threads)
