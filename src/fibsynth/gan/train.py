"""CycleGAN training with PyTorch Lightning (CPU, one GPU or several with DDP, unchanged).

Losses (Zhu et al. 2017): least-squares adversarial, L1 cycle (lambda = 10), L1 identity (0.5 lambda; only when
both domains have the same number of channels). Discriminators see a pool of 50 past fakes. Adam (lr 1e-4,
betas 0.5/0.999) for both generators together and both discriminators together; learning rate x0.1 after 10
epochs without improvement and early stopping after 25 (paper Table 1), both on the epoch mean of the
generators' cycle + identity loss (the adversarial terms are a two-player game and do not decrease).
Patches 128x128 at stride 64 from every slice of each domain; batch 1 by default.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from fibsynth.config import StrictModel
from fibsynth.errors import FibsynthError
from fibsynth.gan.model import Architecture, Intensity, ModelConfig, measure_intensity, to_unit
from fibsynth.ml.checkpoint import LAST, check_resume, last_checkpoint
from fibsynth.ml.runtime import check_threads, fit, make_trainer, quiet_lightning, torch_threads
from fibsynth.ml.sampler import EpochSampler
from fibsynth.ml.schedule import early_stopping, plateau_scheduler

CKPT_DIR = "checkpoints"
SAMPLES = "samples"


class TrainSettings(StrictModel):
    epochs: int = Field(100, ge=1, le=100000)
    patch: int = Field(128, ge=16, le=4096)
    stride: int = Field(64, ge=1, le=4096)
    batch: int = Field(1, ge=1, le=1024)
    lr: float = Field(1e-4, gt=0, le=1)
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    lambda_cycle: float = Field(10.0, ge=0)
    lambda_identity: float = Field(0.5, ge=0, description="times lambda_cycle")
    pool_size: int = Field(50, ge=0, le=10000)
    lr_patience: int = Field(10, ge=1)
    lr_factor: float = Field(0.1, gt=0, lt=1)
    early_stop_patience: int = Field(25, ge=1)
    seed: int = Field(0, ge=0, lt=2**32)
    max_patches: int | None = Field(None, ge=1, description="patches per epoch (default: all)")
    augment: bool = True
    samples: int = Field(3, ge=0, le=16, description="sample patches drawn into the per-epoch PNG")
    num_workers: int = Field(0, ge=0, le=64)


# ---------------------------------------------------------------- data

def _patch_origins(n: int, patch: int, stride: int) -> list[int]:
    if n <= patch:
        return [0]
    starts = list(range(0, n - patch + 1, stride))
    if starts[-1] != n - patch:
        starts.append(n - patch)
    return starts


class PatchSet:
    """All (slice, y, x) patch origins of a list of normalised channel stacks (c, z, y, x float32)."""

    def __init__(self, data: np.ndarray, patch: int, stride: int):
        c, z, h, w = data.shape
        if h < patch or w < patch:
            ph, pw = max(0, patch - h), max(0, patch - w)
            data = np.pad(data, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > 1 else "edge")
        self.data, self.patch = data, patch
        self.origins = [(k, y, x) for k in range(z) for y in _patch_origins(data.shape[2], patch, stride)
                        for x in _patch_origins(data.shape[3], patch, stride)]

    def __len__(self) -> int:
        return len(self.origins)

    def get(self, i: int) -> np.ndarray:
        k, y, x = self.origins[i]
        return self.data[:, k, y:y + self.patch, x:x + self.patch]


class UnpairedPatches:
    """Item (epoch, i) (keys of :class:`fibsynth.ml.EpochSampler`): patch i of domain A and a random patch of domain B, each with a random flip/rotation,
    all drawn from a generator seeded by (seed, epoch, i)."""

    def __init__(self, a: PatchSet, b: PatchSet, augment: bool, seed: int):
        self.a, self.b, self.augment, self.seed = a, b, augment, seed

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    @staticmethod
    def _aug(p: np.ndarray, r: int) -> np.ndarray:
        p = np.rot90(p, r % 4, axes=(1, 2))
        return p[:, :, ::-1] if r >= 4 else p

    def __getitem__(self, item):
        import torch

        epoch, i = item if isinstance(item, tuple) else (0, item)
        rng = np.random.default_rng((self.seed, epoch, 1, i))
        j = int(rng.integers(len(self.b)))
        pa, pb = self.a.get(i % len(self.a)), self.b.get(j)
        if self.augment:
            ra, rb = rng.integers(8, size=2)
            pa, pb = self._aug(pa, int(ra)), self._aug(pb, int(rb))
        return torch.from_numpy(np.ascontiguousarray(pa)), torch.from_numpy(np.ascontiguousarray(pb))


def normalise_stacks(stacks: list, dom: Intensity) -> np.ndarray:
    return np.stack([np.stack([to_unit(np.asarray(s[k]), dom, c) for k in range(s.shape[0])])
                     for c, s in enumerate(stacks)])


# ---------------------------------------------------------------- model

class ImagePool:
    """Shrivastava et al. history buffer: with probability 1/2 return a stored past fake (and store the new one
    in its place), else the new fake. Uses its own seeded torch generator (saved in checkpoints)."""

    def __init__(self, size: int, seed: int):
        import torch

        self.size = size
        self.images: list = []
        self.gen = torch.Generator().manual_seed(seed)

    def query(self, batch):
        import torch

        if self.size == 0:
            return batch
        out = []
        for img in batch.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.cpu().clone())
                out.append(img)
            elif torch.rand(1, generator=self.gen).item() < 0.5:
                k = int(torch.randint(0, self.size, (1,), generator=self.gen).item())
                old = self.images[k].to(img.device)
                self.images[k] = img.cpu().clone()
                out.append(old)
            else:
                out.append(img)
        return torch.cat(out, 0)

    def state(self) -> dict:
        import torch

        return {"images": torch.cat(self.images, 0) if self.images else torch.empty(0), "rng": self.gen.get_state()}

    def load(self, state: dict) -> None:
        imgs = state["images"]
        self.images = [imgs[i:i + 1].clone() for i in range(imgs.shape[0])] if imgs.numel() else []
        self.gen.set_state(state["rng"])


def _np_state_plain(state: tuple) -> list:
    """NumPy's legacy RNG state as tensors and numbers (checkpoints are read back with weights_only=True)."""
    import torch

    name, keys, pos, has_gauss, cached = state
    return [name, torch.from_numpy(np.asarray(keys, np.int64)), int(pos), int(has_gauss), float(cached)]


