"""frame-classifier (any registered backbone + linear head) and the temporal-conv backbone."""

from __future__ import annotations

import torch

from tal.core.baselines import TemporalConv, TemporalConvConfig
from tal.core.config import load_experiment
from tal.core.registry import get_registry
from tal.core.testing import BackboneConformance, ModelConformance


class TestTemporalConv(BackboneConformance):
    name = "temporal-conv"
    overrides = {"input_dim": 6, "hidden_dim": 5, "num_layers": 2}


class TestFrameClassifier(ModelConformance):
    name = "frame-classifier"
    overrides = {"num_classes": 3, "backbone": {"name": "temporal-conv", "input_dim": 4, "hidden_dim": 8}}

    def batch(self):
        gen = torch.Generator().manual_seed(0)
        mask = torch.ones(2, 1, 10, dtype=torch.bool)
        mask[1, :, 7:] = False
        labels = torch.randint(0, 3, (2, 10), generator=gen)
        labels[1, 7:] = -100
        return {
            "video_ids": ["a", "b"],
            "features": torch.randn(2, 4, 10, generator=gen),
            "mask": mask,
            "labels": labels,
        }

    def test_eval_lengths_follow_the_mask(self):
        model = self.build().eval()
        with torch.no_grad():
            preds = model(self.batch())
        assert [p.shape[0] for p in preds] == [10, 7]


def test_temporal_conv_by_hand():
    conv = TemporalConv(TemporalConvConfig(input_dim=1, hidden_dim=1, num_layers=1, kernel_size=3))
    with torch.no_grad():
        conv.convs[0].weight.copy_(torch.tensor([[[1.0, 2.0, 3.0]]]))
        conv.convs[0].bias.fill_(-1.0)
    x = torch.tensor([[[1.0, -2.0, 4.0, 5.0]]])
    mask = torch.tensor([[[True, True, True, False]]])
    # zero-padded and masked input [0, 1, -2, 4, 0, 0]: y[t] = x[t-1] + 2 x[t] + 3 x[t+1] - 1, relu, masked
    # t0: 0 + 2 - 6 - 1 = -5 -> 0;  t1: 1 - 4 + 12 - 1 = 8;  t2: -2 + 8 + 0 - 1 = 5;  t3: masked -> 0
    assert conv(x, mask).tolist() == [[[0.0, 8.0, 5.0, 0.0]]]


def test_backbone_selected_by_name_in_experiment():
    cfg = load_experiment(
        {
            "model": {
                "name": "frame-classifier",
                "num_classes": 4,
                "backbone": {"name": "temporal-conv", "input_dim": 3},
            }
        },
        get_registry(),
    )
    model = get_registry().build("models", cfg.model)
    assert model.head.out_channels == 4 and model.backbone.convs[0].in_channels == 3
