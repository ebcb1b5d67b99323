"""Detector models of a FIB-SEM stack: which electrons make the image (issue 17, item 3).

``detector`` of a stack run (:attr:`StackSettings.signal <fibsynth.physics.montecarlo.settings.StackSettings>`):

* ``bse`` (default, ``signal=None``): the fraction of primaries detected as backscattered electrons, with the
  energy filter and polar-angle acceptance of :class:`~fibsynth.physics.montecarlo.settings.Detector`
  (energy-filtered BSE = ``e_min_kev`` > 0). Unchanged: the same kernel and the same images as before.
* ``se``: the ideal SE image -- every secondary electron that escapes (face and open-pore walls), per primary.
* SE leaving an open-pore wall (``inlens``, ``et``; ``pore_view="straight"``, the default): inside a pore of
  nanometres to micrometres neither detector's field bends a few-eV SE appreciably, so it flies straight: it
  leaves the pore with the view factor of the pore voxel it enters (the cosine-law share of directions that reach
  the face plane through vacuum, ``secondary.pore_view_factors``), else it is lost on another wall (the SE it
  may release there are not modelled). ``pore_view="all"`` counts every SE that leaves a wall (the upper bound; always so for ``se``).
* ``inlens``: an in-lens (through-the-lens) detector. The immersion field of the objective lens reaches the face
  along the beam path and draws the escaping SE up the bore whatever their direction of emission (SE1 + SE2,
  collection efficiency ``se_efficiency``, no trench shadow); BSE count only when they leave within
  ``inlens_bse_theta_deg`` of the column axis (those enter the bore and reach the detector directly), each worth
  ``bse_weight`` SE.
* ``et``: an Everhart-Thornley detector in the chamber, seen from the sample at elevation ``et_elevation_deg``
  above the sample's top surface and azimuth ``et_azimuth_deg`` (0 = to the side, +x; 90 = straight out of the
  trench's open front), its scintillator subtending a cone of half-angle ``et_half_angle_deg``. The milled face is
  the end wall of a trench of width ``trench_width_nm`` (default the face width) whose top edge is
  ``trench_depth_nm`` above the face's first row; the trench is open at the top and, towards the SEM, at its
  front (the usual ramp). The grid's collecting field (~10 kV/m) bends a few-eV SE only over millimetres, so
  inside a micrometre-sized trench the SE fly straight: an SE is collected (efficiency ``se_efficiency``) when
  its straight path from the face, drawn from the cosine law about the face normal, leaves the trench through
  its open top before it meets a side wall or goes down into the trench; otherwise it is lost on the wall (the SE
  it may release there are not modelled). A BSE counts when it flies straight into the scintillator's cone and its line of sight to the
  detector clears the trench walls (each worth ``bse_weight`` SE: a scintillator at ~10 kV gives a BSE of a few
  keV about the light of an SE). Both are shadowed by the trench: rows deep below the top edge and columns next to
  the wall on the detector's side see less.
  SE3 (``et_se3``, default 0 = off): backscattered electrons that leave the trench strike the pole piece and the
  chamber walls and release SE there, which the ET detector's field collects like any SE in the open chamber
  (the SE1 / SE2 / SE3 classification: L. Reimer, *Scanning Electron Microscopy*, 2nd ed., Springer 1998,
  ch. 4). Modelled as ``et_se3`` collected SE per BSE that leaves the trench: signal += et_se3 * eta(pixel) *
  v(pixel), with eta the pixel's backscatter coefficient (all BSE, every energy and direction) and v the share
  of cosine-law directions that clear the trench walls (the BSE leave a face hit near normal incidence about
  by the cosine law; an approximation at the stack's tilt). The number depends on the chamber (materials, pole
  piece distance, detector bias): no universal value exists, so it is a parameter and off by default.

Geometry (``settings.py``): x across the face, y down the face (the FIB mills along +y: the sample's top
surface lies at y = -trench_depth_nm above the first row, its outward normal is -y), z into the sample (the face
normal points to -z). The trench's side walls are the planes x = x_c -+ trench_width_nm / 2 around the face's
centre x_c. SE emitted from open-pore walls are given the collection factor of the face pixel they come out of.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_serializer, model_validator

from fibsynth.config import StrictModel

DETECTORS = ("bse", "se", "inlens", "et")
N_DIRECTIONS = 4096  # quadrature directions per pixel for the trench view factors (stratified, deterministic)


class SignalDetector(StrictModel):
    """An SE detector model (``kind`` = ``se``, ``inlens`` or ``et``; see the module docstring for the physics).
    The BSE detector is ``StackSettings.signal = None``."""

    kind: Literal["se", "inlens", "et"]
    se_efficiency: float = Field(1.0, gt=0.0, le=1.0)
    bse_weight: float = Field(1.0, ge=0.0, le=100.0)
    inlens_bse_theta_deg: float = Field(10.0, ge=0.0, le=90.0)
    et_elevation_deg: float = Field(30.0, ge=0.0, le=90.0)
    et_azimuth_deg: float = Field(45.0, ge=0.0, le=180.0)
    et_half_angle_deg: float = Field(10.0, gt=0.0, le=60.0)
    trench_width_nm: float | None = Field(None, gt=0.0)
    trench_depth_nm: float = Field(0.0, ge=0.0)
    pore_view: Literal["straight", "all"] = "straight"
    et_se3: float = Field(0.0, ge=0.0, le=100.0)

    @model_validator(mode="after")
    def _se3_is_et(self):
        if self.et_se3 > 0.0 and self.kind != "et":
            raise ValueError(f"SE3 (et_se3) is modelled for the et detector only, not {self.kind}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # SE3 off (the default) dumps as before: work-store keys and metadata of earlier SE stacks unchanged
        out = handler(self)
        if isinstance(out, dict) and out.get("et_se3", 1.0) == 0.0:
            out.pop("et_se3")
        return out

    @property
    def pore_view_mode(self) -> str:
        """How SE leaving open-pore walls count: ``all`` for the ideal ``se`` image, else ``pore_view``."""
        return "all" if self.kind == "se" else self.pore_view

    def record(self) -> dict[str, Any]:
        """The metadata of the detector (only the parameters its kind uses)."""
        out: dict[str, Any] = {"detector": self.kind, "pore_view": self.pore_view_mode}
        if self.kind == "inlens":
            out.update(se_efficiency=self.se_efficiency, bse_weight=self.bse_weight,
                       inlens_bse_theta_deg=self.inlens_bse_theta_deg)
        elif self.kind == "et":
            out.update(se_efficiency=self.se_efficiency, bse_weight=self.bse_weight,
                       et_elevation_deg=self.et_elevation_deg, et_azimuth_deg=self.et_azimuth_deg,
                       et_half_angle_deg=self.et_half_angle_deg, trench_width_nm=self.trench_width_nm,
                       trench_depth_nm=self.trench_depth_nm)
            if self.et_se3 > 0.0:
                out.update(et_se3=self.et_se3)
        return out

    def et_direction(self) -> np.ndarray:
        """Unit vector from the sample to the ET detector (x, y, z)."""
        el = math.radians(self.et_elevation_deg)
        az = math.radians(self.et_azimuth_deg)
        return np.array([math.cos(el) * math.cos(az), -math.sin(el), -math.cos(el) * math.sin(az)])

    def cone(self, by: float, bz: float) -> np.ndarray:
        """The kernel's BSE cone (ax, ay, az, cos_min): around the column axis (in-lens), the ET direction, or
        none (``se``)."""
        if self.kind == "inlens":
            return np.array([0.0, -by, -bz, math.cos(math.radians(self.inlens_bse_theta_deg))])
        if self.kind == "et":
            return np.array([*self.et_direction(), math.cos(math.radians(self.et_half_angle_deg))])
        return np.array([0.0, 0.0, -1.0, 2.0])


def _cosine_directions(n: int) -> np.ndarray:
    """``n`` stratified cosine-law directions about the face's outward normal -z (deterministic)."""
    m = int(math.ceil(math.sqrt(n)))
    i, j = np.meshgrid((np.arange(m) + 0.5) / m, (np.arange(m) + 0.5) / m, indexing="ij")
    r = np.sqrt(i.ravel())  # cosine law: sin(theta) = sqrt(u)
    phi = 2.0 * math.pi * j.ravel()
    return np.stack([r * np.cos(phi), r * np.sin(phi), -np.sqrt(1.0 - r * r)], axis=1)