def _np_state_restore(plain: list) -> tuple:
    name, keys, pos, has_gauss, cached = plain
    return (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)


def _module_class():
    import lightning as L
    import torch
    import torch.nn.functional as F

    class CycleGAN(L.LightningModule):
        def __init__(self, arch: dict, settings: dict):
            super().__init__()
            from fibsynth.gan.model import make_discriminator, make_generator

            self.save_hyperparameters()
            self.arch = Architecture(**arch)
            self.s = TrainSettings(**settings)
            self.automatic_optimization = False
            self.g_ab = make_generator(self.arch, "ab")
            self.g_ba = make_generator(self.arch, "ba")
            self.d_a = make_discriminator(self.arch, self.arch.in_channels)
            self.d_b = make_discriminator(self.arch, self.arch.out_channels)
            self.pool_a = ImagePool(self.s.pool_size, self.s.seed + 1)
            self.pool_b = ImagePool(self.s.pool_size, self.s.seed + 2)
            self.identity = self.arch.in_channels == self.arch.out_channels and self.s.lambda_identity > 0
            self._sums: dict[str, float] = {}
            self._n = 0
            self.history: list[dict] = []

        def configure_optimizers(self):
            b = (self.s.beta1, self.s.beta2)
            opt_g = torch.optim.Adam(list(self.g_ab.parameters()) + list(self.g_ba.parameters()), lr=self.s.lr, betas=b)
            opt_d = torch.optim.Adam(list(self.d_a.parameters()) + list(self.d_b.parameters()), lr=self.s.lr, betas=b)
            sch = [plateau_scheduler(o, factor=self.s.lr_factor, patience=self.s.lr_patience) for o in (opt_g, opt_d)]
            return [opt_g, opt_d], sch

        @staticmethod
        def _gan(pred, real: bool):
            return F.mse_loss(pred, torch.ones_like(pred) if real else torch.zeros_like(pred))

        def _z(self, x, batch_idx: int, tag: int):
            """``x`` with the generators' noise channels appended: N(0, 1) from a generator seeded by (seed, epoch,
            batch, tag), so that a resumed run draws exactly the noise of an uninterrupted one."""
            k = self.arch.noise_channels
            if k == 0:
                return x
            epoch = int(self.current_epoch) if batch_idx >= 0 else 0  # batch -1: the sample images' fixed noise
            seed = int(np.random.SeedSequence([self.s.seed, epoch, int(batch_idx) + 1, tag,
                                               int(self.global_rank)]).generate_state(1)[0])
            g = torch.Generator(device=x.device)
            g.manual_seed(seed)
            z = torch.randn((x.shape[0], k, x.shape[2], x.shape[3]), generator=g, device=x.device, dtype=x.dtype)
            return torch.cat([x, z], dim=1)

        def training_step(self, batch, batch_idx):
            real_a, real_b = batch
            opt_g, opt_d = self.optimizers()
            s = self.s
            z = self._z
            # generators (discriminators frozen)
            for d in (self.d_a, self.d_b):
                d.requires_grad_(False)
            fake_b = self.g_ab(z(real_a, batch_idx, 0))
            fake_a = self.g_ba(z(real_b, batch_idx, 1))
            rec_a = self.g_ba(z(fake_b, batch_idx, 2))
            rec_b = self.g_ab(z(fake_a, batch_idx, 3))
            adv = self._gan(self.d_b(fake_b), True) + self._gan(self.d_a(fake_a), True)
            cyc = F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b)
            idt = torch.zeros((), device=real_a.device)
            if self.identity:
                idt = (F.l1_loss(self.g_ab(z(real_b, batch_idx, 4)), real_b)
                       + F.l1_loss(self.g_ba(z(real_a, batch_idx, 5)), real_a))
            loss_g = adv + s.lambda_cycle * cyc + s.lambda_cycle * s.lambda_identity * idt
            opt_g.zero_grad()
            self.manual_backward(loss_g)
            opt_g.step()
            # discriminators on real vs pooled fakes
            for d in (self.d_a, self.d_b):
                d.requires_grad_(True)
            pb = self.pool_b.query(fake_b)
            pa = self.pool_a.query(fake_a)
            loss_d_b = 0.5 * (self._gan(self.d_b(real_b), True) + self._gan(self.d_b(pb.detach()), False))
            loss_d_a = 0.5 * (self._gan(self.d_a(real_a), True) + self._gan(self.d_a(pa.detach()), False))
            loss_d = loss_d_a + loss_d_b
            opt_d.zero_grad()
            self.manual_backward(loss_d)
            opt_d.step()
            vals = {"g_adv": adv, "cycle": cyc, "identity": idt, "d": loss_d,
                    "monitor": s.lambda_cycle * cyc + s.lambda_cycle * s.lambda_identity * idt}
            for k, v in vals.items():
                self._sums[k] = self._sums.get(k, 0.0) + float(v.detach())
            self._n += 1
            self.log_dict({"cyc": cyc.detach(), "d": loss_d.detach(), "g_adv": adv.detach()}, prog_bar=True,
                          on_step=True, on_epoch=False, batch_size=real_a.shape[0])

        def on_train_epoch_end(self):
            n = max(self._n, 1)
            means = {k: v / n for k, v in self._sums.items()}
            # average over DDP processes so that every rank steps the schedulers and stops identically
            t = torch.tensor([means.get(k, 0.0) for k in ("g_adv", "cycle", "identity", "d", "monitor")],
                             device=self.device)
            t = self.all_gather(t).reshape(-1, 5).mean(0) if self.trainer.world_size > 1 else t
            means = dict(zip(("g_adv", "cycle", "identity", "d", "monitor"), [float(x) for x in t]))
            self.log("monitor", means["monitor"], on_epoch=True, sync_dist=False, prog_bar=False)
            for sch in self.lr_schedulers():
                sch.step(means["monitor"])
            means.update(epoch=int(self.current_epoch), lr=float(self.optimizers()[0].param_groups[0]["lr"]))
            self.history.append(means)
            self._sums, self._n = {}, 0

        def on_save_checkpoint(self, checkpoint: dict) -> None:
            import random

            checkpoint["fibsynth"] = {
                "pool_a": self.pool_a.state(), "pool_b": self.pool_b.state(), "history": self.history,
                "torch_rng": torch.get_rng_state(), "numpy_rng": _np_state_plain(np.random.get_state()),
                "python_rng": random.getstate(),
            }

        def on_load_checkpoint(self, checkpoint: dict) -> None:

            st = checkpoint.get("fibsynth", {})
            if st:
                self.pool_a.load(st["pool_a"])
                self.pool_b.load(st["pool_b"])
                self.history = list(st["history"])
                self._rng = st

        def on_train_start(self) -> None:
            import random

            st = getattr(self, "_rng", None)
            if st:  # resume the exact random stream (patch pairing, augmentation) of the interrupted run
                torch.set_rng_state(st["torch_rng"])
                np.random.set_state(_np_state_restore(st["numpy_rng"]))
                random.setstate(st["python_rng"])
                self._rng = None

    return CycleGAN


