"""Training (paper Table 1): 64x64 patches (64^3 in 3D) at stride 32, batch 64, Dice loss, Adam 1e-4,
learning rate x0.1 after 10 rounds without improvement of the validation loss, early stopping after 25.

The schedule counts optimizer steps, not passes over the stack: by default ``DEFAULT_STEPS`` steps of ``batch``
patches, validated every ``val_every`` steps (a "round", Lightning's epoch), whatever the size of the stack --
a stack 1000x larger is not trained 1000x longer, a tiny one not 1000x shorter. Giving ``epochs`` instead keeps
the paper's schedule (an epoch = every patch of the stack once, or ``patches_per_epoch`` of them). At the end
the validation score is compared with Otsu's threshold on the same validation patches; a model that ends below
it is reported loudly (:class:`BelowBaselineWarning`, ``record["below_otsu"]``).

Validation uses held-out slabs: a contiguous z range at the end of each training stack (or separate
stacks), never random patches of the training slices. Normalisation (gray-value percentiles of the
training slabs, per energy) is stored with the model. Every random choice (initial weights, patch order,
augmentation) derives from ``seed`` and the epoch number, so a run is deterministic on CPU and a run
resumed from its last checkpoint (``resume=True``) ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
from pydantic import Field

from fibsynth.config import StrictModel
from fibsynth.errors import FibsynthError
from fibsynth.ml.checkpoint import LAST, check_resume, content_hash, last_checkpoint
from fibsynth.ml.runtime import fit as run_fit
from fibsynth.ml.runtime import make_trainer, quiet_lightning
from fibsynth.ml.sampler import EpochSampler
from fibsynth.ml.schedule import early_stopping, plateau_scheduler
from fibsynth.segment import data as D
from fibsynth.segment.model import ModelConfig, build_net, save_model

CKPT_DIR = "checkpoints"
SETTINGS_FILE = "train_settings.json"
DEFAULT_STEPS = 1500
DEFAULT_VAL_EVERY = 50


class BelowBaselineWarning(UserWarning):
    """The trained model scores below Otsu's global threshold on its own validation data."""


