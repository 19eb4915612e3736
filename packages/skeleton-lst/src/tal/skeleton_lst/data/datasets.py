"""Registered datasets: NTU RGB+D arrays, NW-UCLA json files and synthetic sequences.

Every item is ``(sample id, skeletons (C, T, V, M) float32, 0-based label)``; :meth:`collate` stacks
a batch into tal's dict: ``video_ids``, ``inputs (B, C, T, V, M)``, ``labels (B,)`` and ``targets``.
Random augmentations draw from torch's generator, which the Trainer seeds per worker and epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from tal.core.config import ComponentConfig
from tal.core.errors import DataFormatError
from tal.skeleton_lst.data.synthetic import CLASSES as SYNTHETIC_CLASSES
from tal.skeleton_lst.data.synthetic import synthetic_set
from tal.skeleton_lst.data.transforms import apply_modality, random_rot, valid_crop_resize, valid_frames
from tal.skeleton_lst.data.ucla import read_nw_ucla, ucla_eval_transform, ucla_train_transform, view_of
from tal.skeleton_lst.graphs import BONE_PAIRS

__all__ = [
    "NTUSkeletonConfig",
    "NTUSkeletons",
    "NWUCLAConfig",
    "NWUCLASkeletons",
    "SkeletonDataset",
    "SyntheticSkeletonConfig",
    "SyntheticSkeletons",
    "collate_skeletons",
    "read_ntu_npz",
]

Modality = Literal["joint", "bone", "joint_motion", "bone_motion"]


def _item_rng() -> np.random.Generator:
    return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))


def collate_skeletons(items: Sequence[tuple[str, np.ndarray, int]]) -> dict[str, Any]:
    """tal's batch dict of ``(id, (C, T, V, M), label)`` items."""
    labels = [int(y) for _, _, y in items]
    return {
        "video_ids": [i for i, _, _ in items],
        "inputs": torch.from_numpy(np.stack([np.asarray(x, np.float32) for _, x, _ in items])),
        "labels": torch.tensor(labels, dtype=torch.long),
        "targets": labels,
    }


class SkeletonDataset(torch.utils.data.Dataset):
    """Base: ``class_names``, ``__len__``, ``collate``; subclasses define ``__getitem__``."""

    class_names: list[str]

    def collate(self, items: Sequence[tuple[str, np.ndarray, int]]) -> dict[str, Any]:
        return collate_skeletons(items)


# -- NTU RGB+D -----------------------------------------------------------------------------------------
class NTUSkeletonConfig(ComponentConfig):
    """``ntu-skeleton``: an ``NTU60_CS.npz``-style file of the widely used preprocessing (see
    :mod:`tal.skeleton_lst.data.ntu_pipeline`), with the release feeder's cropping, rotation and modality."""

    name: Literal["ntu-skeleton"] = "ntu-skeleton"
    data_path: str
    split: Literal["train", "test"] = "train"
    window_size: int = Field(64, ge=1)
    p_interval: list[float] = Field(default_factory=lambda: [0.5, 1.0], min_length=1, max_length=2)
    random_rot: bool = False
    modality: Modality = "joint"
    num_classes: int = Field(60, ge=1)
    limit: int | None = Field(None, ge=1, description="use only the first N samples (debugging)")