def _samples_callback(out_dir: Path, sample_a, sample_b):
    import lightning as L
    import torch

    class Samples(L.Callback):
        """One PNG per epoch: rows = sample patches; columns = A, G_AB(A), G_BA(G_AB(A)), B, G_BA(B), G_AB(G_BA(B))."""

        def on_train_epoch_end(self, trainer, pl_module):
            if not trainer.is_global_zero or sample_a is None:
                return
            was = (pl_module.g_ab.training, pl_module.g_ba.training)
            pl_module.g_ab.eval(), pl_module.g_ba.eval()
            with torch.no_grad():
                a = torch.from_numpy(sample_a).to(pl_module.device)
                b = torch.from_numpy(sample_b).to(pl_module.device)
                z = pl_module._z  # fixed noise per tag (batch index -1) so the epochs' samples compare
                fb = pl_module.g_ab(z(a, -1, 0))
                fa = pl_module.g_ba(z(b, -1, 1))
                cols = [a, fb, pl_module.g_ba(z(fb, -1, 2)), b, fa, pl_module.g_ab(z(fa, -1, 3))]
            pl_module.g_ab.train(was[0]), pl_module.g_ba.train(was[1])
            rows = [np.concatenate([c[i, 0].cpu().numpy() for c in cols], axis=1) for i in range(a.shape[0])]
            img = np.clip((np.concatenate(rows, axis=0) + 1) * 127.5, 0, 255).astype(np.uint8)
            import matplotlib.image as mpimg

            out_dir.mkdir(parents=True, exist_ok=True)
            mpimg.imsave(out_dir / f"epoch_{trainer.current_epoch:04d}.png", img, cmap="gray", vmin=0, vmax=255)

    return Samples()


