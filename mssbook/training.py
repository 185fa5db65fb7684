"""One trainer for every model: plain PyTorch, readable in one sitting.

The model supplies its loss (:meth:`mssbook.models.SeparationModel.loss`); the trainer supplies
everything else: an optimiser (Adam with weight decay by default), a learning-rate schedule
(ReduceLROnPlateau by default, as Open-Unmix), early stopping, gradient clipping, progress bars, a
JSON history, atomic ``best.pt`` and ``last.pt`` checkpoints holding everything needed to resume,
device selection, mixed precision on GPUs, and multi-GPU/multi-process training with DistributedDataParallel when started
by ``torchrun`` (each rank draws different excerpts; rank 0 writes the files).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from .checkpoints import read_checkpoint, save_checkpoint
from .errors import MSSBookError, OutputExistsError
from .models import SeparationModel
from .utils import atomic_path


#: Optimisers by name (weight decay as each one's own ``weight_decay``; SGD without momentum).
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "rmsprop": torch.optim.RMSprop,
              "sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad}

#: Validation metrics the trainer can compute cheaply (see TrainConfig.valid_metrics).
VALIDATION_METRICS = ("usdr", "csdr", "si_sdr")


@dataclass
class TrainConfig:
    """Training settings. Defaults are Open-Unmix's (``scripts/train.py``, spec §1.5)."""

    epochs: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-5
    patience: int = 140  # early stopping: epochs without improvement of the monitored loss
    min_epochs: int = 0  # early stopping never stops before this epoch (the U-Net seed's --min_epochs)
    optimizer: str = "adam"  # "adam", "adamw", "rmsprop", "sgd", "adagrad" (the U-Net seed's --optimizer)
    lr_schedule: str = "plateau"  # "plateau", "step" (× gamma every lr_step epochs), "multistep", "cosine", "none"
    lr_decay_patience: int = 80
    lr_decay_gamma: float = 0.3
    lr_decay_cooldown: int = 10
    lr_step: int = 1
    lr_milestones: tuple[int, ...] = ()
    # "cosine": per step, lr · ½(1 + cos(π p)), p the share of the run done: the larger of the steps
    # done over epochs × batches per epoch and, with a time budget, the seconds spent over it. So a
    # short CPU run anneals to zero by its budget, whichever limit comes first (SGDR, Loshchilov &
    # Hutter 2017, one cycle). The first lr_warmup of p rises linearly from 0.
    lr_warmup: float = 0.0
    grad_clip: float | None = None  # max gradient norm (BSRNN: 5)
    nb_workers: int = 0
    seed: int = 42
    device: str = "auto"  # "auto" → cuda, then mps, then cpu
    amp: bool | None = None  # mixed precision; None → on for CUDA only
    time_budget: float | None = None  # seconds; stop after the epoch in which the budget runs out
    max_batches_per_epoch: int | None = None
    progress: bool = True
    extra: dict = field(default_factory=dict)  # free-form notes stored with the run
    # Cheap separation metrics on the validation tracks after each epoch (mssbook.metrics, no
    # projections): any of "usdr", "csdr", "si_sdr"; logged per target as valid_<metric>.
    valid_metrics: tuple[str, ...] = ()
    # What early stopping, the plateau schedule and best.pt follow: "loss" (the validation loss,
    # or the training loss without validation tracks), "train_loss" (the Wavenet seed's Keras
    # monitor='loss'), or one of valid_metrics (its mean over targets; higher is better).
    monitor: str = "loss"

    def __post_init__(self) -> None:
        self.valid_metrics = tuple(self.valid_metrics)
        unknown = [m for m in self.valid_metrics if m not in VALIDATION_METRICS]
        if unknown:
            raise MSSBookError(f"valid_metrics {unknown} unknown; choose from {', '.join(VALIDATION_METRICS)}")
        if self.monitor not in ("loss", "train_loss") and self.monitor not in self.valid_metrics:
            raise MSSBookError(f"monitor={self.monitor!r} must be 'loss', 'train_loss' or one of valid_metrics "
                               f"{self.valid_metrics}; e.g. TrainConfig(valid_metrics=('{self.monitor}',), monitor='{self.monitor}')")
        if self.lr_schedule not in ("plateau", "step", "multistep", "cosine", "none"):
            raise MSSBookError(f"lr_schedule {self.lr_schedule!r} is not one of plateau, step, multistep, cosine, none")
        if not 0.0 <= self.lr_warmup < 1.0:
            raise MSSBookError(f"lr_warmup is a share of the run in [0, 1); got {self.lr_warmup}")
        if self.optimizer not in OPTIMIZERS:
            raise MSSBookError(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.batch_size < 1 or self.epochs < 1:
            raise MSSBookError("batch_size and epochs must be at least 1")


# ---------------------------------------------------------------------------------------------
# devices and processes
def select_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA (this process's GPU under torchrun), then Apple's MPS, then the CPU."""
    if preference != "auto":
        device = torch.device(preference)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise MSSBookError("device 'cuda' was asked for but torch sees no CUDA GPU (see `mssbook doctor`).")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistributedContext:
    """Join the process group torchrun describes in the environment (no-op for one process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ctx = DistributedContext(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if ctx.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return ctx


class _LossModule(nn.Module):
    """Routes ``model.loss`` through ``forward`` so DistributedDataParallel can sync gradients."""

    def __init__(self, model: SeparationModel):
        super().__init__()
        self.model = model

    def forward(self, mixture, references):
        return self.model.loss(mixture, references)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _progress(iterable, enabled: bool, **kwargs):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


# ---------------------------------------------------------------------------------------------
class Trainer:
    """Train ``model`` on ``train_set`` (items: mixture (C, L), references (S, C, L)).

    ``valid_set`` items are full tracks (batch size 1); without one, the training loss is monitored.
    ``resume``: ``"auto"`` continues from ``output/last.pt`` when it exists, ``"never"`` refuses to
    touch an output folder that already holds a run (nothing is overwritten), or a checkpoint path.
    """

    def __init__(
        self,
        model: SeparationModel,
        train_set: Dataset,
        valid_set: Dataset | None = None,
        output: str | os.PathLike = "runs/model",
        config: TrainConfig | None = None,
        resume: str = "auto",
    ) -> None:
        self.config = config or TrainConfig()
        self.output = Path(output)
        self.train_set, self.valid_set = train_set, valid_set
        torch.manual_seed(self.config.seed)
        self.device = select_device(self.config.device, int(os.environ.get("LOCAL_RANK", "0")))
        self.ctx = init_distributed(self.device.type)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.model = model.to(self.device)
        self.loss_module: nn.Module = _LossModule(self.model)
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.loss_module = nn.parallel.DistributedDataParallel(self.loss_module, device_ids=ids)
        cfg = self.config
        self.optimizer = OPTIMIZERS[cfg.optimizer](self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = self._make_scheduler()
        self.amp = (self.device.type == "cuda") if cfg.amp is None else bool(cfg.amp and self.device.type == "cuda")
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.epoch = 0
        self._fit_start = time.perf_counter()  # fit() restarts it; the cosine schedule reads it
        self.best_loss = math.inf
        self.bad_epochs = 0
        self.history: list[dict[str, Any]] = []
        self._prepare_output(resume)

    # -- setup --------------------------------------------------------------------------------
    def _make_scheduler(self):
        cfg, opt = self.config, self.optimizer
        if cfg.lr_schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=cfg.lr_decay_gamma, patience=cfg.lr_decay_patience,
                cooldown=cfg.lr_decay_cooldown,
            )
        if cfg.lr_schedule == "step":
            return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_decay_gamma)
        if cfg.lr_schedule == "multistep":
            return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(cfg.lr_milestones), gamma=cfg.lr_decay_gamma)
        return None  # "none", and "cosine", which _set_cosine_lr applies per step

    def run_progress(self, steps_done: int, steps_per_epoch: int) -> float:
        """The share of this run done, in [0, 1]: steps over ``epochs`` × ``steps_per_epoch``, or the
        time spent over the time budget when that is larger (rank 0's clock under DDP)."""
        cfg = self.config
        progress = steps_done / max(1, cfg.epochs * steps_per_epoch)
        if cfg.time_budget:
            progress = max(progress, (time.perf_counter() - self._fit_start) / cfg.time_budget)
        return min(1.0, self._rank0_value(progress))

    def _set_cosine_lr(self, steps_done: int, steps_per_epoch: int) -> None:
        cfg = self.config
        p = self.run_progress(steps_done, steps_per_epoch)
        if p < cfg.lr_warmup:
            factor = p / cfg.lr_warmup
        else:
            factor = 0.5 * (1 + math.cos(math.pi * (p - cfg.lr_warmup) / (1 - cfg.lr_warmup)))
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * factor

    def _prepare_output(self, resume: str) -> None:
        last = self.output / "last.pt"
        if resume not in ("auto", "never"):
            self.load_state(resume)
        elif last.is_file():
            if resume == "never":
                raise OutputExistsError(
                    f"{self.output} already holds a training run (last.pt); resume it (resume='auto', "
                    "the CLI default) or choose another output folder."
                )
            self.load_state(last)
        if self.ctx.is_main:
            self.output.mkdir(parents=True, exist_ok=True)

    def load_state(self, path: str | os.PathLike) -> None:
        """Restore model, optimizer, scheduler, RNG states, epoch and history from a checkpoint."""
        state = read_checkpoint(path)
        model = self.model
        if state["model_name"] != model.name or state["model_config"] != model.config:
            raise MSSBookError(
                f"{path} holds a run of {state['model_name']} {state['model_config']}, not of "
                f"{model.name} {model.config}; use another output folder or the same settings."
            )
        model.load_state_dict(state["model_state"])
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = state.get("epoch", 0)
        self.best_loss = state.get("best_loss", math.inf)
        self.bad_epochs = state.get("bad_epochs", 0)
        self.history = list(state.get("history", []))
        if "rng" in state:
            _set_rng_state(state["rng"])

    # -- one epoch ----------------------------------------------------------------------------
    def _loader(self, epoch: int) -> DataLoader:
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(epoch)
        # DistributedSampler also serves one process: a seeded shuffle that changes every epoch,
        # and with several ranks, disjoint indices (so each rank draws different excerpts).
        sampler = DistributedSampler(self.train_set, num_replicas=self.ctx.world_size, rank=self.ctx.rank,
                                     shuffle=True, seed=self.config.seed, drop_last=True)
        sampler.set_epoch(epoch)
        return DataLoader(self.train_set, batch_size=self.config.batch_size, sampler=sampler,
                          num_workers=self.config.nb_workers, drop_last=True,
                          pin_memory=self.device.type == "cuda",
                          persistent_workers=False)

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def train_epoch(self, epoch: int) -> float:
        self.loss_module.train()
        loader = self._loader(epoch)
        total, count = 0.0, 0
        limit = self.config.max_batches_per_epoch
        bar = _progress(loader, self.config.progress and self.ctx.is_main, desc=f"epoch {epoch}",
                        leave=False, total=min(len(loader), limit) if limit else len(loader))
        steps_per_epoch = min(len(loader), limit) if limit else len(loader)
        for i, (mixture, references) in enumerate(bar):
            if limit is not None and i >= limit:
                break
            if self.config.lr_schedule == "cosine":
                self._set_cosine_lr((epoch - 1) * steps_per_epoch + i, steps_per_epoch)
            mixture = mixture.to(self.device, non_blocking=True)
            references = references.to(self.device, non_blocking=True)
            self.optimizer.zero_grad(set_to_none=True)
            with self._autocast():
                loss, _ = self.loss_module(mixture, references)
            self.scaler.scale(loss).backward()
            if self.config.grad_clip:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += loss.item()
            count += 1
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{total / count:.4g}")
        if count == 0:
            raise MSSBookError(
                f"the training set gave no full batch of {self.config.batch_size}: it has "
                f"{len(self.train_set)} excerpts per epoch over {self.ctx.world_size} process(es). "
                "Lower the batch size or raise samples_per_track."
            )
        self._sync_buffers()
        return self._mean_over_ranks(total / count)

    def _sync_buffers(self) -> None:
        """Give every rank rank 0's buffers (BatchNorm statistics), which DDP syncs only before a forward."""
        if self.ctx.enabled:
            for buffer in self.model.buffers():
                dist.broadcast(buffer.data, src=0)

    @torch.no_grad()
    def validate(self) -> tuple[float | None, dict[str, dict[str, float]]]:
        """The mean validation loss over the full validation tracks, and the requested cheap
        metrics (``{metric: {target: mean over tracks}}``); rank 0 computes, others receive."""
        if self.valid_set is None or len(self.valid_set) == 0:
            return None, {}
        from . import metrics as separation_metrics

        self.model.eval()
        losses = []
        wanted = self.config.valid_metrics
        scores = {m: {t: [] for t in self.model.targets} for m in wanted}
        if self.ctx.is_main:  # rank 0 scores the full tracks; the result is broadcast below
            for index in _progress(range(len(self.valid_set)), self.config.progress, desc="validation", leave=False):
                mixture, references = self.valid_set[index]  # one full track: (C, L), (S, C, L)
                with self._autocast():
                    loss = self.model.validation_loss(mixture[None].to(self.device), references[None].to(self.device))
                losses.append(float(loss))
                if wanted:
                    estimates = self.model.separate(mixture[None].to(self.device))[0].float().cpu()  # (S, C, L)
                    refs = dict(zip(self.model.targets, references.numpy()))
                    ests = dict(zip(self.model.targets, estimates.numpy()))
                    for name in wanted:
                        values = (separation_metrics.csdr(refs, ests, self.model.sample_rate) if name == "csdr"
                                  else getattr(separation_metrics, name)(refs, ests))
                        for target, value in values.items():
                            scores[name][target].append(value)
        value = float(np.mean(losses)) if losses else 0.0
        means = {m: {t: float(np.nanmean(v)) if v else float("nan") for t, v in per.items()} for m, per in scores.items()}
        if self.ctx.enabled:
            flat = [value] + [means[m][t] for m in wanted for t in self.model.targets]
            t = torch.tensor(flat, dtype=torch.float64, device=self._comm_device())
            dist.broadcast(t, src=0)
            values = t.tolist()
            value = values[0]
            for i, (m, target) in enumerate((m, t) for m in wanted for t in self.model.targets):
                means[m][target] = values[1 + i]
        return value, means

    def _comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def _mean_over_ranks(self, value: float) -> float:
        if not self.ctx.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(t)
        return float(t.item()) / self.ctx.world_size

    # -- the loop -----------------------------------------------------------------------------
    def fit(self) -> list[dict[str, Any]]:
        """Train until ``epochs``, early stopping or the time budget; returns the history."""
        cfg = self.config
        start = self._fit_start = time.perf_counter()
        epochs = _progress(range(self.epoch + 1, cfg.epochs + 1), cfg.progress and self.ctx.is_main,
                           desc="training", initial=self.epoch, total=cfg.epochs)
        for epoch in epochs:
            t0 = time.perf_counter()
            train_loss = self.train_epoch(epoch)
            valid_loss, valid_scores = self.validate()
            monitored = valid_loss if valid_loss is not None and cfg.monitor != "train_loss" else train_loss
            if cfg.monitor not in ("loss", "train_loss") and valid_scores:  # higher is better: minimise the negative
                monitored = -float(np.nanmean(list(valid_scores[cfg.monitor].values())))
            lr = self.optimizer.param_groups[0]["lr"]
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(monitored)
            elif self.scheduler is not None:
                self.scheduler.step()
            improved = monitored < self.best_loss
            if improved:
                self.best_loss, self.bad_epochs = monitored, 0
            else:
                self.bad_epochs += 1
            self.epoch = epoch
            self.history.append({"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss, "lr": lr,
                                 "seconds": round(time.perf_counter() - t0, 3), "best": improved,
                                 **{f"valid_{m}": v for m, v in valid_scores.items()}})
            if hasattr(epochs, "set_postfix"):
                epochs.set_postfix(train=f"{train_loss:.4g}", valid="-" if valid_loss is None else f"{valid_loss:.4g}")
            self._write(improved)
            if self.bad_epochs >= cfg.patience and epoch >= cfg.min_epochs:
                break
            out_of_time = cfg.time_budget is not None and time.perf_counter() - start >= cfg.time_budget
            if self._rank0_decides(out_of_time):  # one clock decides, or a rank could wait forever
                break
        return self.history

    def _rank0_value(self, value: float) -> float:
        """Rank 0's ``value`` on every rank (a learning rate from one clock)."""
        if not self.ctx.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self._comm_device())
        dist.broadcast(t, src=0)
        return float(t.item())

    def _rank0_decides(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (under torchrun each rank's own clock could disagree)."""
        if not self.ctx.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], dtype=torch.float64, device=self._comm_device())
        dist.broadcast(t, src=0)
        return bool(t.item())

    def _write(self, improved: bool) -> None:
        if self.ctx.is_main:
            state = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "epoch": self.epoch, "best_loss": self.best_loss, "bad_epochs": self.bad_epochs,
                "history": self.history, "rng": _rng_state(), "train_config": asdict(self.config),
            }
            save_checkpoint(self.output / "last.pt", self.model, **state)
            if improved:
                save_checkpoint(self.output / "best.pt", self.model, epoch=self.epoch, best_loss=self.best_loss,
                                train_config=asdict(self.config))
            with atomic_path(self.output / "history.json", overwrite=True) as tmp:
                tmp.write_text(json.dumps({
                    "model": self.model.name, "model_config": self.model.config,
                    "parameters": self.model.num_parameters(), "train_config": asdict(self.config),
                    "world_size": self.ctx.world_size, "device": str(self.device), "epochs": self.history,
                }, indent=2, default=str))
        if self.ctx.enabled:
            dist.barrier()


