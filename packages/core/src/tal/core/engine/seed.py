"""Seeding and capturing/restoring random-number-generator state.

RNG states are returned as plain Python values and tensors so they survive
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

_MAX_SEED = 2**32


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % _MAX_SEED)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for DataLoader workers: derive ``random``/NumPy seeds from torch's per-worker seed.

    torch already gives worker ``i`` the seed ``base_seed + i`` (``base_seed`` drawn from the loader's
    generator); this makes Python and NumPy augmentations in the worker follow it too.
    """
    worker_seed = torch.initial_seed() % _MAX_SEED
    random.seed(worker_seed)
    np.random.seed(worker_seed)


def epoch_generator(seed: int, epoch: int, rank: int = 0) -> torch.Generator:
    """A CPU generator whose state depends only on ``(seed, epoch, rank)`` (for shuffling and worker seeds)."""
    g = torch.Generator()
    g.manual_seed(derive_seed(seed, epoch, rank))
    return g


def derive_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A deterministic 63-bit seed from ``(seed, epoch, rank)``."""
    return (seed * 1_000_003 + epoch * 10_007 + rank * 101 + 17) % (2**63 - 1)


def get_rng_state() -> dict[str, Any]:
    """The state of every global generator as tensors and plain types."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [int(py_version), torch.tensor(py_state, dtype=torch.int64), py_gauss],
        "numpy": [
            str(np_name),
            torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            int(np_pos),
            int(np_has_gauss),
            float(np_gauss),
        ],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    py_version, py_state, py_gauss = state["python"]
    random.setstate((int(py_version), tuple(int(x) for x in py_state.tolist()), py_gauss))
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = state["numpy"]
    np.random.set_state((np_name, np_keys.numpy().astype(np.uint32), int(np_pos), int(np_has_gauss), float(np_gauss)))
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