class TrainSettings(StrictModel):
    mode: Literal["2d", "2.5d", "3d"]
    k: int = Field(2, ge=0, le=16)
    edge: Literal["replicate", "reflect"] = "replicate"
    channels_per_stack: int = Field(1, ge=1, le=16)
    features: tuple[int, ...] = (16, 32, 64, 128)
    num_res_units: int = Field(1, ge=0, le=4)
    patch: int = Field(64, ge=8, le=1024)
    stride: int = Field(32, ge=1, le=1024)
    batch: int = Field(64, ge=1, le=4096)
    epochs: int | None = Field(None, ge=1, le=100000, description="passes over the stack (the paper's schedule); "
                               "default: the step schedule")
    steps: int | None = Field(None, ge=1, le=10_000_000, description=f"optimizer steps (default {DEFAULT_STEPS} "
                              "unless epochs is given)")
    val_every: int = Field(DEFAULT_VAL_EVERY, ge=1, le=1_000_000, description="step schedule: optimizer steps per "
                           "validation round")
    max_val_patches: int = Field(4096, ge=1, description="validation patches at most (an even subset)")
    lr: float = Field(1e-4, gt=0, le=1)
    lr_patience: int = Field(10, ge=0)
    lr_factor: float = Field(0.1, gt=0, lt=1)
    early_stop: int = Field(25, ge=1)
    val_fraction: float = Field(0.2, ge=0, lt=1)
    augment: Literal["dihedral", "xflip", "none"] = "dihedral"
    jitter: float = Field(0.1, ge=0, le=1)
    norm_percentiles: tuple[float, float] = (1.0, 99.0)
    seed: int = 0
    patches_per_epoch: int | None = Field(None, ge=1, description="random subset of the patches each epoch")
    accelerator: str = "auto"
    devices: str = "auto"
    num_workers: int = Field(0, ge=0, le=64)
    precision: str = "32-true"
    classes: int = Field(2, ge=2, le=255, description="phases to segment: 2 = pore/solid (Dice loss), n = labels "
                         "0..n-1 (Dice + cross-entropy over the n classes)")

    def check(self) -> "TrainSettings":
        if self.patch % (2 ** (len(self.features) - 1)):
            raise FibsynthError(f"{self.patch} must be a multiple of {2 ** (len(self.features) - 1)} (the U-Net's "
                                f"downsampling for features {','.join(map(str, self.features))})", param="patch")
        lo, hi = self.norm_percentiles
        if not 0 <= lo < hi <= 100:
            raise FibsynthError(f"must satisfy 0 <= lo < hi <= 100 (got {lo}, {hi})", param="norm_percentiles")
        if self.epochs is not None and self.steps is not None:
            raise FibsynthError("give epochs or steps, not both", param=("epochs", "steps"))
        if self.steps_schedule and self.patches_per_epoch is not None:
            raise FibsynthError("counts patches per epoch of the epoch schedule: give epochs with it (the step "
                                "schedule draws val_every x batch patches per round)", param="patches_per_epoch")
        return self

    @property
    def steps_schedule(self) -> bool:
        return self.epochs is None

    def plan(self, n_train: int) -> dict:
        """The schedule for ``n_train`` training patches: rounds ("epochs" to Lightning), patches per round and
        the optimizer steps in all."""
        if self.steps_schedule:
            steps = self.steps or DEFAULT_STEPS
            rounds = -(-steps // self.val_every)
            return {"schedule": "steps", "epochs": rounds, "steps_per_epoch": self.val_every,
                    "per_epoch": self.val_every * self.batch, "steps": rounds * self.val_every}
        per = min(n_train, self.patches_per_epoch) if self.patches_per_epoch else n_train
        spe = -(-per // self.batch)
        return {"schedule": "epochs", "epochs": self.epochs, "steps_per_epoch": spe, "per_epoch": self.patches_per_epoch,
                "steps": spe * self.epochs}


# ----------------------------------------------------------------------------------------- data sets


class _Volumes:
    """Normalised training or validation volumes: list of ((c, z, y, x) float32, (z, y, x) uint8)."""

    def __init__(self, items: list[tuple[np.ndarray, np.ndarray]]):
        self.items = items

    @property
    def shapes(self):
        return [lbl.shape for _, lbl in self.items]


def _rows(vols: _Volumes, s: TrainSettings, *, train: bool) -> np.ndarray:
    stride = s.stride if train else s.patch  # validation: non-overlapping, every voxel counted once
    rows = D.patch_index(vols.shapes, s.mode, s.patch, stride)
    if not train and len(rows) > s.max_val_patches:  # an even, fixed subset
        rows = rows[np.linspace(0, len(rows) - 1, s.max_val_patches).round().astype(int)]
    return rows


def _make_dataset(vols: _Volumes, s: TrainSettings, *, train: bool):
    import torch
    from torch.utils.data import Dataset

    rows = _rows(vols, s, train=train)
    k = s.k if s.mode == "2.5d" else 0

    class PatchDataset(Dataset):
        def __len__(self):
            return len(rows)

        def __getitem__(self, key):
            epoch, i = key if isinstance(key, tuple) else (0, key)
            img, lbl = vols.items[int(rows[i][0])]
            x, y = D.extract_patch(img, lbl, rows[i], s.mode, s.patch, k, s.edge)
            if train:
                rng = np.random.default_rng((s.seed, int(epoch), int(i)))
                x, y = D.augment(x, y, rng, s.augment, s.jitter, s.channels_per_stack)
            return torch.from_numpy(np.ascontiguousarray(x, np.float32)), torch.from_numpy(
                np.ascontiguousarray(y, np.int64))[None]

    return PatchDataset(), len(rows)


# -------------------------------------------------------------------------------------- lightning


def _lightning_module(cfg: ModelConfig, s: TrainSettings):
    import lightning.pytorch as pl
    import torch
    from monai.losses import DiceLoss

    class SegModule(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = build_net(cfg)
            if cfg.classes == 2:
                self.loss = DiceLoss(to_onehot_y=True, softmax=True)  # mean Dice of pore and solid
            else:  # n phases: mean Dice over the classes + cross-entropy (softmax over the n outputs)
                from monai.losses import DiceCELoss

                self.loss = DiceCELoss(to_onehot_y=True, softmax=True)
            self._counts = None
            self._tl = [0.0, 0]  # running train loss of this epoch (this process)

        def on_train_epoch_start(self):
            self._tl = [0.0, 0]

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            x, y = batch
            loss = self.loss(self.net(x), y)
            self._tl[0] += float(loss.detach()) * x.shape[0]
            self._tl[1] += x.shape[0]
            self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0], sync_dist=True)
            return loss

        def on_validation_epoch_start(self):
            n = 4 if cfg.classes == 2 else cfg.classes * cfg.classes
            self._counts = torch.zeros(n, dtype=torch.float64, device=self.device)

        def validation_step(self, batch, _):
            x, y = batch
            out = self.net(x)
            self.log("val_loss", self.loss(out, y), on_step=False, on_epoch=True, batch_size=x.shape[0],
                     sync_dist=True)
            if cfg.classes > 2:  # the confusion matrix, true x predicted
                p = out.argmax(1, keepdim=True)
                self._counts += torch.bincount((y.long() * cfg.classes + p).reshape(-1),
                                               minlength=cfg.classes ** 2).double()
                return
            p = out.argmax(1, keepdim=True).bool()
            t = y.bool()
            self._counts += torch.stack([(p & t).sum(), (~p & ~t).sum(), (p & ~t).sum(), (~p & t).sum()]).double()

        def on_validation_epoch_end(self):
            c = self._counts
            if self.trainer.world_size > 1:
                c = self.all_gather(c).sum(0)
            if cfg.classes > 2:
                self.log("val_mds", _mds_confusion(c.cpu().numpy().reshape(cfg.classes, cfg.classes)),
                         sync_dist=False)
                return
            tp, tn, fp, fn = (float(v) for v in c)
            d1 = 2 * tp / max(2 * tp + fp + fn, 1.0)
            d0 = 2 * tn / max(2 * tn + fp + fn, 1.0)
            self.log("val_mds", 0.5 * (d0 + d1), sync_dist=False)

        def configure_optimizers(self):
            opt = torch.optim.Adam(self.net.parameters(), lr=s.lr)
            sched = plateau_scheduler(opt, factor=s.lr_factor, patience=s.lr_patience)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss", "interval": "epoch"}}

    return SegModule()


def _mds_confusion(cm: np.ndarray) -> float:
    """Mean Dice over the classes of a confusion matrix (rows = truth); a class absent from both scores 1."""
    cm = np.asarray(cm, np.float64)
    den = cm.sum(0) + cm.sum(1)
    d = np.where(den > 0, 2 * np.diag(cm) / np.maximum(den, 1.0), 1.0)
    return float(d.mean())


def _history_callback(verbose: bool):
    import lightning.pytorch as pl

    class History(pl.Callback):
        """Per-epoch record (kept in checkpoints, so a resumed run has the whole history)."""

        def __init__(self):
            self.rows: list[dict] = []

        def on_validation_end(self, trainer, module):  # after the module's epoch-end, before checkpointing
            if trainer.sanity_checking:
                return
            m = trainer.callback_metrics
            n = module._tl[1]
            row = {"epoch": trainer.current_epoch, "step": int(trainer.global_step), "train_loss": module._tl[0] / n if n else None,
                   "val_loss": float(m["val_loss"]), "val_mds": float(m["val_mds"]),
                   "lr": float(trainer.optimizers[0].param_groups[0]["lr"])}
            self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
            if verbose and trainer.is_global_zero:
                tl = "n/a" if row["train_loss"] is None else f"{row['train_loss']:.4f}"
                print(f"epoch {row['epoch']:4d}  step {row['step']:6d}  train_loss {tl}  val_loss {row['val_loss']:.4f}  "
                      f"val_MDS {row['val_mds']:.4f}  lr {row['lr']:.1e}", file=sys.stderr, flush=True)

        def state_dict(self):
            return {"rows": json.dumps(self.rows)}

        def load_state_dict(self, state):
            self.rows = json.loads(state["rows"])

    return History()


# --------------------------------------------------------------------------------------------- API


def _group(images: Sequence, labels: Sequence, c: int, what: str, energies=None, classes: int = 2) -> list:
    """[(img (c, z, y, x) float32, lbl uint8, energies)] from arrays: ``c`` images per label stack, in order;
    with ``classes`` > 2 the labels must be 0..classes-1."""
    if len(images) != c * len(labels):
        raise FibsynthError(
            f"{len(images)} {what}images for {len(labels)} label stack(s) with {c} channel(s) per stack: need {c} "
            "image(s) per label stack (all energies of stack 1, then of stack 2, ...)",
            param=("val_images" if what else "images", "channels_per_stack"))
    out = []
    for j, lab in enumerate(labels):
        lbl = np.asarray(lab)
        if lbl.ndim != 3:
            raise FibsynthError(f"label stack {j} is not (z, y, x) (shape {lbl.shape})", param="labels")
        if classes == 2:
            lbl = (lbl != 0).astype(np.uint8) if lbl.dtype != np.uint8 else lbl
        else:
            from fibsynth.io import as_labels

            try:
                lbl = as_labels(lbl, n=classes, param="labels")
            except FibsynthError as exc:
                raise FibsynthError(f"label stack {j}: {exc.message}", param="labels") from None
        chans = []
        for im in images[j * c:(j + 1) * c]:
            im = np.asarray(im)
            if tuple(im.shape) != lbl.shape:
                raise FibsynthError(f"image shape {tuple(im.shape)} differs from label shape {lbl.shape}",
                                    param="images")
            chans.append(np.asarray(im, np.float32))
        en = list(energies[j * c:(j + 1) * c]) if energies is not None else [None] * c
        out.append((np.stack(chans), lbl, en))
    return out


def _read_group(images: Sequence, labels: Sequence, c: int, what: str, classes: int = 2):
    """Read images (c per label stack, in order) and labels (binary, or 0..classes-1); returns (images, labels,
    energies) as lists."""
    from fibsynth.io import read_labels, read_structure, read_volume

    if len(images) != c * len(labels):
        _group(images, [None] * len(labels), c, what)  # the one-line count error
    imgs, lbls, energies = [], [], []
    for j, lp in enumerate(labels):
        lbl = np.asarray((read_structure(lp) if classes == 2 else read_labels(lp, n=classes)).data, np.uint8)
        lbls.append(lbl)
        for ip in images[j * c:(j + 1) * c]:
            v = read_volume(ip)
            if tuple(v.data.shape) != lbl.shape:
                raise FibsynthError(f"image shape {tuple(v.data.shape)} differs from label shape {lbl.shape} of {lp}", ip)
            imgs.append(np.asarray(v.data))
            energies.append(v.meta.energy_kev)
    return imgs, lbls, energies


def _multiotsu_mds(vols: _Volumes, raw_first: list[np.ndarray], rows: np.ndarray, s: TrainSettings,
                   order: list[int]) -> float:
    """MDS of the multi-Otsu thresholds (``classes`` gray classes, mapped to the labels by ``order``: the labels
    from darkest to brightest on the training slabs) over the validation patches."""
    from fibsynth.segment.baseline import multiotsu_thresholds

    t = multiotsu_thresholds(np.concatenate([r.ravel() for r in raw_first]), s.classes)
    lut = np.asarray(order, np.int64)
    n = s.classes
    cm = np.zeros(n * n, np.int64)
    for v, z, y, x in rows:
        zs = slice(z, z + s.patch) if s.mode == "3d" else slice(z, z + 1)
        ys, xs = slice(y, y + s.patch), slice(x, x + s.patch)
        p = lut[np.digitize(raw_first[v][zs, ys, xs], t)]
        g = vols.items[v][1][zs, ys, xs].astype(np.int64)
        cm += np.bincount((g * n + p).ravel(), minlength=n * n)
    return _mds_confusion(cm.reshape(n, n))


def _otsu_counts(vols: _Volumes, raw_first: list[np.ndarray], rows: np.ndarray, s: TrainSettings) -> float:
    """MDS of Otsu's global threshold (on the validation images' first channel) over the validation patches."""
    from fibsynth.segment.baseline import otsu_threshold

    t = otsu_threshold(np.concatenate([r.ravel() for r in raw_first]))
    masks = [(r > t) for r in raw_first]
    tp = tn = fp = fn = 0
    for v, z, y, x in rows:
        zs = slice(z, z + s.patch) if s.mode == "3d" else slice(z, z + 1)
        ys, xs = slice(y, y + s.patch), slice(x, x + s.patch)
        p = masks[v][zs, ys, xs]
        g = vols.items[v][1][zs, ys, xs].astype(bool)
        tp += int((p & g).sum())
        tn += int((~p & ~g).sum())
        fp += int((p & ~g).sum())
        fn += int((~p & g).sum())
    d1 = 2 * tp / max(2 * tp + fp + fn, 1)
    d0 = 2 * tn / max(2 * tn + fp + fn, 1)
    return 0.5 * (d0 + d1)


def _brightness_order(images: list[np.ndarray], labels: list[np.ndarray], n: int) -> list[int]:
    """The labels 0..n-1 from darkest to brightest mean gray value (a label absent from the data goes last)."""
    tot = np.zeros(n)
    cnt = np.zeros(n)
    for im, lb in zip(images, labels):
        tot += np.bincount(lb.ravel(), weights=np.asarray(im, np.float64).ravel(), minlength=n)[:n]
        cnt += np.bincount(lb.ravel(), minlength=n)[:n]
    mean = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.inf)
    return [int(i) for i in np.argsort(mean, kind="stable")]


