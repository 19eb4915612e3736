"""Tiny MS-TCN-layout datasets written by tests (features ``(C, T)`` .npy, groundTruth, mapping, splits)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tal.core.formats.mstcn import write_bundle, write_ground_truth, write_mapping


def write_dataset(
    root: Path,
    *,
    num_classes: int = 4,
    channels: int = 8,
    train: int = 6,
    test: int = 2,
    length: tuple[int, int] = (24, 40),
    splits: int = 1,
    seed: int = 0,
) -> Path:
    """``train + test`` videos of class-mean features plus noise; every split uses the same bundles."""
    rng = np.random.default_rng(seed)
    names = [f"class{k}" for k in range(num_classes)]
    write_mapping(root / "mapping.txt", names)
    means = rng.normal(size=(num_classes, channels)) * 2
    vids = [f"vid{i:02d}" for i in range(train + test)]
    for vid in vids:
        t_len = int(rng.integers(*length))
        cuts = np.sort(rng.choice(np.arange(3, t_len - 3), size=2, replace=False))
        labels = np.zeros(t_len, np.int64)
        for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, t_len], strict=True)):
            labels[a:b] = (i + int(rng.integers(num_classes))) % num_classes
        feats = means[labels].T + rng.normal(size=(channels, t_len))
        (root / "features").mkdir(parents=True, exist_ok=True)
        np.save(root / "features" / f"{vid}.npy", feats.astype(np.float32))
        write_ground_truth(root / "groundTruth" / f"{vid}.txt", labels, names)
    for k in range(1, splits + 1):
        write_bundle(root / "splits" / f"train.split{k}.bundle", [f"{v}.txt" for v in vids[:train]])
        write_bundle(root / "splits" / f"test.split{k}.bundle", [f"{v}.txt" for v in vids[train:]])
    return root
