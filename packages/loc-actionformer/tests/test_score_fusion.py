"""Fusion with external video-level class scores (the release's ext_score_file)."""

from __future__ import annotations

import json
import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config

from tal.core.errors import DataFormatError
from tal.core.types import Segments
from tal.loc_actionformer import ActionFormer
from tal.loc_actionformer.postprocess import fuse_class_scores, load_class_scores


def test_fusion_by_hand() -> None:
    dets = Segments(torch.tensor([[1.0, 2.0], [3.0, 5.0], [0.0, 9.0]]), torch.zeros(3), torch.tensor([0.4, 0.9, 0.1]))
    fused = fuse_class_scores(dets, np.array([0.1, 0.6, 0.3]), top_k=2, num_pred=2)
    # the 2 best detections (0.9, 0.4) x the 2 best classes (1: 0.6, 2: 0.3), class by class
    assert fused.labels.tolist() == [1, 1, 2, 2]
    torch.testing.assert_close(fused.segments, torch.tensor([[3.0, 5.0], [1.0, 2.0]] * 2, dtype=torch.float64))
    expected = [math.sqrt(0.6 * 0.9), math.sqrt(0.6 * 0.4), math.sqrt(0.3 * 0.9), math.sqrt(0.3 * 0.4)]
    assert fused.scores is not None
    torch.testing.assert_close(fused.scores, torch.tensor(expected, dtype=torch.float64))


def test_score_files(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps({"results": {"v1": [0.2, 0.8]}, "version": "x"}))
    assert load_class_scores(tmp_path / "s.json")["v1"].tolist() == [0.2, 0.8]
    with open(tmp_path / "s.pkl", "wb") as f:
        pickle.dump({"v1": np.array([0.5, 0.25], np.float32)}, f)
    assert load_class_scores(tmp_path / "s.pkl")["v1"].tolist() == [0.5, 0.25]

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"v1": Evil()}, f)
    with pytest.raises(DataFormatError, match="refusing to load"):
        load_class_scores(tmp_path / "evil.pkl")
    (tmp_path / "bad.json").write_text(json.dumps({"v1": [0.1, float("nan")]}))
    with pytest.raises(DataFormatError, match="finite"):
        load_class_scores(tmp_path / "bad.json")
    with pytest.raises(DataFormatError, match="not found"):
        load_class_scores(tmp_path / "missing.json")


def test_model_fuses_at_inference(tmp_path: Path) -> None:
    path = tmp_path / "cls.json"
    path.write_text(json.dumps({"results": {"a": [0.1, 0.7, 0.2], "b": [0.9, 0.05, 0.05]}}))
    cfg = tiny_config(num_classes=1, test_cfg={"nms_method": "none", "ext_score_file": str(path)})
    plain_cfg = tiny_config(num_classes=1, test_cfg={"nms_method": "none"})
    torch.manual_seed(0)
    model = ActionFormer(cfg).eval()
    plain = ActionFormer(plain_cfg).eval()
    plain.load_state_dict(model.state_dict())
    batch = {
        "video_ids": ["a", "b"],
        "features": [torch.randn(16, 64), torch.randn(16, 40)],
        "fps": [30.0, 30.0],
        "feat_stride": [4, 4],
        "num_frames": [16, 16],
        "duration": [9.0, 6.0],
    }
    with torch.no_grad():
        fused, raw = model(batch), plain(batch)
    for f, r, scores in zip(fused, raw, ([0.1, 0.7, 0.2], [0.9, 0.05, 0.05]), strict=True):
        expected = fuse_class_scores(r, np.array(scores))
        assert torch.equal(f.labels, expected.labels) and f.labels[0] == int(np.argmax(scores))
        torch.testing.assert_close(f.scores, expected.scores)
    with pytest.raises(KeyError, match=r"cls\.json"), torch.no_grad():
        model({**batch, "video_ids": ["a", "zzz"]})
