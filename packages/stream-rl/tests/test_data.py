"""stream-clips items, the label-structure dataset on the real Breakfast files, synthetic RGB videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import BREAKFAST

from tal.core.errors import ConfigError, DataFormatError
from tal.core.formats import read_ground_truth, read_mapping
from tal.core.registry import get_registry
from tal.stream_rl.clips import ClipSpec, clip_input, clip_labels
from tal.stream_rl.data import (
    StreamClips,
    StreamClipsConfig,
    SyntheticFromLabels,
    SyntheticFromLabelsConfig,
    SyntheticRGBConfig,
    SyntheticRGBSegmentation,
)

SOURCE = {"name": "synthetic-segmentation", "num_videos": 3, "input_dim": 4, "min_length": 30, "max_length": 70}


@pytest.mark.parametrize("per_item", [1, 2, 3])
def test_stream_clips_items_are_the_videos_clips(per_item: int) -> None:
    registry = get_registry()
    data = StreamClips(StreamClipsConfig(source=SOURCE, clip_len=4, sample_rate=3, clips_per_item=per_item), registry)
    spec = ClipSpec(4, 3)
    videos = data.source
    expected = sum(-(-spec.num_clips(len(videos[v].frame_labels)) // per_item) for v in range(len(videos)))
    assert len(data) == expected == len(data.video_ids)
    for i in range(len(data)):
        item = data[i]
        video = videos.video_ids.index(item.meta["source_video"])
        whole = videos[video]
        k0 = item.meta["first_clip"]
        assert item.meta["video_clips"] == spec.num_clips(len(whole.frame_labels))
        for j in range(spec.num_clips(len(item.frame_labels))):
            assert torch.equal(clip_input(item.features, spec, j), clip_input(whole.features, spec, k0 + j))
            assert torch.equal(clip_labels(item.frame_labels, spec, j), clip_labels(whole.frame_labels, spec, k0 + j))
    batch = data.collate([data[0], data[1]])
    assert batch["clip_window"] == 12 and batch["clips_per_video"].shape == (2,)


def test_stream_clips_source_errors_are_named() -> None:
    with pytest.raises(ConfigError, match="unknown dataset name 'nope'"):
        StreamClips(StreamClipsConfig(source={"name": "nope"}, clip_len=4, sample_rate=1), get_registry())
    with pytest.raises(ConfigError, match="num_videos"):
        bad = {**SOURCE, "num_videos": 0}
        StreamClips(StreamClipsConfig(source=bad, clip_len=4, sample_rate=1), get_registry())


@pytest.mark.skipif(not BREAKFAST.is_dir(), reason="shared Breakfast sample files not found")
def test_label_structure_dataset_keeps_the_real_labels() -> None:
    files = sorted((BREAKFAST / "groundTruth").glob("*.txt"))
    data = SyntheticFromLabels(
        SyntheticFromLabelsConfig(
            ground_truth_dir=str(BREAKFAST / "groundTruth"),
            mapping_file=str(BREAKFAST / "mapping.txt"),
            videos=[0, 3],
            subsample=4,
            input_dim=8,
        )
    )
    assert data.num_classes == 48 and data.class_names[0] == "SIL"
    real = read_ground_truth(files[3], read_mapping(BREAKFAST / "mapping.txt"))
    record = data[1]
    assert record.video_id == files[3].stem
    assert np.array_equal(record.frame_labels.numpy(), real[::4])
    assert record.features.shape == (8, len(real[::4]))
    again = data[1]
    assert torch.equal(record.features, again.features)  # deterministic per (seed, index)


def test_label_structure_dataset_errors(tmp_path) -> None:
    (tmp_path / "mapping.txt").write_text("0 a\n1 b\n")
    (tmp_path / "gt").mkdir()
    with pytest.raises(DataFormatError, match=r"no \.txt label files"):
        SyntheticFromLabels(
            SyntheticFromLabelsConfig(ground_truth_dir=str(tmp_path / "gt"), mapping_file=str(tmp_path / "mapping.txt"))
        )


def test_synthetic_rgb_frames_follow_the_labels() -> None:
    data = SyntheticRGBSegmentation(SyntheticRGBConfig(num_videos=2, height=8, width=8, pixel_noise=0.0, num_classes=4))
    record = data[0]
    labels = record.frame_labels
    assert record.features.shape == (3, len(labels), 8, 8)
    mean_colour = record.features.mean(dim=(2, 3))  # (3, T)
    for c in labels.unique():
        frames = mean_colour[:, labels == c]
        # the colour of a class is constant up to the moving stripes (mean of 0.5 + 0.5 sin)
        assert torch.allclose(frames.mean(dim=1), torch.tensor(data.colors[int(c)]) * 0.5, atol=0.2)
    batch = data.collate([data[0], data[1]])
    assert batch["features"].dim() == 5 and batch["labels"].shape == batch["mask"][:, 0].shape