def fit(images: Sequence, labels: Sequence, out: str | Path, settings: TrainSettings, *, val_images: Sequence = (),
        val_labels: Sequence = (), energies: Sequence | None = None, resume: bool = False, progress: bool = False,
        verbose: bool = True, sources: dict | None = None, init: str | Path | None = None,
        init_norm: Literal["init", "data"] = "init") -> dict:
    """Train a segmentation model on arrays: ``images`` (``channels_per_stack`` (z, y, x) arrays per label stack,
    all energies of stack 1, then of stack 2, ...) and ``labels`` (1 = solid); validation on ``val_images`` /
    ``val_labels`` or on the last ``val_fraction`` of each training stack's slices. Writes ``out/model.pt`` +
    ``out/config.json`` (best validation loss), ``out/checkpoints/`` (for ``resume``, keyed on the settings and
    the SHA-256 of the data) and returns the training record. Nothing is left in ``out`` when it fails before
    its first checkpoint. ``energies``: beam energy per image (recorded in the model); ``sources``: file names
    to record. ``init``: a saved model folder (:func:`fibsynth.segment.model.save_model`) of the same network
    (mode, context slices, widths, channels, classes) whose weights start the training instead of random weights
    (a warm start, e.g. fine-tuning on new data), with its input normalisation (``init_norm="init"``) or one fitted
    to the new training data (``"data"``); recorded as ``record["init"]``."""
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from torch.utils.data import DataLoader

    s = settings.check()
    out = Path(out)
    if not len(images) or not len(labels):
        raise FibsynthError("give training images and labels", param=("images", "labels"))
    c = s.channels_per_stack
    groups = _group(images, labels, c, "", energies, classes=s.classes)
    vgroups = _group(val_images, val_labels, c, "validation ", classes=s.classes) if len(val_labels) else []
    if len(val_images) and not len(val_labels):
        raise FibsynthError("validation images need their labels", param="val_labels")
    ckdir = out / CKPT_DIR
    sfile = out / SETTINGS_FILE
    last = ckdir / LAST
    fixed = s.model_dump(mode="json", exclude={"epochs", "steps", "accelerator", "devices", "num_workers"}
                         | ({"classes"} if s.classes == 2 else set()))  # binary: the record it always had
    fixed["data_sha256"] = content_hash([g[0] for g in groups] + [g[1] for g in groups]
                                        + [g[0] for g in vgroups] + [g[1] for g in vgroups])
    init_cfg = init_state = None
    if init is not None:
        if init_norm not in ("init", "data"):
            raise FibsynthError(f"must be init or data (got {init_norm!r})", param="init_norm")
        init_cfg, init_state, fixed["init_sha256"] = _init_weights(init, s, c)
        fixed["init_norm"] = init_norm
    if resume:
        if not last.is_file():
            raise FibsynthError(f"no checkpoint {last}", param="resume")
        if sfile.is_file():
            try:
                old = json.loads(sfile.read_text())
            except (ValueError, UnicodeDecodeError):
                raise FibsynthError(f"cannot read {sfile.name}: not the record of a training run", out,
                                    param="resume") from None
            if old != fixed:
                diff = sorted(k for k in set(old) | set(fixed) if old.get(k) != fixed.get(k))
                what = ["the training data (its content differs)" if k == "data_sha256" else k for k in diff]
                raise FibsynthError(f"differs from the checkpointed run in {', '.join(what)}", out, param="resume")
    elif last.exists():
        raise FibsynthError("holds checkpoints of an earlier run: resume to continue it, or use a new folder", out,
                            param="resume")
    min_z = s.patch if s.mode == "3d" else 1
    train_parts, val_parts = [], []
    for img, lbl, _ in groups:
        (a, b), v = D.split_slabs(lbl.shape[0], 0.0 if vgroups else s.val_fraction, min_z)
        train_parts.append((img[:, a:b], lbl[a:b]))
        if v:
            val_parts.append((img[:, v[0]:v[1]], lbl[v[0]:v[1]]))
    val_parts += [(img, lbl) for img, lbl, _ in vgroups]
    if not val_parts:
        raise FibsynthError("no validation data: use val_fraction > 0 or validation stacks",
                            param=("val_fraction", "val_images"))
    norm = ([tuple(v) for v in init_cfg.norm] if init_cfg is not None and init_norm == "init" else
            [D.fit_normalisation([p[0][ch] for p in train_parts], tuple(s.norm_percentiles)) for ch in range(c)])

    def prep(parts):
        return _Volumes([(np.stack([D.normalise(img[ch], *norm[ch]) for ch in range(c)]), lbl) for img, lbl in parts])

    tr, va = prep(train_parts), prep(val_parts)
    cfg = ModelConfig(mode=s.mode, k=s.k, edge=s.edge, n_energy=c, features=s.features,
                      num_res_units=s.num_res_units, patch=s.patch, norm=norm,
                      norm_percentiles=s.norm_percentiles, energies_kev=list(groups[0][2]), classes=s.classes)
    ds_tr, n_tr = _make_dataset(tr, s, train=True)
    ds_va, n_va = _make_dataset(va, s, train=False)
    plan = s.plan(n_tr)

    with quiet_lightning():
        import lightning.pytorch as pl

        pl.seed_everything(s.seed, workers=True, verbose=False)
    module = _lightning_module(cfg, s)
    if init_state is not None:
        module.net.load_state_dict(init_state)
    if resume:
        check_resume(last, module)
    history = _history_callback(verbose)
    ck = ModelCheckpoint(dirpath=ckdir, filename="best", monitor="val_loss", mode="min", save_top_k=1,
                         save_last=False, enable_version_counter=False)
    es = early_stopping("val_loss", s.early_stop)
    dl_tr = DataLoader(ds_tr, batch_size=s.batch,
                       sampler=EpochSampler(n_tr, s.seed, plan["per_epoch"], True),
                       num_workers=s.num_workers, persistent_workers=s.num_workers > 0)
    dl_va = DataLoader(ds_va, batch_size=s.batch, sampler=EpochSampler(n_va, s.seed, None, False),
                       num_workers=s.num_workers, persistent_workers=s.num_workers > 0)
    on_cpu = s.accelerator == "cpu" or (s.accelerator == "auto" and not torch.cuda.is_available())
    devices: Any = s.devices if s.devices == "auto" else (int(s.devices) if s.devices.isdigit() else s.devices)
    trainer = make_trainer(
        max_epochs=plan["epochs"], accelerator=s.accelerator, devices=devices, precision=s.precision,
        callbacks=[ck, es, history, last_checkpoint(last, after="train_epoch")], logger=False,
        enable_progress_bar=progress, enable_model_summary=False,
        deterministic=True if on_cpu else "warn", num_sanity_val_steps=0, default_root_dir=str(out),
        use_distributed_sampler=not on_cpu,
    )
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    wrote_settings = not sfile.exists()
    sfile.write_text(json.dumps(fixed, indent=1) + "\n")
    try:
        run_fit(trainer, module, dl_tr, dl_va, ckpt_path=str(last) if resume else None)
    except BaseException as exc:
        if not last.is_file():  # nothing to resume from: leave nothing behind
            if created:
                import shutil

                shutil.rmtree(out, ignore_errors=True)
            elif wrote_settings:
                sfile.unlink(missing_ok=True)
        if isinstance(exc, (ValueError, RuntimeError)) and "checkpoint" in str(exc).lower():
            raise FibsynthError(f"cannot continue from {last} ({str(exc).splitlines()[0][:160]})",
                                param="resume") from None
        raise
    if not trainer.is_global_zero:
        return {}
    best = ck.best_model_path or str(last)
    state = torch.load(best, weights_only=True, map_location="cpu")["state_dict"]
    net = build_net(cfg)
    net.load_state_dict({k[len("net."):]: v for k, v in state.items() if k.startswith("net.")})
    rows = history.rows
    best_row = min(rows, key=lambda r: r["val_loss"]) if rows else {}
    if s.classes == 2:
        otsu_mds = _otsu_counts(va, [p[0][0] for p in val_parts], _rows(va, s, train=False), s)
    else:  # multi-Otsu, its gray classes given to the labels in the order of their mean gray on the training slabs
        order = _brightness_order([p[0][0] for p in train_parts], [p[1] for p in train_parts], s.classes)
        otsu_mds = _multiotsu_mds(va, [p[0][0] for p in val_parts], _rows(va, s, train=False), s, order)
    best_mds = best_row.get("val_mds")
    below = best_mds is not None and best_mds < otsu_mds
    src = sources or {}
    record = {
        "settings": s.model_dump(mode="json"), "images": src.get("images", []), "labels": src.get("labels", []),
        "val_images": src.get("val_images", []), "val_labels": src.get("val_labels", []),
        "data_sha256": fixed["data_sha256"], "schedule": plan,
        "train_slabs": [list(p[1].shape) for p in train_parts], "val_slabs": [list(p[1].shape) for p in val_parts],
        "held_out": "separate stacks" if vgroups else f"last {s.val_fraction:g} of each stack's slices",
        "n_train_patches": n_tr, "n_val_patches": n_va, "epochs_run": len(rows),
        "steps_run": int(trainer.global_step),
        "best_epoch": best_row.get("epoch"), "best_val_loss": best_row.get("val_loss"),
        "best_val_mds": best_mds, "otsu_val_mds": otsu_mds, "below_otsu": bool(below),
        "stopped_early": bool(es.stopped_epoch),
        "seed": s.seed, "history": rows, "torch": torch.__version__,
    }
    if init is not None:  # (a training from random weights keeps the record it had)
        record["init"] = {"model": str(init), "sha256": fixed["init_sha256"], "norm": init_norm}
    if s.classes > 2:  # (the binary record keeps its keys)
        record.update(classes=s.classes, baseline="multi-otsu (gray classes in the training slabs' label order)")
    cfg = cfg.model_copy(update={"training": record})
    save_model(out, net, cfg)
    if below:
        import warnings

        warnings.warn(
            f"the model scores below a global Otsu threshold on its own validation data (MDS {best_mds:.3f} vs "
            f"Otsu {otsu_mds:.3f}) after {record['steps_run']} optimizer steps: train longer (steps), check the "
            "labels, or use the threshold", BelowBaselineWarning, stacklevel=2)
    return record


