"""The end-to-end demo behind ``make demo`` / ``fibsynth demo``: a shipped experiment plus its report step.

The pipeline is the experiment ``fibsynth/pipeline/data/demo.yaml`` (run by :mod:`fibsynth.experiment`, cached in
``OUT/work``); its last step (kind ``demo_report``, :func:`demo_report`) measures the structure, draws the figures
and writes the report; :func:`run_demo` sets the experiment's variables from its options, runs it and exports the
products to ``OUT`` under the demo's file names. On built-in defaults and a 2-core CPU it finishes in a few minutes: generate a leveled-wave nanoporous-gold
structure, measure it (solid fraction, 3D ligament diameter, isotropy errors), simulate a few FIB-SEM
cross-sections with the Monte Carlo engine (shine-through included), make Monte-Carlo-like stacks of it and of a
held-out structure with the fast path (shine-through projection + the paired translator, or ``translation="gan"``: the shipped
CycleGAN), train a small 2.5D U-Net on
the first, segment the second, score it against its ground truth next to an Otsu threshold, and write a
self-contained HTML report. ``--real STACK`` adds a slice and the gray-value histogram of the user's own FIB-SEM
stack next to the simulated ones (the paper's Fig. 5 compares all of them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fibsynth.io import atomic_path, write_volume
from fibsynth.pipeline.demo_report import _console, demo_report, read_real_stack  # noqa: F401  (re-exported)

DEMO_EXPERIMENT = Path(__file__).with_name("pipeline") / "data" / "demo.yaml"

#: step of the demo experiment -> the file ``fibsynth demo`` exports it to (volumes in the step's ``volume.npy``)
EXPORTS = {
    "structure": "structure.tif",
    "heldout_structure": "heldout_structure.tif",
    "montecarlo": "montecarlo.tif",
    "synthetic_train": "synthetic_train.tif",
    "synthetic_heldout": "synthetic_heldout.tif",
    "heldout_segmented": "heldout_segmented.tif",
}


def _is_model_folder(path: Path) -> bool:
    """A segmentation model folder (what an earlier demo exported): it may be replaced by this run's model."""
    return (path / "config.json").is_file() and (path / "model.pt").is_file()


def _real_stamp(real: str | Path | None) -> str:
    if real is None:
        return ""
    st = Path(real).stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def run_demo(
    out: str | Path = "demo-output",
    *,
    size: int = 128,
    seed: int = 0,
    voxel_nm: float = 5.0,
    solid_fraction: float = 0.3,
    ligament_nm: float = 40.0,
    energy_kev: float = 2.0,
    mc_slices: int = 3,
    electrons_per_pixel: int = 100,
    real: str | Path | None = None,
    quiet: bool = False,
    translation: str = "best",
) -> dict[str, Any]:
    """Run the demo experiment (cached in ``OUT/work``: a rerun with the same options redoes nothing), export its
    products to ``OUT`` and return the summary (also in ``OUT/summary.json``). ``real``: the user's own FIB-SEM
    stack, shown (one slice, gray-value histogram) next to the simulated images. ``translation``: the fast path's
    (``best``: the paired translator for gold/epoxy at 1-4 keV; ``paired``; ``gan``: the shipped CycleGAN, 2 keV)."""
    import shutil

    from fibsynth.experiment.runner import run_experiment
    from fibsynth.experiment.steps import LABELS, MODEL, VOLUME
    from fibsynth.io import read_volume

    console = _console()
    if translation not in ("best", "paired", "gan"):
        from fibsynth.errors import FibsynthError

        raise FibsynthError(f"must be best, paired or gan (got {translation!r})", param="translation")
    if real is not None:
        read_real_stack(real)  # one-line errors before any work or output
        real = Path(real).resolve()
    out = Path(out)
    k0 = size // 2
    overrides = {"size": size, "seed": seed, "seed_heldout": seed + 1, "voxel_nm": voxel_nm,
                 "solid_fraction": solid_fraction, "ligament_nm": ligament_nm, "energy_kev": energy_kev,
                 "mc_first": k0, "mc_stop": k0 + mc_slices, "electrons_per_pixel": electrons_per_pixel,
                 "real": None if real is None else str(real), "real_stamp": _real_stamp(real),
                 "translation": translation}
    out.mkdir(parents=True, exist_ok=True)
    rep = run_experiment(DEMO_EXPERIMENT, workdir=out / "work", overrides=overrides, quiet=quiet)
    steps = {s.name: Path(rep.workdir) / "cache" / s.key for s in rep.steps}
    for step, name in EXPORTS.items():
        vol = read_volume(steps[step] / VOLUME)
        write_volume(out / name, vol.data, vol.meta)
    lab = read_volume(steps["synthetic_train"] / LABELS)
    write_volume(out / "train_labels.tif", lab.data, lab.meta)
    with atomic_path(out / "segmentation_model", may_replace=_is_model_folder) as tmp:
        shutil.copytree(steps["segmentation_model"] / MODEL, tmp)
    for name in ("directional.png", "summary.json", "report.html"):
        with atomic_path(out / name) as tmp:
            shutil.copyfile(steps["report"] / name, tmp)
    summary = json.loads((out / "summary.json").read_text())
    seg = summary["segmentation"]
    console.print(f"[green]segmentation[/] MDS U-Net {seg['2.5D U-Net: MDS']:.3f} vs Otsu {seg['Otsu: MDS']:.3f} "
                  f"(training {seg['training seconds']:.0f} s)")
    console.print(f"[bold green]report[/] {out / 'report.html'}")
    return summary
