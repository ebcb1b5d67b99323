"""Training (paper Table 1): 64x64 patches (64^3 in 3D) at stride 32, batch 64, Dice loss, Adam 1e-4,
learning rate x0.1 after 10 epochs without improvement of the validation loss, early stopping after 25.

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
from fibsynth.segment import data as D
from fibsynth.segment.model import ModelConfig, build_net, save_model

CKPT_DIR = "checkpoints"
SETTINGS_FILE = "train_settings.json"


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
    epochs: int = Field(100, ge=1, le=100000)
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

    def check(self) -> "TrainSettings":
        if self.patch % (2 ** (len(self.features) - 1)):
            raise FibsynthError(f"--patch {self.patch} must be a multiple of {2 ** (len(self.features) - 1)} "
                                f"(the U-Net's downsampling for --features {','.join(map(str, self.features))})")
        lo, hi = self.norm_percentiles
        if not 0 <= lo < hi <= 100:
            raise FibsynthError(f"--norm-percentiles must satisfy 0 <= lo < hi <= 100 (got {lo}, {hi})")
        return self


# ----------------------------------------------------------------------------------------- data sets


class _Volumes:
    """Normalised training or validation volumes: list of ((c, z, y, x) float32, (z, y, x) uint8)."""

    def __init__(self, items: list[tuple[np.ndarray, np.ndarray]]):
        self.items = items

    @property
    def shapes(self):
        return [lbl.shape for _, lbl in self.items]


def _make_dataset(vols: _Volumes, s: TrainSettings, *, train: bool):
    import torch
    from torch.utils.data import Dataset

    stride = s.stride if train else s.patch  # validation: non-overlapping, every voxel counted once
    rows = D.patch_index(vols.shapes, s.mode, s.patch, stride)
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


class EpochSampler:
    """Shuffled (epoch, index) keys; the order and the augmentation of epoch e depend only on (seed, e)."""

    def __init__(self, n: int, seed: int, per_epoch: int | None, shuffle: bool):
        self.n, self.seed, self.per_epoch, self.shuffle, self.epoch = n, seed, per_epoch, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self):
        return min(self.n, self.per_epoch) if self.per_epoch else self.n

    def __iter__(self):
        if self.shuffle:
            order = np.random.default_rng((self.seed, 7919, self.epoch)).permutation(self.n)[: len(self)]
        else:
            order = np.arange(self.n)
        return iter([(self.epoch, int(i)) for i in order])


# -------------------------------------------------------------------------------------- lightning


def _lightning_module(cfg: ModelConfig, s: TrainSettings):
    import lightning.pytorch as pl
    import torch
    from monai.losses import DiceLoss

    class SegModule(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = build_net(cfg)
            self.loss = DiceLoss(to_onehot_y=True, softmax=True)  # mean Dice of pore and solid
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
            self._counts = torch.zeros(4, dtype=torch.float64, device=self.device)

        def validation_step(self, batch, _):
            x, y = batch
            out = self.net(x)
            self.log("val_loss", self.loss(out, y), on_step=False, on_epoch=True, batch_size=x.shape[0],
                     sync_dist=True)
            p = out.argmax(1, keepdim=True).bool()
            t = y.bool()
            self._counts += torch.stack([(p & t).sum(), (~p & ~t).sum(), (p & ~t).sum(), (~p & t).sum()]).double()

        def on_validation_epoch_end(self):
            c = self._counts
            if self.trainer.world_size > 1:
                c = self.all_gather(c).sum(0)
            tp, tn, fp, fn = (float(v) for v in c)
            d1 = 2 * tp / max(2 * tp + fp + fn, 1.0)
            d0 = 2 * tn / max(2 * tn + fp + fn, 1.0)
            self.log("val_mds", 0.5 * (d0 + d1), sync_dist=False)

        def configure_optimizers(self):
            opt = torch.optim.Adam(self.net.parameters(), lr=s.lr)
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=s.lr_factor,
                                                               patience=s.lr_patience)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss", "interval": "epoch"}}

    return SegModule()


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
            row = {"epoch": trainer.current_epoch, "train_loss": module._tl[0] / n if n else None,
                   "val_loss": float(m["val_loss"]), "val_mds": float(m["val_mds"]),
                   "lr": float(trainer.optimizers[0].param_groups[0]["lr"])}
            self.rows = [r for r in self.rows if r["epoch"] != row["epoch"]] + [row]
            if verbose and trainer.is_global_zero:
                tl = "n/a" if row["train_loss"] is None else f"{row['train_loss']:.4f}"
                print(f"epoch {row['epoch']:4d}  train_loss {tl}  val_loss {row['val_loss']:.4f}  "
                      f"val_MDS {row['val_mds']:.4f}  lr {row['lr']:.1e}", file=sys.stderr, flush=True)

        def state_dict(self):
            return {"rows": json.dumps(self.rows)}

        def load_state_dict(self, state):
            self.rows = json.loads(state["rows"])

    return History()


# --------------------------------------------------------------------------------------------- API


def _load_group(images: Sequence, labels: Sequence, c: int, what: str):
    """Read images (c per label stack, in order) and labels; returns [(img (c,z,y,x), lbl, energies)]."""
    from fibsynth.io import read_structure, read_volume

    if len(images) != c * len(labels):
        raise FibsynthError(
            f"{len(images)} {what}images for {len(labels)} label stack(s) with --channels-per-stack {c}: "
            f"need {c} image(s) per label stack (all energies of stack 1, then of stack 2, ...)"
        )
    out = []
    for j, lp in enumerate(labels):
        lbl = np.asarray(read_structure(lp).data, np.uint8)
        chans, energies = [], []
        for ip in images[j * c:(j + 1) * c]:
            v = read_volume(ip)
            if tuple(v.data.shape) != lbl.shape:
                raise FibsynthError(f"image shape {tuple(v.data.shape)} differs from label shape {lbl.shape} of {lp}", ip)
            chans.append(np.asarray(v.data, np.float32))
            energies.append(v.meta.energy_kev)
        out.append((np.stack(chans), lbl, energies))
    return out


def train(images: Sequence[str | Path], labels: Sequence[str | Path], out: str | Path, settings: TrainSettings,
          *, val_images: Sequence = (), val_labels: Sequence = (), resume: bool = False, progress: bool = False,
          verbose: bool = True) -> dict:
    """Train a segmentation model; writes ``out/model.pt`` + ``out/config.json`` (best validation loss),
    ``out/checkpoints/`` (for ``resume``) and returns the training record."""
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from torch.utils.data import DataLoader

    s = settings.check()
    out = Path(out)
    if not images or not labels:
        raise FibsynthError("give --images and --labels")
    ckdir = out / CKPT_DIR
    sfile = out / SETTINGS_FILE
    fixed = s.model_dump(mode="json", exclude={"epochs", "accelerator", "devices", "num_workers"})
    fixed["images"] = [str(p) for p in images]
    fixed["labels"] = [str(p) for p in labels]
    ckpt_path = None
    if resume:
        last = ckdir / "last.ckpt"
        if not last.is_file():
            raise FibsynthError(f"--resume: no checkpoint {last}")
        if sfile.is_file() and json.loads(sfile.read_text()) != fixed:
            old = json.loads(sfile.read_text())
            diff = sorted(k for k in set(old) | set(fixed) if old.get(k) != fixed.get(k))
            raise FibsynthError(f"--resume: settings differ from the checkpointed run in {', '.join(diff)}", out)
        ckpt_path = str(last)
    elif (ckdir / "last.ckpt").exists():
        raise FibsynthError("holds checkpoints of an earlier run: add --resume to continue it, or use a new --out", out)
    c = s.channels_per_stack
    groups = _load_group(images, labels, c, "")
    vgroups = _load_group(val_images, val_labels, c, "validation ") if val_labels else []
    min_z = s.patch if s.mode == "3d" else 1
    train_parts, val_parts = [], []
    for img, lbl, _ in groups:
        (a, b), v = D.split_slabs(lbl.shape[0], 0.0 if vgroups else s.val_fraction, min_z)
        train_parts.append((img[:, a:b], lbl[a:b]))
        if v:
            val_parts.append((img[:, v[0]:v[1]], lbl[v[0]:v[1]]))
    val_parts += [(img, lbl) for img, lbl, _ in vgroups]
    if not val_parts:
        raise FibsynthError("no validation data: use --val-fraction > 0 or --val-images/--val-labels")
    energies = groups[0][2]
    norm = [D.fit_normalisation([p[0][ch] for p in train_parts], tuple(s.norm_percentiles)) for ch in range(c)]

    def prep(parts):
        return _Volumes([(np.stack([D.normalise(img[ch], *norm[ch]) for ch in range(c)]), lbl) for img, lbl in parts])

    tr, va = prep(train_parts), prep(val_parts)
    cfg = ModelConfig(mode=s.mode, k=s.k, edge=s.edge, n_energy=c, features=s.features,
                      num_res_units=s.num_res_units, patch=s.patch, norm=norm,
                      norm_percentiles=s.norm_percentiles, energies_kev=energies)
    ds_tr, n_tr = _make_dataset(tr, s, train=True)
    ds_va, n_va = _make_dataset(va, s, train=False)

    out.mkdir(parents=True, exist_ok=True)
    sfile.write_text(json.dumps(fixed, indent=1) + "\n")

    import logging

    if not progress:  # Lightning's banner ("GPU available ...", tips) only with --progress
        for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
            logging.getLogger(name).setLevel(logging.WARNING)
    pl.seed_everything(s.seed, workers=True, verbose=False)
    module = _lightning_module(cfg, s)
    history = _history_callback(verbose)
    ck = ModelCheckpoint(dirpath=ckdir, filename="best", monitor="val_loss", mode="min", save_top_k=1,
                         save_last=True, enable_version_counter=False)
    es = EarlyStopping(monitor="val_loss", mode="min", patience=s.early_stop)
    dl_tr = DataLoader(ds_tr, batch_size=s.batch, sampler=EpochSampler(n_tr, s.seed, s.patches_per_epoch, True),
                       num_workers=s.num_workers, persistent_workers=s.num_workers > 0)
    dl_va = DataLoader(ds_va, batch_size=s.batch, sampler=EpochSampler(n_va, s.seed, None, False),
                       num_workers=s.num_workers, persistent_workers=s.num_workers > 0)
    on_cpu = s.accelerator == "cpu" or (s.accelerator == "auto" and not torch.cuda.is_available())
    devices: Any = s.devices if s.devices == "auto" else (int(s.devices) if s.devices.isdigit() else s.devices)
    trainer = pl.Trainer(
        max_epochs=s.epochs, accelerator=s.accelerator, devices=devices, precision=s.precision,
        callbacks=[ck, es, history], logger=False, enable_progress_bar=progress, enable_model_summary=False,
        deterministic=True if on_cpu else "warn", num_sanity_val_steps=0, default_root_dir=str(out),
        use_distributed_sampler=not on_cpu,
    )
    try:
        trainer.fit(module, dl_tr, dl_va, ckpt_path=ckpt_path)
    except (ValueError, RuntimeError) as exc:
        if "checkpoint" in str(exc).lower():
            raise FibsynthError(f"--resume: cannot continue from {ckpt_path} ({str(exc).splitlines()[0][:160]})") from None
        raise
    if not trainer.is_global_zero:
        return {}
    best = ck.best_model_path or str(ckdir / "last.ckpt")
    state = torch.load(best, weights_only=True, map_location="cpu")["state_dict"]
    net = build_net(cfg)
    net.load_state_dict({k[len("net."):]: v for k, v in state.items() if k.startswith("net.")})
    rows = history.rows
    best_row = min(rows, key=lambda r: r["val_loss"]) if rows else {}
    record = {
        "settings": s.model_dump(mode="json"), "images": [str(p) for p in images], "labels": [str(p) for p in labels],
        "val_images": [str(p) for p in val_images], "val_labels": [str(p) for p in val_labels],
        "train_slabs": [list(p[1].shape) for p in train_parts], "val_slabs": [list(p[1].shape) for p in val_parts],
        "held_out": "separate stacks" if vgroups else f"last {s.val_fraction:g} of each stack's slices",
        "n_train_patches": n_tr, "n_val_patches": n_va, "epochs_run": len(rows),
        "best_epoch": best_row.get("epoch"), "best_val_loss": best_row.get("val_loss"),
        "best_val_mds": best_row.get("val_mds"), "stopped_early": bool(es.stopped_epoch),
        "seed": s.seed, "history": rows, "torch": torch.__version__,
    }
    cfg = cfg.model_copy(update={"training": record})
    save_model(out, net, cfg)
    return record
