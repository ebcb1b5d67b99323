"""The eta(E, Z, depth) network (paper Sec. 2.3): 3 inputs, hidden layers of 16, 32, 32, 32, one output.

* Inputs (E in keV, Z, depth of the substrate under the film in nm) and the output eta are standardised with the
  mean and standard deviation of the training rows; the constants go into a JSON file beside the weights. With
  ``depth_feature="range"`` (default) the depth enters as depth / R_KO(film, E) (Kanaya-Okayama range of the
  film) before standardisation: a physics-guided rescaling under which the curves of different energies nearly
  collapse; the network still takes (E, Z, depth in nm) and does the rescaling itself.
* Hidden activation: SiLU (the paper does not name one; a smooth activation gives a smooth eta(depth), which the
  projection samples at arbitrary depths).
* Training: MSE loss, Adam, batch 8, learning rate x0.1 after ``lr_patience`` (10) epochs without improvement of
  the monitor loss, early stopping after ``patience`` (25) epochs without improvement, best weights kept.
* Splits: whole (E, substrate) curves are held out as the *test* set (interpolation to unseen conditions; it is
  never used for any decision); a random ``monitor_fraction`` of the remaining rows drives the learning-rate
  schedule and early stopping. Everything is seeded (torch, the shuffles, the splits) and runs on one thread
  deterministically.
* Weights: a ``state_dict`` saved with ``torch.save``; loading uses ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import Field

from fibsynth.config import StrictModel
from fibsynth.errors import FibsynthError
from fibsynth.ml.runtime import torch_threads
from fibsynth.ml.schedule import EarlyStop, plateau_scheduler

HIDDEN = (16, 32, 32, 32)
DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_WEIGHTS = DATA_DIR / "eta_net.pt"
DEFAULT_TABLE = DATA_DIR / "smc_bs.csv"


def build_net(hidden=HIDDEN):
    import torch.nn as nn

    layers: list = []
    n_in = 3
    for h in hidden:
        layers += [nn.Linear(n_in, h), nn.SiLU()]
        n_in = h
    layers.append(nn.Linear(n_in, 1))
    return nn.Sequential(*layers)


class TrainSettings(StrictModel):
    lr: float = Field(1e-3, gt=0, le=1.0)
    batch_size: int = Field(8, ge=1, le=65536)
    max_epochs: int = Field(400, ge=1, le=100000)
    patience: int = Field(25, ge=1)
    lr_patience: int = Field(10, ge=1)
    lr_factor: float = Field(0.1, gt=0, lt=1)
    holdout: list[str] | None = None  # "E:substrate" curves for the test set; None: random holdout_fraction
    holdout_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    monitor_fraction: float = Field(0.1, gt=0.0, lt=1.0)
    seed: int = Field(0, ge=0, lt=2**63)
    depth_feature: str = Field("range", pattern="^(range|nm)$")
    film: str = "epoxy"


def depth_feature(depth_nm, energy_kev, kind: str, film: str = "epoxy"):
    """Network's depth input: ``nm`` (as is) or ``range`` (depth / Kanaya-Okayama range of the film at E)."""
    d = np.asarray(depth_nm, float)
    if kind == "nm":
        return d
    from fibsynth.physics.backscatter import kanaya_okayama_range_nm

    return d / kanaya_okayama_range_nm(film, np.asarray(energy_kev, float))


