"""Training engine shared by every tal method: :class:`Trainer` and its building blocks."""

from tal.core.engine.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from tal.core.engine.distributed import DistContext, init_distributed, shutdown_distributed
from tal.core.engine.ema import ModelEMA
from tal.core.engine.optim import build_optimizer, build_scheduler, param_groups
from tal.core.engine.run_logs import CSVLogger, flatten_metrics
from tal.core.engine.seed import seed_everything
from tal.core.engine.trainer import Trainer

__all__ = [
    "CSVLogger",
    "DistContext",
    "ModelEMA",
    "Trainer",
    "build_optimizer",
    "build_scheduler",
    "flatten_metrics",
    "init_distributed",
    "load_checkpoint",
    "load_model_weights",
    "param_groups",
    "save_checkpoint",
    "seed_everything",
    "shutdown_distributed",
]