def _as_channels(stacks, param: str) -> list:
    stacks = [stacks] if isinstance(stacks, np.ndarray) or getattr(stacks, "ndim", 0) == 3 else list(stacks)
    shapes = {tuple(getattr(s, "shape", ())) for s in stacks}
    if not stacks or len(shapes) != 1 or len(next(iter(shapes))) != 3:
        raise FibsynthError(f"channels must be (z, y, x) stacks of one shape (got {sorted(shapes)})", param=param)
    return stacks


def min_patch(arch: Architecture) -> int:
    """The smallest patch both networks take: a multiple of the generator's 2^depth with at least 2 pixels at
    its coarsest level (reflection padding), and a discriminator output of at least one pixel (its stride-2
    layers halve the patch, its two stride-1 4x4 convolutions take 3 pixels)."""
    m = 2**arch.gen_depth
    need = max(2 * m, 3 * 2**arch.disc_layers)
    return m * int(np.ceil(need / m))


def check_settings(settings: TrainSettings, arch: Architecture) -> None:
    """Refuse patch/stride settings the networks cannot train on (one line, before any work)."""
    if settings.stride > settings.patch:
        raise FibsynthError(f"the stride ({settings.stride}) must not exceed the patch ({settings.patch})",
                            param=("stride", "patch"))
    m = 2**arch.gen_depth
    if settings.patch % m:
        raise FibsynthError(f"must be a multiple of {m} (2^depth) (got {settings.patch})", param="patch")
    if settings.patch < min_patch(arch):
        raise FibsynthError(f"must be >= {min_patch(arch)} for a generator of depth {arch.gen_depth} and a "
                            f"discriminator of {arch.disc_layers} layers (got {settings.patch})", param="patch")


def train(source: list, target: list, out_dir: str | Path, settings: TrainSettings | None = None,
          arch: Architecture | None = None, *, resume: bool = False, accelerator: str = "auto",
          devices: Any = "auto", strategy: str = "auto", progress: bool = True, extra: dict | None = None,
          threads: int | None = None) -> dict:
    """Train a CycleGAN from ``source`` to ``target`` (each a list of (z, y, x) stacks, one per channel; a
    single stack is accepted) into ``out_dir``; returns a summary. ``resume`` continues from
    ``out_dir/checkpoints/last.ckpt`` (written after every epoch). Writes ``config.json``, ``generator_ab.pt``,
    ``generator_ba.pt``, ``history.json`` and ``samples/epoch_*.png``. ``threads``: torch CPU threads for this
    call only.

    Everything that can be checked is checked before anything is written: settings, the accelerator / devices /
    strategy (Lightning's refusal becomes a one-line error) and, with ``resume``, that the checkpoint is readable
    and of this architecture."""
    settings = settings or TrainSettings()
    source = _as_channels(source, "source")
    target = _as_channels(target, "target")
    threads = check_threads(threads)
    arch = (arch or Architecture()).model_copy(update={"in_channels": len(source), "out_channels": len(target)})
    check_settings(settings, arch)
    out_dir = Path(out_dir)
    ckpt = out_dir / CKPT_DIR / LAST
    if resume and not ckpt.is_file():
        raise FibsynthError(f"no checkpoint {ckpt}", param="resume")
    if not resume and ckpt.is_file():
        raise FibsynthError("already holds a training run; use resume to continue it or another folder", out_dir,
                            param="resume")
    with torch_threads(threads):
        return _train(source, target, out_dir, ckpt, settings, arch, resume, accelerator, devices, strategy,
                      progress, extra)