# ---------------------------------------------------------------------------------------------
# from a dataset root to a trained model (what `mssbook train` and the notebooks run)
@dataclass
class DataConfig:
    """Where the training excerpts come from and how they are drawn (sampler settings)."""

    root: str | None = None  # a MUSDB18 root; None → $MUSDB_PATH
    is_wav: bool | None = None  # None → detect STEMS or WAV
    seq_dur: float | None = None  # excerpt seconds; None → what the model needs (training_seq_dur), else 6.0
    samples_per_track: int = 64
    source_augmentations: tuple[str, ...] = ("gain", "channelswap")
    gain_range: tuple[float, float] = (0.25, 1.25)
    random_track_mix: bool = True
    validation: bool = True  # False: train on every training track, no validation (D3Net)
    valid_max_duration: float | None = None  # crop validation tracks (quick runs)
    seed: int = 42
    # Source activity detection (BSRNN, Wavenet singing voice): a SAD file written by
    # `mssbook prepare-sad`, a {track: [(start, end)]} dict, or "auto" (detected on the training
    # tracks for the first target when the datasets are built); fragment_p of the items take the
    # first target's excerpt from inside a salient fragment.
    fragments: str | dict | None = None
    fragment_p: float = 1.0
    silence_target_p: float = 0.0  # BSRNN: the target silenced with probability 0.1
    gain_db_range: tuple[float, float] = (-10.0, 10.0)  # range of the "gain_db" augmentation (BSRNN: ±10 dB)
    sample_rate: int | None = None  # resample excerpts and tracks to this rate; None → the model's rate


