"""Hierarchical nanoporous gold (HNPG): two nested leveled-wave networks.

Construction (Soyarslan et al., Acta Mater. 149 (2018) 326, nested leveled waves; cf. the
dealloying-coarsening-dealloying material of Qi & Weissmueller, ACS Nano 7 (2013) 5948):

* upper level: a leveled-wave structure ``U`` with ligament diameter ``D1`` (e.g. 110 nm) and solid
  fraction ``F1`` -- the coarse network whose ligaments are themselves porous;
* lower level: an independent leveled-wave structure ``L`` (own waves from an independent seed stream)
  with ligament diameter ``D2 < D1`` (e.g. 15 nm) and solid fraction ``F2`` -- the fine network that
  fills space and is kept only inside the upper ligaments;
* solid = ``U AND L``. Because the two fields are independent, the total solid fraction is ``F1 * F2``
  up to sampling fluctuations, every solid voxel lies in the upper network, and inside an upper
  ligament the solid is a fine network of ligament size ~``D2``.

Seeds: ``numpy.random.SeedSequence(seed).spawn(2)`` gives the upper and lower streams.
"""

from __future__ import annotations


import numpy as np
from pydantic import Field, field_validator, model_validator

from fibsynth.config import StrictModel, VoxelSize
from fibsynth.errors import FibsynthError
from fibsynth.structure.leveled_wave import DEFAULT_WAVES, LeveledWave, LWMConfig


class HierarchicalConfig(StrictModel):
    """Inputs of a two-level (hierarchical) leveled-wave structure."""

    shape: tuple[int, int, int] = Field(description="volume shape (z, y, x) in voxels")
    voxel_size: VoxelSize = Field(description="voxel size in nm")
    upper_ligament_nm: float = Field(gt=0.0, le=1e7, description="ligament diameter D1 of the coarse network (nm)")
    lower_ligament_nm: float = Field(gt=0.0, le=1e7, description="ligament diameter D2 of the fine network (nm)")
    upper_solid_fraction: float = Field(gt=0.0, lt=1.0, description="solid fraction F1 of the coarse network")
    lower_solid_fraction: float = Field(gt=0.0, lt=1.0, description="solid fraction F2 of the fine network")
    waves: int = Field(DEFAULT_WAVES, ge=1, le=100_000, description="plane waves per level")
    seed: int = Field(0, ge=0, description="random seed")

    @field_validator("shape")
    @classmethod
    def _shape_ok(cls, v):
        return LWMConfig._shape_ok(v)

    @model_validator(mode="after")
    def _order(self) -> "HierarchicalConfig":
        if self.lower_ligament_nm >= self.upper_ligament_nm:
            raise FibsynthError(
                f"{self.lower_ligament_nm:g} nm must be smaller than upper_ligament_nm ({self.upper_ligament_nm:g} nm)",
                param="lower_ligament_nm",
            )
        coarsest = max(self.voxel_size.zyx())
        if self.lower_ligament_nm < 2.0 * coarsest:
            raise FibsynthError(
                f"{self.lower_ligament_nm:g} nm is under 2 voxels (coarsest voxel edge {coarsest:g} nm); use smaller voxels",
                param="lower_ligament_nm",
            )
        return self

    def level_configs(self) -> tuple[LWMConfig, LWMConfig]:
        common = dict(shape=self.shape, voxel_size=self.voxel_size, waves=self.waves, seed=self.seed)
        up = LWMConfig.build(None, solid_fraction=self.upper_solid_fraction, ligament_nm=self.upper_ligament_nm, **common)
        lo = LWMConfig.build(None, solid_fraction=self.lower_solid_fraction, ligament_nm=self.lower_ligament_nm, **common)
        return up, lo


class Hierarchical:
    """Two nested leveled-wave levels; ``solid = upper AND lower``."""

    def __init__(self, config: HierarchicalConfig):
        self.config = config
        up_cfg, lo_cfg = config.level_configs()
        s_up, s_lo = np.random.SeedSequence(config.seed).spawn(2)
        self.upper = LeveledWave(up_cfg, np.random.default_rng(s_up))
        self.lower = LeveledWave(lo_cfg, np.random.default_rng(s_lo))
        self.levels = (self.upper, self.lower)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.config.shape

    def solid(self, region=None) -> np.ndarray:
        from fibsynth.structure.chunked import model_specs, solid_block

        region = region or tuple(slice(0, n) for n in self.shape)
        bounds = tuple((s.start or 0, s.stop) for s in region)
        return solid_block(model_specs(self), bounds)

    def parameters(self) -> dict:
        c = self.config
        return {
            "method": "hierarchical nested leveled waves: solid = upper AND lower (independent seed streams)",
            "shape": list(c.shape),
            "upper_ligament_nm": c.upper_ligament_nm,
            "lower_ligament_nm": c.lower_ligament_nm,
            "upper_solid_fraction": c.upper_solid_fraction,
            "lower_solid_fraction": c.lower_solid_fraction,
            "expected_solid_fraction": c.upper_solid_fraction * c.lower_solid_fraction,
            "waves": c.waves,
            "upper": self.upper.parameters(),
            "lower": self.lower.parameters(),
        }

    def meta(self):
        from fibsynth.io import VolumeMeta

        return VolumeMeta(
            kind="structure",
            voxel_size_nm=self.config.voxel_size,
            generator="hierarchical",
            parameters=self.parameters(),
            seed=self.config.seed,
        )


def hierarchical_config(
    shape,
    voxel_size,
    upper_ligament_nm: float,
    lower_ligament_nm: float,
    upper_solid_fraction: float,
    lower_solid_fraction: float,
    waves: int = DEFAULT_WAVES,
    seed: int = 0,
) -> HierarchicalConfig:
    from fibsynth.structure.leveled_wave import _voxel

    return HierarchicalConfig.build(
        None,
        shape=tuple(shape),
        voxel_size=_voxel(voxel_size),
        upper_ligament_nm=upper_ligament_nm,
        lower_ligament_nm=lower_ligament_nm,
        upper_solid_fraction=upper_solid_fraction,
        lower_solid_fraction=lower_solid_fraction,
        waves=waves,
        seed=seed,
    )


def hierarchical(
    shape,
    voxel_size,
    upper_ligament_nm: float = 110.0,
    lower_ligament_nm: float = 15.0,
    upper_solid_fraction: float = 0.5,
    lower_solid_fraction: float = 0.4,
    waves: int = DEFAULT_WAVES,
    seed: int = 0,
    *,
    return_model: bool = False,
):
    """A binary (uint8) hierarchical nanoporous gold structure held in memory (see module docstring)."""
    cfg = hierarchical_config(
        shape, voxel_size, upper_ligament_nm, lower_ligament_nm, upper_solid_fraction, lower_solid_fraction, waves, seed
    )
    model = Hierarchical(cfg)
    solid = model.solid()
    return (solid, model) if return_model else solid


__all__ = ["HierarchicalConfig", "Hierarchical", "hierarchical", "hierarchical_config"]