def _train(source, target, out_dir: Path, ckpt: Path, settings: TrainSettings, arch: Architecture, resume: bool,
           accelerator, devices, strategy, progress: bool, extra: dict | None) -> dict:
    import lightning as L
    import torch

    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    with quiet_lightning():  # seeds the initial weights, then the patch pairing and augmentation
        L.seed_everything(settings.seed, workers=True, verbose=False)
    Module = _module_class()
    module = Module(arch.model_dump(mode="json"), settings.model_dump(mode="json"))
    if resume:  # a corrupt checkpoint or one of another architecture: one line, nothing written
        check_resume(ckpt, module)
    src_int = measure_intensity(source)
    tgt_int = measure_intensity(target)
    if resume:  # the normalisation is part of the trained model: keep the one of the interrupted run
        from fibsynth.gan.model import read_config

        prev = read_config(out_dir)
        src_int, tgt_int = prev.source, prev.target
    a = PatchSet(normalise_stacks(source, src_int), settings.patch, settings.stride)
    b = PatchSet(normalise_stacks(target, tgt_int), settings.patch, settings.stride)
    ds = UnpairedPatches(a, b, settings.augment, settings.seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=settings.batch, sampler=EpochSampler(len(ds), settings.seed),
                                         num_workers=settings.num_workers, drop_last=len(ds) >= settings.batch)
    limit = 1.0 if settings.max_patches is None else min(len(loader), max(1, settings.max_patches // settings.batch))
    n_samples = min(settings.samples, len(a), len(b))
    if n_samples:
        ia = np.linspace(0, len(a) - 1, n_samples).astype(int)
        ib = np.linspace(0, len(b) - 1, n_samples).astype(int)
        sample_a = np.stack([a.get(i) for i in ia]).astype(np.float32)
        sample_b = np.stack([b.get(i) for i in ib]).astype(np.float32)
    else:
        sample_a = sample_b = None
    callbacks = [
        early_stopping("monitor", settings.early_stop_patience, on_train_epoch_end=True),
        _samples_callback(out_dir / SAMPLES, sample_a, sample_b),
        last_checkpoint(ckpt, after="train_epoch"),
    ]
    # the trainer is built before anything is written: Lightning refuses unusable accelerators/strategies here
    trainer = make_trainer(
        max_epochs=settings.epochs, accelerator=accelerator, devices=devices, strategy=strategy,
        callbacks=callbacks, logger=False, enable_progress_bar=progress, enable_model_summary=False,
        deterministic=True if on_cpu else "warn", limit_train_batches=limit, num_sanity_val_steps=0,
        default_root_dir=str(out_dir), log_every_n_steps=1, enable_checkpointing=True,
    )
    cfg = ModelConfig(architecture=arch, source=src_int, target=tgt_int,
                      training={"settings": settings.model_dump(mode="json"), "status": "running",
                                "source_shape": list(source[0].shape), "target_shape": list(target[0].shape),
                                "source_patches": len(a), "target_patches": len(b), **(extra or {})})
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / CKPT_DIR).mkdir(exist_ok=True)
    cfg.save(out_dir)
    t0 = time.perf_counter()
    try:
        fit(trainer, module, loader, ckpt_path=str(ckpt) if resume else None)
    except KeyboardInterrupt:
        raise  # the last epoch's checkpoint stays for resume
    except BaseException:
        if created and not ckpt.is_file():  # nothing worth keeping was written: leave no partial model folder
            import shutil

            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    seconds = time.perf_counter() - t0
    if not trainer.is_global_zero:
        return {}
    from fibsynth.gan.model import save_generators

    stopped = trainer.current_epoch < settings.epochs
    cfg.training.update(status="finished", epochs_run=int(trainer.current_epoch), early_stopped=bool(stopped),
                        seconds_last_session=round(seconds, 1), patches_per_epoch=int(len(loader) if limit == 1.0 else limit) * settings.batch,
                        final=module.history[-1] if module.history else {})
    save_generators(out_dir, cfg, module.g_ab, module.g_ba)
    (out_dir / "history.json").write_text(json.dumps(module.history, indent=1))
    return {"out": str(out_dir), "epochs": int(trainer.current_epoch), "seconds": seconds,
            "history": module.history, "early_stopped": bool(stopped)}