def _init_weights(init: str | Path, s: TrainSettings, c: int):
    """``fit``'s warm start: the saved model's config and weights, refused in one line naming ``init`` unless it
    is the network ``s`` would build (mode, k, widths, residual units, channels, classes). Returns (config, state
    dict, SHA-256 of the weights file)."""
    import hashlib

    from fibsynth.ml.checkpoint import load_weights
    from fibsynth.segment.model import MODEL_FILE, load_config

    d = Path(init)
    if not (d / MODEL_FILE).is_file():
        raise FibsynthError(f"no {MODEL_FILE}: not a saved segmentation model", d, param="init")
    cfg = load_config(d)
    want = {"mode": s.mode, "k": s.k if s.mode == "2.5d" else cfg.k, "features": tuple(s.features),
            "num_res_units": s.num_res_units, "n_energy": c, "classes": s.classes}
    have = {"mode": cfg.mode, "k": cfg.k, "features": tuple(cfg.features), "num_res_units": cfg.num_res_units,
            "n_energy": cfg.n_energy, "classes": cfg.classes}
    diff = [f"{k} {have[k]} (training: {want[k]})" for k in want if have[k] != want[k]]
    if diff:
        raise FibsynthError(f"is another network: {', '.join(diff)}", d, param="init")
    state = load_weights(d / MODEL_FILE, param="init")
    return cfg, state, hashlib.sha256((d / MODEL_FILE).read_bytes()).hexdigest()