def _cone_directions(axis: np.ndarray, half_angle_deg: float, n: int) -> np.ndarray:
    """``n`` stratified directions uniform in solid angle within ``half_angle_deg`` of ``axis``."""
    m = int(math.ceil(math.sqrt(n)))
    i, j = np.meshgrid((np.arange(m) + 0.5) / m, (np.arange(m) + 0.5) / m, indexing="ij")
    c0 = math.cos(math.radians(half_angle_deg))
    ct = 1.0 - i.ravel() * (1.0 - c0)
    st = np.sqrt(1.0 - ct * ct)
    phi = 2.0 * math.pi * j.ravel()
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    t = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(a, t)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(a, e1)
    return ct[:, None] * a + (st * np.cos(phi))[:, None] * e1 + (st * np.sin(phi))[:, None] * e2


def trench_escape(dirs: np.ndarray, x: np.ndarray, h: np.ndarray, width: float) -> np.ndarray:
    """Fraction of the directions ``dirs`` (k, 3) whose straight line from a face point at lateral offset ``x``
    from the trench centre and depth ``h`` below the top edge leaves through the trench's open top without
    meeting a side wall (|x + t ux| <= width / 2 at the top, t = h / -uy; upward: uy < 0; out of the face:
    uz < 0). ``x`` and ``h`` broadcast together; returns their shape."""
    x = np.asarray(x, float)
    h = np.asarray(h, float)
    shape = np.broadcast(x, h).shape
    xf = np.broadcast_to(x, shape).ravel()
    hf = np.broadcast_to(h, shape).ravel()
    ux, uy, uz = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    ok = (uy < 0.0) & (uz < 0.0)
    ux, uy = ux[ok], uy[ok]
    slope = ux / -uy  # lateral shift per unit of rise
    out = np.empty(xf.size)
    step = max(1, 2_000_000 // max(1, slope.size))
    for a in range(0, xf.size, step):
        xt = xf[a:a + step, None] + hf[a:a + step, None] * slope[None, :]
        out[a:a + step] = (np.abs(xt) <= 0.5 * width).sum(axis=1) / dirs.shape[0]
    return out.reshape(shape)


def collection_maps(det: SignalDetector, ny: int, nx: int, dy: float, dx: float,
                    n_directions: int = N_DIRECTIONS, se3: bool = False) -> tuple[np.ndarray, ...]:
    """Per-pixel factors (SE collection, BSE line of sight) of a face of ny x nx pixels: both 1 except for the ET
    detector, where they are the trench view factors (:func:`trench_escape`) of the cosine-law SE directions and
    of the scintillator's cone, times ``se_efficiency`` for the SE. ``se3``: also the SE3 factor per BSE
    (``et_se3`` times the cosine-law trench view factor; 0 except for the ET detector)."""
    if det.kind != "et":
        eff = det.se_efficiency if det.kind == "inlens" else 1.0
        out = (np.full((ny, nx), eff), np.ones((ny, nx)))
        return (*out, np.zeros((ny, nx))) if se3 else out
    width = det.trench_width_nm if det.trench_width_nm is not None else nx * dx
    x = (np.arange(nx) + 0.5) * dx - 0.5 * nx * dx
    h = det.trench_depth_nm + (np.arange(ny) + 0.5) * dy
    X, H = np.meshgrid(x, h)
    view = trench_escape(_cosine_directions(n_directions), X, H, width)
    fse = view * det.se_efficiency
    cone = _cone_directions(det.et_direction(), det.et_half_angle_deg, n_directions)
    fbse = trench_escape(cone, X, H, width)
    return (fse, fbse, det.et_se3 * view) if se3 else (fse, fbse)


def signal_image(det: SignalDetector, res: dict, n: int, dy: float, dx: float) -> tuple[np.ndarray, np.ndarray]:
    """(image, standard error) of one slice from :func:`~fibsynth.physics.montecarlo.secondary.simulate_slice_se`
    results: per pixel a SE + b C / n + d B / n with a, b, d the collection factors (:func:`collection_maps`), SE
    the expected escaping SE per primary, C the BSE in the detector's cone, B all BSE (the ET detector's SE3, d =
    0 unless ``et_se3`` > 0); the standard error from the per-electron second moments (``se_sq``, ``se_cone``,
    ``se_bse`` sums; a BSE in the cone is a BSE)."""
    ny, nx = res["se"].shape
    fse, fbse, f3 = collection_maps(det, ny, nx, dy, dx, se3=True)
    a = fse
    b = np.zeros_like(fse) if det.kind == "se" else det.bse_weight * fbse
    c = res["cone"] / n
    img = a * res["se"] + b * c
    m2 = a * a * res["se_sq"] / n + 2.0 * a * b * res["se_cone"] / n + b * b * c
    if det.kind == "et" and det.et_se3 > 0.0:
        t = res["all"] / n
        img = img + f3 * t
        m2 = m2 + f3 * f3 * t + 2.0 * a * f3 * res["se_bse"] / n + 2.0 * b * f3 * c
    std = np.sqrt(np.maximum(m2 - img * img, 0.0) / n)
    return img, std
