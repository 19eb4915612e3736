"""Datasets: MS-TCN-layout GTEA / 50Salads / Breakfast with numbered splits and a validation split carved
from the training videos, and the demo's synthetic videos on real Breakfast label sequences.

``seg-tst-mstcn`` reads ``<root>/features/<video>.npy`` ``(2048, T)``, ``<root>/groundTruth/<video>.txt``,
``<root>/mapping.txt`` and ``<root>/splits/{train,test}.split<K>.bundle``. Items keep the full frame
rate; the models take every ``sample_rate``-th frame (50Salads: 8, as DiffAct and TST do) and predict
back at the full rate, so the metric compares with the full-rate ground truth like the releases' evaluators.

Subsets: ``test`` is the split's test bundle; ``val`` is ``val_fraction`` of the training bundle drawn
with ``val_seed``; ``train`` is the rest; ``trainval`` the whole training bundle (the releases train on
it and pick checkpoints on the test videos, which tal never does).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from scipy.ndimage import gaussian_filter1d

from tal.core.config import ComponentConfig
from tal.core.datasets._collate import collate_segmentation
from tal.core.datasets.mstcn import MSTCNConfig, MSTCNDataset
from tal.core.errors import ConfigError, DataFormatError
from tal.core.formats import read_bundle, read_ground_truth, read_mapping
from tal.core.types import VideoRecord

logger = logging.getLogger(__name__)

#: splits and temporal sampling of each dataset (DiffAct's default_configs.py and TST's tst/config.py)
DATASET_RULES: dict[str, dict[str, Any]] = {
    "gtea": {"splits": (1, 2, 3, 4), "sample_rate": 1, "num_classes": 11},
    "50salads": {"splits": (1, 2, 3, 4, 5), "sample_rate": 8, "num_classes": 19},
    "breakfast": {"splits": (1, 2, 3, 4), "sample_rate": 1, "num_classes": 48},
}


class SegDatasetConfig(ComponentConfig):
    """``seg-tst-mstcn``: one split of an MS-TCN-layout dataset."""

    name: Literal["seg-tst-mstcn"] = "seg-tst-mstcn"
    root: str = Field(description="the dataset folder (features/, groundTruth/, splits/, mapping.txt)")
    dataset: Literal["gtea", "50salads", "breakfast", "custom"] = "custom"
    split: int = Field(1, ge=1)
    subset: Literal["train", "val", "test", "trainval"] = "train"
    val_fraction: float = Field(0.15, ge=0, lt=1, description="share of the training videos held out for val")
    val_seed: int = 0
    sample_rate: int | None = Field(None, ge=1, description="None: the dataset's rule (50Salads 8, others 1)")
    fps: float = Field(15.0, gt=0)
    input_dim: int | None = Field(2048, ge=1, description="expected feature channels (checked)")
    length_mismatch: Literal["error", "truncate"] = "error"
    max_videos: int | None = Field(None, ge=1, description="use only the first N videos (quick runs)")


def carve_validation(entries: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split training entries into ``(train, val)``: ``ceil(fraction * n)`` videos (at least one when
    ``fraction > 0`` and ``n >= 2``) drawn with ``seed``; both keep the bundle's order."""
    n = len(entries)
    n_val = 0 if fraction == 0 or n < 2 else min(n - 1, max(1, math.ceil(fraction * n)))
    chosen = set(np.random.default_rng(seed).permutation(n)[:n_val].tolist())
    return [e for i, e in enumerate(entries) if i not in chosen], [e for i, e in enumerate(entries) if i in chosen]


class SegDataset:
    """Map-style dataset of :class:`VideoRecord` (full-rate ``features (C, T)`` and ``frame_labels (T,)``)."""

    def __init__(self, config: SegDatasetConfig) -> None:
        self.config = config
        root = Path(config.root)
        if not root.is_dir():
            raise DataFormatError(root, "dataset folder not found")
        rules = DATASET_RULES.get(config.dataset)
        if rules is not None and config.split not in rules["splits"]:
            raise ConfigError(f"split: {config.dataset} has splits {list(rules['splits'])}, got {config.split}")
        self.sample_rate = config.sample_rate or (rules["sample_rate"] if rules else 1)
        kind = "test" if config.subset == "test" else "train"
        bundle = f"{kind}.split{config.split}.bundle"
        entries = read_bundle(root / "splits" / bundle)
        if config.subset in ("train", "val"):
            train, val = carve_validation(entries, config.val_fraction, config.val_seed)
            entries = train if config.subset == "train" else val
        if config.max_videos is not None:
            entries = entries[: config.max_videos]
        if not entries:
            raise DataFormatError(root / "splits", f"the {config.subset} subset of split {config.split} has no videos")
        # core's reader at the full frame rate; lengths are checked here, with this dataset's default
        videos = MSTCNConfig(
            root=str(root), split=bundle, fps=config.fps, input_dim=config.input_dim, length_mismatch="truncate"
        )
        self._videos = MSTCNDataset(videos, entries)
        self.class_names = self._videos.class_names
        self.num_classes = self._videos.num_classes
        if rules is not None and self.num_classes != rules["num_classes"]:
            logger.warning(
                "%s: %d classes in mapping.txt, %s has %d", root, self.num_classes, config.dataset, rules["num_classes"]
            )
        self.class_counts = torch.from_numpy(self._videos.label_counts())

    def __len__(self) -> int:
        return len(self._videos)

    @property
    def video_ids(self) -> list[str]:
        return self._videos.video_ids

    def __getitem__(self, index: int) -> VideoRecord:
        record = self._videos[index]
        n_feat, n_gt = record.meta["feature_steps"], record.meta["label_frames"]
        if n_feat != n_gt and self.config.length_mismatch == "error":
            raise DataFormatError(
                record.meta["feature_file"],
                f"{n_feat} feature frames but {n_gt} labels in {record.meta['label_file']}"
                " (set length_mismatch=truncate)",
            )
        return dataclasses.replace(record, meta={"sample_rate": self.sample_rate})

    def collate(self, items: Sequence[VideoRecord]) -> dict[str, Any]:
        """Core's segmentation batch (``features``, ``mask``, ``labels``, ``targets``, ...) plus
        ``sample_rate`` and the subset's ``class_counts (K,)``."""
        batch = collate_segmentation(items)
        batch["sample_rate"] = self.sample_rate
        batch["class_counts"] = self.class_counts
        return batch