def train(images: Sequence[str | Path], labels: Sequence[str | Path], out: str | Path, settings: TrainSettings,
          *, val_images: Sequence = (), val_labels: Sequence = (), resume: bool = False, progress: bool = False,
          verbose: bool = True, init: str | Path | None = None, init_norm: Literal["init", "data"] = "init") -> dict:
    """:func:`fit` on files: reads the image stacks (``channels_per_stack`` per label stack) and labels, records
    their names and energies, and trains (the CLI's and the experiment step's entry point). ``init``: a saved
    model to start from (:func:`fit`)."""
    if not images or not labels:
        raise FibsynthError("give training images and labels", param=("images", "labels"))
    s = settings.check()
    c = s.channels_per_stack
    imgs, lbls, energies = _read_group(images, labels, c, "", s.classes)
    vimgs, vlbls, _ = _read_group(val_images, val_labels, c, "validation ", s.classes) if val_labels else ([], [], [])
    sources = {"images": [str(p) for p in images], "labels": [str(p) for p in labels],
               "val_images": [str(p) for p in val_images], "val_labels": [str(p) for p in val_labels]}
    return fit(imgs, lbls, out, s, val_images=vimgs, val_labels=vlbls, energies=energies, resume=resume,
               progress=progress, verbose=verbose, sources=sources, init=init, init_norm=init_norm)