@dataclass
class EtaModel:
    """A trained network with its normalisation constants; :meth:`predict` maps (E, Z, depth) -> eta."""

    net: object
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    info: dict = field(default_factory=dict)
    depth_kind: str = "range"
    film: str = "epoxy"

    @property
    def domain(self) -> dict | None:
        """The calibrated domain (ranges of E, Z, depth and depth feature of the training table), if recorded."""
        dom = self.info.get("domain")
        return dom if isinstance(dom, dict) else None

    def depth_in_domain(self, energy_kev, z, depth_nm) -> tuple[np.ndarray, np.ndarray]:
        """Check (E, Z, depth) against the calibrated domain; return the depths to evaluate and a mask of those
        moved. Raises a one-line error outside it.

        * E and Z must lie in the ranges of the training table (the network extrapolates silently beyond them:
          at 30 keV it gave eta = 0.14 for gold, Hunger-Kuechler 0.49).
        * A depth deeper than the deepest calibrated one is evaluated at that depth when that is beyond the
          Kanaya-Okayama range of the film at E (the substrate is out of the electrons' reach, eta is the film's
          own and no longer changes with depth); otherwise it is refused.
        """
        e, zz, d = np.broadcast_arrays(np.asarray(energy_kev, float), np.asarray(z, float),
                                       np.asarray(depth_nm, float))
        if not (np.isfinite(e).all() and np.isfinite(zz).all() and np.isfinite(d).all()):
            raise FibsynthError("energy, Z and depth must be finite numbers", param="depth_nm")
        if (d < 0).any():
            raise FibsynthError(f"depths must be >= 0 nm (got {float(d.min()):g})", param="depth_nm")
        dom = self.domain
        if dom is None:
            return d, np.zeros(d.shape, bool)
        tol = 1e-6
        e_lo, e_hi = dom["energy_kev"]
        if e.size and (e.min() < e_lo * (1 - tol) or e.max() > e_hi * (1 + tol)):
            bad = float(e.min() if e.min() < e_lo * (1 - tol) else e.max())
            raise FibsynthError(
                f"{bad:g} keV is outside the eta network's calibrated domain ({e_lo:g}-{e_hi:g} keV, the energies of "
                "its training table); the network does not extrapolate: use 'fibsynth mc' (Monte Carlo) there, or "
                "a network trained on such energies (fibsynth fast calibrate / train-eta)", param="energy_kev")
        z_lo, z_hi = dom["Z"]
        if zz.size and (zz.min() < z_lo - 1e-3 or zz.max() > z_hi + 1e-3):
            bad = float(zz.min() if zz.min() < z_lo - 1e-3 else zz.max())
            raise FibsynthError(f"Z = {bad:g} is outside the eta network's calibrated domain (Z {z_lo:g}-{z_hi:g}, the "
                                "substrates of its training table)", param="z")
        f_hi = float(dom["depth_feature"][1])
        feat = depth_feature(d, e, self.depth_kind, self.film)
        deep = feat > f_hi * (1 + tol)
        if not deep.any():
            return d, deep
        from fibsynth.physics.backscatter import kanaya_okayama_range_nm

        # the deepest calibrated depth at each E, in nm
        d_max = f_hi * (kanaya_okayama_range_nm(self.film, e) if self.depth_kind == "range" else np.ones_like(e))
        reach = np.broadcast_to(kanaya_okayama_range_nm(self.film, e), d.shape)
        short = deep & (d_max < reach)
        if short.any():
            i = np.flatnonzero(short.ravel())[0]
            raise FibsynthError(
                f"{d.ravel()[i]:g} nm is deeper than the eta network's calibrated depths ({d_max.ravel()[i]:g} nm at "
                f"{e.ravel()[i]:g} keV) while the substrate is still within the electrons' range there "
                f"({reach.ravel()[i]:.0f} nm of {self.film})", param="depth_nm")
        return np.where(deep, d_max, d), deep

    def predict(self, energy_kev, z, depth_nm, *, check: bool = True) -> np.ndarray:
        """eta at (E keV, Z, depth nm under the film), broadcast. With ``check`` (default) the inputs are checked
        against the calibrated domain (:meth:`depth_in_domain`): outside it a one-line error, never a silent
        extrapolation."""
        import torch

        e, zz, d = np.broadcast_arrays(np.asarray(energy_kev, float), np.asarray(z, float),
                                       np.asarray(depth_nm, float))
        if check:
            d, _ = self.depth_in_domain(e, zz, d)
        x = np.stack([e.ravel(), zz.ravel(), depth_feature(d.ravel(), e.ravel(), self.depth_kind, self.film)], axis=1)
        xn = (x - self.x_mean) / self.x_std
        with torch.no_grad():
            y = self.net(torch.as_tensor(xn, dtype=torch.float32)).numpy()[:, 0].astype(float)
        return (y * self.y_std + self.y_mean).reshape(e.shape)

    def norm_dict(self) -> dict:
        return {"inputs": ["energy_kev", "Z", "depth_nm"], "x_mean": self.x_mean.tolist(),
                "x_std": self.x_std.tolist(), "y_mean": self.y_mean, "y_std": self.y_std,
                "hidden": list(HIDDEN), "activation": "SiLU",
                "depth_feature": self.depth_kind, "film": self.film, **self.info}

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write the state_dict to ``path`` and the normalisation/training record to ``path`` with ``.json``
        (each atomically)."""
        path = Path(path)
        from fibsynth.ml.checkpoint import save_weights

        if path.suffix != ".pt":
            raise FibsynthError("weights file must end in .pt", path, param="path")
        save_weights(path, self.net.state_dict())
        jpath = path.with_suffix(".json")
        jtmp = jpath.with_name(jpath.name + ".tmp")
        jtmp.write_text(json.dumps(self.norm_dict(), indent=1) + "\n")
        jtmp.replace(jpath)
        return path, jpath


def load_model(path: str | Path | None = None) -> EtaModel:
    """Load weights (``.pt`` state_dict, ``weights_only=True``) and their ``.json``; default: the shipped net."""
    from fibsynth.ml.checkpoint import load_into, load_weights

    path = Path(path) if path is not None else DEFAULT_WEIGHTS
    jpath = path.with_suffix(".json")
    if not path.is_file():
        raise FibsynthError("weights file not found", path)
    if not jpath.is_file():
        raise FibsynthError(f"normalisation file {jpath.name} not found beside the weights", path)
    try:
        meta = json.loads(jpath.read_text())
        net = build_net(tuple(meta.get("hidden", HIDDEN)))
    except Exception as exc:  # noqa: BLE001 - any unreadable or malformed JSON record is a refusal
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise FibsynthError(f"cannot load the eta network ({type(exc).__name__}{': ' + first[:120] if first else ''})",
                            path) from None
    load_into(net, load_weights(path), path, "the eta network's layers")  # weights-only; garbage/empty: one line
    net.eval()
    skip = ("x_mean", "x_std", "y_mean", "y_std", "inputs", "hidden", "activation", "depth_feature", "film")
    info = {k: v for k, v in meta.items() if k not in skip}
    try:
        return EtaModel(net, np.asarray(meta["x_mean"], float), np.asarray(meta["x_std"], float),
                        float(meta["y_mean"]), float(meta["y_std"]), info, meta.get("depth_feature", "nm"),
                        meta.get("film", "epoxy"))
    except Exception as exc:  # noqa: BLE001 - a normalisation record with missing or malformed fields
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise FibsynthError(f"cannot load the eta network ({type(exc).__name__}{': ' + first[:120] if first else ''})",
                            path) from None


def calibrated_domain(table: dict, depth_kind: str = "range", film: str = "epoxy") -> dict:
    """The ranges of a training table the network is calibrated on (stored with the weights as ``domain``)."""
    e = np.asarray(table["energy_kev"], float)
    d = np.asarray(table["thickness_nm"], float)
    f = depth_feature(d, e, depth_kind, film)
    return {"energy_kev": [float(e.min()), float(e.max())], "Z": [float(np.min(table["Z"])), float(np.max(table["Z"]))],
            "depth_nm": [float(d.min()), float(d.max())], "depth_feature": [float(f.min()), float(f.max())],
            "depth_feature_kind": depth_kind}


def _curve_ids(table: dict) -> tuple[np.ndarray, list[tuple[float, str]]]:
    subs = table.get("substrate")
    if subs is None or subs.dtype.kind == "f":
        subs = np.array([f"Z{z:g}" for z in table["Z"]])
    keys = list(zip(np.round(table["energy_kev"], 6).tolist(), subs.tolist()))
    uniq = sorted(set(keys), key=lambda k: (k[0], k[1]))
    index = {k: i for i, k in enumerate(uniq)}
    return np.array([index[k] for k in keys]), uniq


def split(table: dict, settings: TrainSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Row masks (train, monitor, test) and the held-out curve names."""
    cid, curves = _curve_ids(table)
    rng = np.random.default_rng([settings.seed, 0x5E1])
    if settings.holdout is not None:
        names = {f"{e:g}:{s}" for e, s in curves}
        want = set()
        for h in settings.holdout:
            try:
                e_s, s = h.split(":", 1)
                key = f"{float(e_s):g}:{s}"
            except ValueError:
                raise FibsynthError(f"expected E:SUBSTRATE, got {h!r}", param="holdout") from None
            if key not in names:
                raise FibsynthError(f"no curve {h!r} in the table", param="holdout")
            want.add(key)
        test_c = [i for i, (e, s) in enumerate(curves) if f"{e:g}:{s}" in want]
    else:
        n = int(round(settings.holdout_fraction * len(curves)))
        test_c = sorted(rng.choice(len(curves), size=n, replace=False).tolist()) if n else []
    if len(test_c) >= len(curves):
        raise FibsynthError("leaves no curve to train on", param="holdout")
    test = np.isin(cid, test_c)
    rest = np.flatnonzero(~test)
    mon_idx = rng.choice(rest, size=max(1, int(round(settings.monitor_fraction * rest.size))), replace=False)
    monitor = np.zeros(cid.size, bool)
    monitor[mon_idx] = True
    train = ~test & ~monitor
    if train.sum() < 2:
        raise FibsynthError("calibration table too small to train on (need more rows)")
    return train, monitor, test, [f"{curves[i][0]:g}:{curves[i][1]}" for i in test_c]