def excerpt_seconds(model: SeparationModel | None, data: DataConfig) -> float:
    """Seconds per training excerpt: ``data.seq_dur``, else the model's own need
    (:meth:`~mssbook.models.SeparationModel.training_seq_dur`, e.g. the U-Nets' hop·(frames − 1)
    samples), else Open-Unmix's 6 s."""
    if data.seq_dur is not None:
        return float(data.seq_dur)
    needed = model.training_seq_dur() if model is not None else None
    return 6.0 if needed is None else float(needed)


def build_datasets(model_or_targets, data: DataConfig):
    """The training sampler and the full-track validation set for a model (or its ``targets``)."""
    from .data.musdb import open_musdb
    from .data.sampler import MUSDBTrainSet, MUSDBValidSet

    model = model_or_targets if isinstance(model_or_targets, SeparationModel) else None
    targets = model.targets if model is not None else model_or_targets
    sample_rate = data.sample_rate if data.sample_rate is not None else getattr(model, "sample_rate", None)
    train_db = open_musdb(data.root, subsets="train", split="train" if data.validation else None, is_wav=data.is_wav)
    fragments = data.fragments
    if isinstance(fragments, str) and fragments == "auto":
        from .data.sad import detect_fragments

        fragments = detect_fragments(train_db, target=list(targets)[0])
    train_set = MUSDBTrainSet(
        train_db, targets=list(targets), seq_dur=excerpt_seconds(model, data), samples_per_track=data.samples_per_track,
        random_track_mix=data.random_track_mix, source_augmentations=data.source_augmentations,
        gain_range=tuple(data.gain_range), seed=data.seed, fragments=fragments, fragment_p=data.fragment_p,
        silence_target_p=data.silence_target_p, gain_db_range=tuple(data.gain_db_range), sample_rate=sample_rate,
    )
    valid_set = None
    if data.validation:
        valid_db = open_musdb(data.root, subsets="train", split="valid", is_wav=data.is_wav)
        valid_set = MUSDBValidSet(valid_db, targets=list(targets), max_duration=data.valid_max_duration,
                                  sample_rate=sample_rate)
    return train_set, valid_set



def training_mixtures(train_set):
    """Whole training mixtures, one ``(C, L)`` array at a time (input statistics, spec §1.3)."""
    for track in train_set.tracks:
        yield track.audio.T.astype(np.float32)


def train_model(model: SeparationModel, data: DataConfig, config: TrainConfig | None = None,
                output: str | os.PathLike = "runs/model", resume: str = "auto") -> Trainer:
    """Build the datasets, initialise input statistics (fresh runs only) and train. Returns the trainer."""
    config = config or TrainConfig(seed=data.seed)
    train_set, valid_set = build_datasets(model, data)
    fresh = not (Path(output) / "last.pt").is_file() and resume in ("auto", "never")
    if fresh:
        model.initialize_from_data(training_mixtures(train_set))
    trainer = Trainer(model, train_set, valid_set, output=output, config=config, resume=resume)
    trainer.fit()
    return trainer
