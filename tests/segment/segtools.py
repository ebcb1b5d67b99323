"""Helpers shared by the segmentation tests (toy stacks, running the CLI)."""

from __future__ import annotations

from fibsynth.config import VoxelSize
from fibsynth.io import VolumeMeta, write_volume
from fibsynth.segment.toy import toy_image, toy_structure

VOXEL = VoxelSize(x=5.0, y=5.0, z=10.0)


def cli_segment(argv):
    """Run ``fibsynth segment ...`` through the top-level CLI."""
    from fibsynth import cli

    return cli.main(["segment", *argv])


def write_pair(folder, name, shape, seed):
    s = toy_structure(shape, seed=seed)
    img = toy_image(s, seed=seed + 1000)
    ip, lp = folder / f"{name}_img.tif", folder / f"{name}_lbl.tif"
    write_volume(ip, img, VolumeMeta(kind="image", voxel_size_nm=VOXEL, energy_kev=2.0))
    write_volume(lp, s, VolumeMeta(kind="structure", voxel_size_nm=VOXEL))
    return ip, lp, img, s