def train(table: dict, settings: TrainSettings | None = None, *, progress: bool = False) -> tuple[EtaModel, dict]:
    """Train the network on a calibration table (columns energy_kev, Z, thickness_nm, eta; see
    :func:`fibsynth.fastsim.calibration.read_table`). Returns the model and a report with the test RMSEs."""
    import torch

    settings = settings or TrainSettings()
    if "film" in table and table["film"].dtype.kind != "f":
        films = set(table["film"].tolist())
        if len(films) != 1:
            raise FibsynthError(f"calibration table mixes film materials {sorted(films)}; train one film at a time")
        settings = settings.model_copy(update={"film": films.pop()})
    feat = depth_feature(table["thickness_nm"], table["energy_kev"], settings.depth_feature, settings.film)
    x_all = np.stack([table["energy_kev"], table["Z"], feat], axis=1).astype(float)
    y_all = np.asarray(table["eta"], float)
    tr, mon, te, held = split(table, settings)
    x_mean, x_std = x_all[tr].mean(axis=0), x_all[tr].std(axis=0)
    x_std = np.where(x_std > 0, x_std, 1.0)
    y_mean, y_std = float(y_all[tr].mean()), float(y_all[tr].std() or 1.0)

    with torch_threads(1):  # tiny network: one thread is fastest and deterministic; the caller's count returns after
        torch.manual_seed(settings.seed % 2**63)
        gen = torch.Generator().manual_seed(settings.seed % 2**63)
        net = build_net()
        xt = torch.as_tensor((x_all - x_mean) / x_std, dtype=torch.float32)
        yt = torch.as_tensor((y_all - y_mean) / y_std, dtype=torch.float32)[:, None]
        itr, imon = torch.as_tensor(np.flatnonzero(tr)), torch.as_tensor(np.flatnonzero(mon))
        opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
        sched = plateau_scheduler(opt, factor=settings.lr_factor, patience=settings.lr_patience)
        stop = EarlyStop(settings.patience)
        lossf = torch.nn.MSELoss()
        best_state = None
        history = []
        t0 = time.perf_counter()
        from rich.progress import Progress

        with Progress(disable=not progress, transient=True) as prog:
            task = prog.add_task("training eta network", total=settings.max_epochs)
            for epoch in range(settings.max_epochs):
                net.train()
                perm = itr[torch.randperm(itr.numel(), generator=gen)]
                for b in range(0, perm.numel(), settings.batch_size):
                    idx = perm[b: b + settings.batch_size]
                    opt.zero_grad()
                    loss = lossf(net(xt[idx]), yt[idx])
                    loss.backward()
                    opt.step()
                net.eval()
                with torch.no_grad():
                    mloss = float(lossf(net(xt[imon]), yt[imon]))
                sched.step(mloss)
                history.append(mloss)
                done = stop.step(mloss)
                if stop.improved:
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                prog.update(task, advance=1, description=f"training eta network (monitor RMSE "
                            f"{math.sqrt(stop.best) * y_std:.4f})")
                if done:
                    break
        best_epoch = stop.best_round
        net.load_state_dict(best_state)
        net.eval()
        seconds = time.perf_counter() - t0

    info = {"train_settings": settings.model_dump(mode="json"), "held_out_curves": held,
            "domain": calibrated_domain(table, settings.depth_feature, settings.film),
            "epochs_run": len(history), "best_epoch": best_epoch, "seconds": round(seconds, 2),
            "rows": {"train": int(tr.sum()), "monitor": int(mon.sum()), "test": int(te.sum())}}
    model = EtaModel(net, x_mean, x_std, y_mean, y_std, info, settings.depth_feature, settings.film)
    report = evaluate(model, table, tr, mon, te)
    model.info["report"] = report
    return model, {**{k: v for k, v in info.items() if k not in ("report", "domain")}, **report}