# ---------------------------------------------------------------------------------------------
# The demo's synthetic data: real Breakfast label sequences, noise features
# ---------------------------------------------------------------------------------------------
class SyntheticBreakfastConfig(ComponentConfig):
    """``seg-tst-synthetic-breakfast``: features drawn for the real Breakfast label sequences.

    Frame ``t``'s feature is ``separation * sum_k b_kt m_k + noise * eps_t`` with ``m_k`` a random unit
    vector per class and ``b_kt`` the one-hot labels blurred along time by a Gaussian of ``blur`` frames
    (so class evidence fades across boundaries); ``eps_t`` is white Gaussian noise. Videos are
    subsampled by ``stride`` to keep them short. ``subset="test"`` holds out the videos of
    ``test_person`` whose recipe another person also recorded (a cross-subject split where every test
    recipe was seen in training); ``train`` is every other video; ``all`` every video.
    """

    name: Literal["seg-tst-synthetic-breakfast"] = "seg-tst-synthetic-breakfast"
    root: str = Field(
        description="folder with groundTruth/*.txt and mapping.txt (../shared/data/segmentation/breakfast)"
    )
    subset: Literal["train", "test", "all"] = "all"
    input_dim: int = Field(32, ge=1)
    separation: float = Field(1.0, ge=0)
    noise: float = Field(1.0, ge=0)
    blur: float = Field(3.0, ge=0)
    stride: int = Field(4, ge=1, description="keep every k-th frame of the real sequences")
    test_person: str = Field("P17", description="person id (file-name prefix) held out for the test subset")
    seed: int = 0
    fps: float = Field(15.0, gt=0)


def held_out_videos(stems: Sequence[str], person: str) -> list[str]:
    """Videos of ``person`` (``P17_cam01_P17_tea`` → ``P17``) whose recipe (the last ``_`` part) another
    person also recorded."""
    recipe = {s: s.rsplit("_", 1)[-1] for s in stems}
    others = {recipe[s] for s in stems if not s.startswith(person + "_")}
    return [s for s in stems if s.startswith(person + "_") and recipe[s] in others]


class SyntheticBreakfast:
    """Map-style dataset of :class:`VideoRecord` with the real Breakfast label sequences."""

    def __init__(self, config: SyntheticBreakfastConfig) -> None:
        self.config = config
        root = Path(config.root)
        mapping = read_mapping(root / "mapping.txt")
        self.class_names = list(mapping)
        self.num_classes = len(mapping)
        files = sorted((root / "groundTruth").glob("*.txt"))
        if not files:
            raise DataFormatError(root / "groundTruth", "no ground-truth files")
        if config.subset != "all":
            test = set(held_out_videos([f.stem for f in files], config.test_person))
            files = [f for f in files if (f.stem in test) == (config.subset == "test")]
            if not files:
                raise DataFormatError(
                    root / "groundTruth", f"no {config.subset} videos (test_person {config.test_person!r})"
                )
        self._videos = [(f.stem, read_ground_truth(f, mapping)[:: config.stride]) for f in files]
        rng = np.random.default_rng([config.seed, 0])
        means = rng.normal(size=(self.num_classes, config.input_dim))
        self.means = means / np.linalg.norm(means, axis=1, keepdims=True)
        counts = np.bincount(np.concatenate([v[1] for v in self._videos]), minlength=self.num_classes)
        self.class_counts = torch.from_numpy(counts.astype(np.int64))

    def __len__(self) -> int:
        return len(self._videos)

    @property
    def video_ids(self) -> list[str]:
        return [v[0] for v in self._videos]

    def __getitem__(self, index: int) -> VideoRecord:
        cfg = self.config
        vid, labels = self._videos[index]
        onehot = np.eye(self.num_classes)[labels]  # (T, K)
        if cfg.blur > 0:
            onehot = gaussian_filter1d(onehot, cfg.blur, axis=0, mode="nearest")
        rng = np.random.default_rng([cfg.seed, 1, index])
        feats = cfg.separation * onehot @ self.means + cfg.noise * rng.normal(size=(len(labels), cfg.input_dim))
        return VideoRecord(
            video_id=vid,
            features=torch.from_numpy(feats.T.astype(np.float32)).contiguous(),
            fps=cfg.fps,
            feat_stride=1.0,
            num_frames=1.0,
            duration=len(labels) / cfg.fps,
            frame_labels=torch.from_numpy(labels.astype(np.int64)),
            meta={"sample_rate": 1},
        )

    def collate(self, items: Sequence[VideoRecord]) -> dict[str, Any]:
        batch = collate_segmentation(items)
        batch["sample_rate"] = 1
        batch["class_counts"] = self.class_counts
        return batch