def read_ntu_npz(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``x_<split> (N, T, 150)`` as ``(N, 3, T, 25, 2)`` and the labels (argmax of the one-hot rows)."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(p, "NTU data file not found (make it with `tal lst ntu-prepare`)")
    with np.load(p, mmap_mode="r") as z:
        for key in (f"x_{split}", f"y_{split}"):
            if key not in z.files:
                raise DataFormatError(p, f"missing array {key!r} (has {', '.join(z.files)})")
        x, y = z[f"x_{split}"], z[f"y_{split}"]
    if x.ndim != 3 or x.shape[2] != 150:
        raise DataFormatError(p, f"x_{split}: expected (N, T, 150), got {x.shape}")
    labels = np.where(y > 0)[1] if y.ndim == 2 else y.astype(np.int64)
    if len(labels) != len(x):
        raise DataFormatError(p, f"y_{split}: {len(labels)} labels for {len(x)} samples")
    n, t, _ = x.shape
    return np.asarray(x).reshape(n, t, 2, 25, 3).transpose(0, 4, 1, 3, 2), labels


class NTUSkeletons(SkeletonDataset):
    """NTU RGB+D 60/120 arrays as the release's ``feeders/feeder_ntu.py`` serves them."""

    def __init__(self, config: NTUSkeletonConfig) -> None:
        self.config = config
        self.data, self.labels = read_ntu_npz(config.data_path, config.split)
        if config.limit is not None:
            self.data, self.labels = self.data[: config.limit], self.labels[: config.limit]
        from tal.skeleton_lst.modeling.text import class_texts

        names = class_texts("ntu120").class_names
        self.class_names = list(names[: config.num_classes])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[str, np.ndarray, int]:
        c = self.config
        x = np.array(self.data[index], dtype=np.float32)
        rng = _item_rng()
        x = valid_crop_resize(x, valid_frames(x), c.p_interval, c.window_size, rng)
        if c.random_rot:
            x = random_rot(x, rng=rng)
        x = apply_modality(x, c.modality, BONE_PAIRS["ntu"])
        return f"{c.split}_{index}", x.astype(np.float32), int(self.labels[index])


# -- NW-UCLA -------------------------------------------------------------------------------------------
class NWUCLAConfig(ComponentConfig):
    """``nw-ucla``: a folder of NW-UCLA json files (CTR-GCN's ``all_sqe``); cross-view protocol:
    views 1 and 2 train, view 3 is the validation split. ``repeat`` repeats the training list (5)."""

    name: Literal["nw-ucla"] = "nw-ucla"
    root: str
    split: Literal["train", "val"] = "train"
    modality: Modality = "joint"
    repeat: int = Field(1, ge=1)
    augment: bool | None = Field(None, description="random view/scale/frames (default: on for train)")


class NWUCLASkeletons(SkeletonDataset):
    """NW-UCLA as the release's ``feeders/feeder_ucla.py``: ``(3, 52, 20, 1)`` per sample."""

    def __init__(self, config: NWUCLAConfig) -> None:
        self.config = config
        root = Path(config.root)
        if not root.is_dir():
            raise DataFormatError(root, "NW-UCLA folder not found")
        views = (1, 2) if config.split == "train" else (3,)
        files = sorted(p for p in root.glob("*.json") if view_of(p.name) in views)
        if not files:
            raise DataFormatError(root, f"no NW-UCLA json files of views {views} (aXX_sYY_eZZ_vWW.json)")
        self.files = files
        self.samples = [read_nw_ucla(p) for p in files]
        self.augment = config.split == "train" if config.augment is None else config.augment
        from tal.skeleton_lst.modeling.text import class_texts

        self.class_names = list(class_texts("ucla").class_names)

    def __len__(self) -> int:
        return len(self.samples) * self.config.repeat

    def __getitem__(self, index: int) -> tuple[str, np.ndarray, int]:
        i = index % len(self.samples)
        joints, label = self.samples[i]
        if self.augment:
            x = ucla_train_transform(joints, self.config.modality, _item_rng())
        else:
            x = ucla_eval_transform(joints, self.config.modality)
        return self.files[i].stem, x.astype(np.float32), label


# -- synthetic -----------------------------------------------------------------------------------------
class SyntheticSkeletonConfig(ComponentConfig):
    """``synthetic-skeleton``: parametric motions on the NTU skeleton (:mod:`.synthetic`)."""

    name: Literal["synthetic-skeleton"] = "synthetic-skeleton"
    num_per_class: int = Field(20, ge=1)
    num_frames: int = Field(32, ge=4)
    seed: int = 0
    modality: Modality = "joint"


class SyntheticSkeletons(SkeletonDataset):
    """Synthetic sequences ``(3, T, 25, 2)`` of :data:`~tal.skeleton_lst.data.synthetic.CLASSES`."""

    def __init__(self, config: SyntheticSkeletonConfig) -> None:
        self.config = config
        data, labels = synthetic_set(config.num_per_class, config.num_frames, config.seed)
        self.data = np.stack([apply_modality(x, config.modality, BONE_PAIRS["ntu"]) for x in data]).astype(np.float32)
        self.labels = labels
        self.class_names = list(SYNTHETIC_CLASSES)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[str, np.ndarray, int]:
        return f"synthetic_{index}", self.data[index], int(self.labels[index])