def evaluate(model: EtaModel, table: dict, tr, mon, te) -> dict:
    """RMSE of the network against the Monte Carlo rows of each split, and at depth 0 against Hunger-Kuechler."""
    from fibsynth.physics.backscatter import hunger_kuechler_z

    pred = model.predict(table["energy_kev"], table["Z"], table["thickness_nm"], check=False)
    y = np.asarray(table["eta"], float)

    def rmse(mask):
        return float(np.sqrt(np.mean((pred[mask] - y[mask]) ** 2))) if mask.any() else float("nan")

    out = {"rmse_train": rmse(tr), "rmse_monitor": rmse(mon), "rmse_test": rmse(te)}
    if "eta_std" in table and te.any():
        out["test_mean_mc_std"] = float(np.sqrt(np.mean(np.asarray(table["eta_std"], float)[te] ** 2)))
    d0 = np.asarray(table["thickness_nm"]) == 0
    for name, mask in (("test", te & d0), ("all", d0)):
        if mask.any():
            hk = hunger_kuechler_z(table["Z"][mask], table["energy_kev"][mask])
            out[f"rmse_depth0_{name}_net_vs_hk"] = float(np.sqrt(np.mean((pred[mask] - hk) ** 2)))
            out[f"rmse_depth0_{name}_mc_vs_hk"] = float(np.sqrt(np.mean((y[mask] - hk) ** 2)))
            out[f"rmse_depth0_{name}_net_vs_mc"] = float(np.sqrt(np.mean((pred[mask] - y[mask]) ** 2)))
    return out
