"""The plugin's components pass tal-core's reusable conformance suites."""

from __future__ import annotations

import torch

from tal.core.testing import BackboneConformance, DatasetConformance, MetricConformance


class TestDilatedTCN(BackboneConformance):
    name = "example-tcn"
    overrides = {"input_dim": 12, "hidden_dim": 8, "num_layers": 3}


class TestSineDataset(DatasetConformance):
    name = "example-sine"
    overrides = {"num_videos": 3, "length": 40}


class TestFrameError(MetricConformance):
    name = "example-frame-error"

    def samples(self):
        targets = [torch.tensor([0, 0, 1, 1]), torch.tensor([2, 2, 2]), torch.tensor([1, 0])]
        preds = [torch.tensor([0, 1, 1, 1]), torch.tensor([2, 2, 2]), torch.tensor([0, 0])]
        return preds, targets, ["a", "b", "c"]

    def test_value_by_hand(self):
        metric = self.build()
        metric.update(*self.samples())
        # wrong frames: 1 (video a) + 0 (b) + 1 (c) = 2 of 4 + 3 + 2 = 9 frames
        assert metric.compute() == {"frame_error": 100.0 * 2 / 9}
