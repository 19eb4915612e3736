"""The one training loop every tal method uses.

Batch convention (see :mod:`tal.core.protocols`): ``dataset.collate`` returns a dict with
``"video_ids": list[str]`` and, for annotated data, ``"targets": list`` (one entry per video). In
training mode ``model(batch)`` returns a dict of scalar losses whose total is ``"loss"``; in eval mode
it returns one prediction per video, aligned with ``batch["video_ids"]``, which goes to
``metric.update(predictions, batch["targets"], batch["video_ids"])``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from torch.utils.data.dataloader import default_collate

from tal.core.config import ExperimentConfig, TrainConfig
from tal.core.engine.checkpoint import BEST, FORMAT_VERSION, LAST, load_checkpoint, save_checkpoint, to_plain
from tal.core.engine.distributed import DistContext, ShardSampler, all_gather_objects, barrier, init_distributed
from tal.core.engine.ema import ModelEMA
from tal.core.engine.optim import build_optimizer, build_scheduler
from tal.core.engine.run_logs import (
    CSVLogger,
    ProgressBar,
    TensorBoardLogger,
    flatten_metrics,
    make_tensorboard,
    progress_enabled,
)
from tal.core.engine.seed import (
    derive_seed,
    epoch_generator,
    get_rng_state,
    seed_everything,
    seed_worker,
    set_rng_state,
)
from tal.core.errors import ConfigError, DataFormatError

if TYPE_CHECKING:
    from tal.core.registry import Registry

logger = logging.getLogger(__name__)

METRICS_CSV = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"


def move_to(obj: Any, device: torch.device | str, upcast_half: bool = False, dataclasses_too: bool = False) -> Any:
    """Move the tensors inside ``obj`` (nested dicts, lists and tuples) to ``device``.

    Other objects pass through unchanged (models move what they need from e.g. ``Segments`` or
    ``VideoRecord``), unless ``dataclasses_too``, which rebuilds dataclass instances with moved fields.
    With ``upcast_half`` bfloat16/float16 tensors become float32 (for predictions made under AMP).
    """
    if isinstance(obj, torch.Tensor):
        if upcast_half and obj.dtype in (torch.bfloat16, torch.float16):
            obj = obj.float()
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: move_to(v, device, upcast_half, dataclasses_too) for k, v in obj.items()}
    if isinstance(obj, list):
        return [move_to(v, device, upcast_half, dataclasses_too) for v in obj]
    if isinstance(obj, tuple):
        items = [move_to(v, device, upcast_half, dataclasses_too) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)
    if dataclasses_too and dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {
            f.name: move_to(getattr(obj, f.name), device, upcast_half, dataclasses_too)
            for f in dataclasses.fields(obj)
            if f.init
        }
        return dataclasses.replace(obj, **changes)
    return obj


def _collate_of(dataset: Any) -> Any:
    return getattr(dataset, "collate", None) or default_collate


class Trainer:
    """Trains ``model`` on ``train_set`` and evaluates it on ``val_set`` with ``metric``.

    Args:
        model: a :class:`~tal.core.protocols.Model` (an ``nn.Module``).
        train_set: map-style dataset with ``collate``; ``None`` for evaluation only.
        val_set: dataset evaluated every ``config.eval_every`` epochs and after the last one.
        metric: :class:`~tal.core.protocols.Metric`; its ``sync()`` (if any) or ``merge`` combines ranks.
        config: training settings (defaults: ``TrainConfig()``).
        output_dir: where ``last.pt``, ``best.pt``, ``metrics.csv`` and ``tensorboard/`` go
            (default ``config.output_dir``); created by :meth:`fit` only.
        dist: the process's place in a distributed job (default: read from ``torchrun``'s environment).
        progress: ``None`` shows a bar when ``config.progress`` and stdout is a terminal; ``True``
            forces it, ``False`` hides it.

    ``epochs`` counts the whole run, warmup included. The model is seeded by the caller; the trainer
    seeds the global generators with ``config.seed + rank`` and shuffles with a generator that
    depends only on ``(seed, epoch)``, so a resumed run repeats an uninterrupted one exactly.

    Under ``torchrun`` the model is wrapped in ``DistributedDataParallel`` for training (set
    ``model.ddp_find_unused_parameters = True`` if some parameters get no gradient); if the trainer
    created the process group, end with ``shutdown_distributed(trainer.dist)``.
    """

    @classmethod
    def from_experiment(
        cls,
        cfg: ExperimentConfig,
        registry: Registry,
        output_dir: str | Path | None = None,
        *,
        dist: DistContext | None = None,
        progress: bool | None = None,
    ) -> Trainer:
        """A trainer for ``cfg`` (from :func:`tal.core.config.load_experiment`): its model, training and
        validation datasets and metric built by ``registry``; seed torch before calling if the model's
        initial weights must repeat."""
        return cls(
            registry.build("models", cfg.model),
            registry.build("datasets", cfg.data.train) if cfg.data.train is not None else None,
            registry.build("datasets", cfg.data.val) if cfg.data.val is not None else None,
            registry.build("metrics", cfg.metric) if cfg.metric is not None else None,
            cfg.train,
            output_dir,
            dist=dist,
            progress=progress,
        )

    def __init__(
        self,
        model: nn.Module,
        train_set: Any = None,
        val_set: Any = None,
        metric: Any = None,
        config: TrainConfig | None = None,
        output_dir: str | Path | None = None,
        *,
        dist: DistContext | None = None,
        progress: bool | None = None,
    ) -> None:
        self.config = config if config is not None else TrainConfig()
        self.output_dir = Path(output_dir if output_dir is not None else self.config.output_dir)
        self.dist = dist if dist is not None else init_distributed(self.config.device)
        self.device = self.dist.device
        self.show_progress = self.dist.is_main and progress_enabled(self.config.progress, progress)
        seed_everything(self.config.seed + self.dist.rank)

        self.model = model.to(self.device)
        self.train_set = train_set
        self.val_set = val_set
        self.metric = metric
        self.epoch = 0  # completed epochs
        self.global_step = 0  # completed optimizer steps
        self.best: dict[str, Any] = {"metric": self.config.best_metric, "value": None, "epoch": None}
        self.last_metrics: dict[str, Any] = {}
        self._resumed_from: int | None = None

        self.ema = ModelEMA(self.model, self.config.ema.decay) if self.config.ema.enabled else None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self.train_loader: DataLoader | None = None
        self.train_model: nn.Module = self.model
        if train_set is not None:
            self._loader_generator = torch.Generator()
            self.train_loader = self._make_train_loader(train_set)
            self.optimizer = build_optimizer(self.model, self.config.optimizer)
            self.scheduler = build_scheduler(
                self.optimizer,
                self.config.scheduler,
                self.config.epochs,
                len(self.train_loader),
                self.config.optimizer.lr,
            )
            if self.dist.distributed:
                self.train_model = DistributedDataParallel(
                    self.model,
                    device_ids=[self.device.index] if self.device.type == "cuda" else None,
                    find_unused_parameters=bool(getattr(model, "ddp_find_unused_parameters", False)),
                )

    # -- data ---------------------------------------------------------------------------------
    def _make_train_loader(self, dataset: Any) -> DataLoader:
        sampler: DistributedSampler[Any] = DistributedSampler(
            dataset,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
            shuffle=True,
            seed=self.config.seed,
        )
        return DataLoader(
            dataset,
            batch_size=self.config.batch_size,
            sampler=sampler,
            collate_fn=_collate_of(dataset),
            num_workers=self.config.num_workers,
            worker_init_fn=seed_worker,
            generator=self._loader_generator,
            drop_last=self.config.drop_last,
            pin_memory=self.device.type == "cuda",
        )

    def _make_eval_loader(self, dataset: Any) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.config.eval_batch_size,
            sampler=ShardSampler(len(dataset), self.dist.rank, self.dist.world_size),
            collate_fn=_collate_of(dataset),
            num_workers=self.config.num_workers,
            worker_init_fn=seed_worker,
            generator=epoch_generator(self.config.seed, -1, self.dist.rank),
            pin_memory=self.device.type == "cuda",
        )

    def _autocast(self) -> AbstractContextManager[Any]:
        """bf16 autocast on the trainer's device when ``config.amp``."""
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.config.amp)

    # -- training -----------------------------------------------------------------------------
    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """One optimizer step on ``batch``: forward, backward, clip, step, schedule, EMA.

        Returns the batch's losses as floats, plus ``grad_norm`` (before clipping) when clipping.
        """
        if self.optimizer is None or self.scheduler is None:
            raise RuntimeError("Trainer was built without a training set")
        batch = move_to(batch, self.device)
        with self._autocast():
            losses = self.train_model(batch)
        if not isinstance(losses, Mapping) or "loss" not in losses:
            raise TypeError(
                f"{type(self.model).__name__} must return a dict of losses with a total 'loss' in training mode, "
                f"got {type(losses).__name__}"
            )
        loss = losses["loss"]
        if not bool(torch.isfinite(loss.detach()).all()):
            raise FloatingPointError(
                f"non-finite loss at epoch {self.epoch + 1}, step {self.global_step + 1}: "
                + ", ".join(f"{k}={float(v.detach().float())}" for k, v in losses.items() if v.numel() == 1)
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        stats = {k: float(v.detach().float()) for k, v in losses.items() if torch.is_tensor(v) and v.numel() == 1}
        if self.config.clip_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad_norm)
            stats["grad_norm"] = float(norm)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.global_step += 1
        return stats

    def _train_epoch(self, epoch: int, tb: TensorBoardLogger | None) -> tuple[dict[str, float], float]:
        """Train one epoch; returns the epoch's mean losses (averaged over ranks) and its last step's lr."""
        assert self.train_loader is not None and self.optimizer is not None
        self.train_model.train()
        sampler = self.train_loader.sampler
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        self._loader_generator.manual_seed(derive_seed(self.config.seed, epoch, self.dist.rank))
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        lr = float(self.optimizer.param_groups[0]["lr"])
        desc = f"epoch {epoch + 1}/{self.config.epochs}"
        with ProgressBar(len(self.train_loader), desc, self.show_progress) as bar:
            for batch in self.train_loader:
                lr = float(self.optimizer.param_groups[0]["lr"])
                stats = self.train_step(batch)
                for k, v in stats.items():
                    sums[k] = sums.get(k, 0.0) + v
                    counts[k] = counts.get(k, 0) + 1
                bar.update(1, loss=stats["loss"], lr=lr)
                if tb is not None:
                    tb.log({**{f"train/{k}": v for k, v in stats.items()}, "train/lr": lr}, self.global_step)
        means = {k: sums[k] / counts[k] for k in sums}
        per_rank = all_gather_objects(means, self.dist)
        keys = sorted({k for m in per_rank for k in m})
        return {k: sum(m[k] for m in per_rank if k in m) / sum(1 for m in per_rank if k in m) for k in keys}, lr

    def _should_eval(self, completed: int) -> bool:
        if self.val_set is None or self.metric is None:
            return False
        return completed % self.config.eval_every == 0 or completed == self.config.epochs

    def _update_best(self, flat: dict[str, float]) -> bool:
        name = self.config.best_metric or self.best["metric"] or next(iter(flat), None)
        if name is None:
            return False
        if name not in flat:
            raise ConfigError(
                f"train.best_metric: {name!r} is not a result of the metric; available: {', '.join(flat) or 'none'}"
            )
        self.best["metric"] = name
        value = flat[name]
        mode = self.config.best_mode
        if mode == "auto":
            mode = "max" if getattr(self.metric, "higher_is_better", True) else "min"
        sign = 1.0 if mode == "max" else -1.0
        if math.isnan(value) or (self.best["value"] is not None and sign * value <= sign * self.best["value"]):
            return False
        self.best["value"] = value
        self.best["epoch"] = self.epoch
        return True

    def fit(self) -> dict[str, Any]:
        """Train until ``config.epochs`` (continuing after :meth:`resume`); returns the last evaluation's metrics.

        Per epoch: train, evaluate when due, log a CSV row (and TensorBoard), save ``last.pt`` every
        ``checkpoint_every`` epochs and at the end, and ``best.pt`` when ``best_metric`` improves
        (``best_mode``: ``max``, ``min``, or ``auto`` = the metric's ``higher_is_better``, default true;
        the first scalar result when ``best_metric`` is unset).
        """
        if self.train_loader is None:
            raise RuntimeError("Trainer.fit() needs a training set")
        main = self.dist.is_main
        csv_log: CSVLogger | None = None
        tb: TensorBoardLogger | None = None
        if main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            csv_log = CSVLogger(self.output_dir / METRICS_CSV, resume_epoch=self._resumed_from)
            purge = self.global_step + 1 if self._resumed_from is not None else None
            tb = make_tensorboard(self.output_dir / TENSORBOARD_DIR, self.config.tensorboard, purge)
        try:
            while self.epoch < self.config.epochs:
                train_stats, last_lr = self._train_epoch(self.epoch, tb)
                self.epoch += 1
                row: dict[str, Any] = {"epoch": self.epoch, "step": self.global_step, "lr": last_lr}
                row.update({f"train/{k}": v for k, v in train_stats.items()})
                improved = False
                if self._should_eval(self.epoch):
                    self.last_metrics = self.evaluate()
                    flat = flatten_metrics(self.last_metrics)
                    row.update({f"val/{k}": v for k, v in flat.items()})
                    improved = self._update_best(flat)
                if csv_log is not None:
                    csv_log.log(row)
                if tb is not None:
                    tb.log({k: v for k, v in row.items() if k.startswith("val/")}, self.global_step)
                if main:
                    summary = " ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float))
                    logger.info("epoch %d/%d %s", self.epoch, self.config.epochs, summary)
                due = self.epoch % self.config.checkpoint_every == 0 or self.epoch == self.config.epochs
                if due or improved:
                    state = self.state_dict()  # collective under DDP: every rank calls it
                    if main:
                        if due:
                            save_checkpoint(state, self.output_dir / LAST)
                        if improved:
                            save_checkpoint(state, self.output_dir / BEST)
                    barrier(self.dist)
        finally:
            if tb is not None:
                tb.close()
        return self.last_metrics

    # -- evaluation ---------------------------------------------------------------------------
    def eval_model(self) -> nn.Module:
        """The weights evaluation uses: the EMA copy when enabled, else the model."""
        return self.ema.module if self.ema is not None else self.model

    @torch.no_grad()
    def evaluate(
        self, dataset: Any = None, metric: Any = None, on_batch: Callable[[Any, Any, Any], None] | None = None
    ) -> dict[str, Any]:
        """Predict every video of ``dataset`` (default ``val_set``) and score with ``metric`` (default
        ``self.metric``); under DDP each rank predicts a shard and the metric is combined across ranks.
        Every rank returns the same result.

        If the dataset has ``class_names`` and the metric a ``set_class_names(names)`` method, the
        metric is told the dataset's classes first (e.g. to resolve background classes by name).
        ``on_batch(predictions, targets, video_ids)`` sees every batch after the metric (this rank's).
        """
        dataset = dataset if dataset is not None else self.val_set
        metric = metric if metric is not None else self.metric
        if dataset is None or metric is None:
            raise ValueError("evaluate() needs a dataset and a metric")
        model = self.eval_model()
        was_training = model.training
        model.eval()
        class_names = getattr(dataset, "class_names", None)
        if class_names is not None and callable(getattr(metric, "set_class_names", None)):
            metric.set_class_names(list(class_names))
        metric.reset()
        loader = self._make_eval_loader(dataset)
        try:
            with ProgressBar(len(loader), "eval", self.show_progress) as bar:
                for batch in loader:
                    if "targets" not in batch:
                        raise DataFormatError(
                            type(dataset).__name__, "evaluation batches need 'targets' (is the split annotated?)"
                        )
                    with self._autocast():
                        predictions = model(move_to(batch, self.device))
                    predictions = move_to(predictions, "cpu", upcast_half=True, dataclasses_too=True)
                    metric.update(predictions, batch["targets"], batch["video_ids"])
                    if on_batch is not None:
                        on_batch(predictions, batch["targets"], batch["video_ids"])
                    bar.update(1)
        finally:
            model.train(was_training)
        return self._compute_metric(metric)

    def _compute_metric(self, metric: Any) -> dict[str, Any]:
        if not self.dist.distributed:
            return metric.compute()
        if callable(getattr(metric, "sync", None)):
            metric.sync()
            return metric.compute()
        parts = all_gather_objects(metric, self.dist)  # copies, in rank order
        merged = parts[0]
        for part in parts[1:]:
            merged.merge(part)
        return merged.compute()

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly (tensors and plain values only).

        Under DDP it gathers every rank's RNG state, so every rank must call it.
        """
        return {
            "format_version": FORMAT_VERSION,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": all_gather_objects(get_rng_state(), self.dist),
            "world_size": self.dist.world_size,
            "best": dict(self.best),
            "metrics": to_plain(self.last_metrics),
            "train_config": self.config.model_dump(mode="json"),
        }

    def resume(self, path: str | Path) -> None:
        """Restore model, optimizer, scheduler, EMA, RNG state, epoch, step and best score from ``path``.

        The learning-rate schedule's shape comes from the current config (identical on an exact resume).
        RNG states are restored when the world size matches; otherwise generators are re-seeded from
        ``(seed, epoch, rank)`` with a warning.
        """
        ckpt = load_checkpoint(path)
        for key in ("model", "epoch", "global_step"):
            if key not in ckpt:
                raise DataFormatError(path, f"not a tal training checkpoint (no {key!r} entry)")
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise DataFormatError(path, f"weights do not fit {type(self.model).__name__}: {exc}") from None
        if self.optimizer is not None and ckpt.get("optimizer") is not None:
            self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt.get("scheduler") is not None:
            sched = dict(ckpt["scheduler"])
            sched["lr_lambdas"] = [None] * len(sched.get("lr_lambdas", []))
            self.scheduler.load_state_dict(sched)
        if self.ema is not None:
            if ckpt.get("ema") is not None:
                self.ema.load_state_dict(ckpt["ema"])
            else:
                self.ema = ModelEMA(self.model, self.config.ema.decay)
        self.epoch = int(ckpt["epoch"])
        self.global_step = int(ckpt["global_step"])
        best = ckpt.get("best") or {}
        if self.config.best_metric is not None and best.get("metric") not in (None, self.config.best_metric):
            best = {}  # tracking a different metric now: start over
        self.best = {
            "metric": best.get("metric", self.config.best_metric),
            "value": best.get("value"),
            "epoch": best.get("epoch"),
        }
        self.last_metrics = dict(ckpt.get("metrics") or {})
        rng = ckpt.get("rng")
        if isinstance(rng, list) and len(rng) == self.dist.world_size:
            set_rng_state(rng[self.dist.rank])
        else:
            logger.warning("%s: saved with a different number of processes; random state re-seeded", path)
            seed_everything(derive_seed(self.config.seed, self.epoch, self.dist.rank))
        self._resumed_from = self.epoch
        barrier(self.dist)
