"""Presets against the release's values, the public build_model, plugin registration, conformance suites."""

from __future__ import annotations

import pytest
import torch

from tal.core.config import load_experiment
from tal.core.registry import get_registry
from tal.core.testing import BackboneConformance, DatasetConformance, ModelConformance
from tal.stream_rl import StreamingSegmenter, build_model
from tal.stream_rl.presets import DATASETS, experiment_dict

# (classes, sample rate, clip_seg_num) of config/svtas/svtas-rl/svtas_rl_<dataset>.py
RELEASE = {"gtea": (11, 2, 64), "50salads": (19, 8, 128), "breakfast": (48, 8, 128), "egtea": (20, 8, 128)}


@pytest.mark.parametrize("dataset", sorted(RELEASE))
def test_preset_values_are_the_release(dataset: str) -> None:
    classes, sr, clip = RELEASE[dataset]
    exp = experiment_dict(dataset, split=1)
    model = exp["model"]
    assert (model["num_classes"], model["sample_rate"], model["clip_len"]) == (classes, sr, clip)
    assert model["head"] == {
        "num_f_maps": 128,
        "encoder_layers": 8,
        "decoder_layers": 8,
        "num_decoders": 3,
        "num_heads": 1,
        "state_len": 512,
        "dropout": 0.5,
        "channel_masking_rate": 0.2,
    }
    assert model["loss"]["objective"] == "reward_weighted" and model["loss"]["smooth_weight"] == 0.15
    assert (model["loss"]["beta1"], model["loss"]["beta2"]) == (4.0, -1.0)
    assert model["backbone_lr_scale"] == 0.02
    train = exp["train"]
    assert train["epochs"] == 80 and train["batch_size"] == 1
    assert train["optimizer"] == {"name": "adamw", "lr": 5e-4, "weight_decay": 1e-4, "betas": [0.9, 0.999]}
    assert train["scheduler"] == {"name": "cosine", "eta_min": 1e-5}
    assert train["best_metric"] == "F1@50"
    clips = exp["data"]["train"]
    assert (clips["name"], clips["clip_len"], clips["sample_rate"], clips["clips_per_item"]) == (
        "stream-clips",
        clip,
        sr,
        1,
    )
    assert clips["source"]["split"] == "train.split1.bundle" and exp["data"]["val"]["split"] == "test.split1.bundle"
    assert exp["data"]["val"]["sample_rate"] == 1  # the model samples frames itself


def test_splits_and_bad_names() -> None:
    assert DATASETS["gtea"].splits == (1, 2, 3, 4) and DATASETS["50salads"].splits == (1, 2, 3, 4, 5)
    assert experiment_dict("breakfast", 3)["data"]["train"]["source"]["split"] == "train.split3.bundle"
    with pytest.raises(ValueError, match="splits"):
        experiment_dict("gtea", 5)
    with pytest.raises(ValueError, match="unknown dataset"):
        build_model("thumos")


def test_build_model_as_the_issue_calls_it() -> None:
    model = build_model("gtea", input_dim=2048, num_classes=11)
    assert model.clip_spec.clip_len == 64 and model.clip_spec.sample_rate == 2 and model.num_classes == 11
    assert len(model.head.encoder.layers) == 8 and len(model.head.decoders) == 3
    assert model.head.encoder.layers[0].att_layer.block.state_len == 512
    stream = StreamingSegmenter(model.eval())
    out = stream.push(torch.randn(2048, 130))
    assert out.start == 0 and out.labels.shape == (128,) and out.labels.dtype == torch.int64
    assert out.probs.shape == (128, 11)
    rest = stream.flush()
    assert rest.start == 128 and rest.labels.shape == (2,)


def test_plugin_registers_everything() -> None:
    registry = get_registry()
    report = {p.name: p for p in registry.plugins}["stream-rl"]
    assert report.status == "ok", report.error
    assert registry.names("models").count("svtas-rl") == 1
    assert {"stream-features", "stream-conv3d"} <= set(registry.names("backbones"))
    assert {"stream-clips", "synthetic-from-labels", "synthetic-rgb-segmentation"} <= set(registry.names("datasets"))
    assert {"stream-rl/gtea", "stream-rl/50salads", "stream-rl/breakfast", "stream-rl/egtea"} <= set(
        registry.names("presets")
    )
    assert "stream" in registry.names("commands") and "svtas-rl" in registry.names("inferencers")


@pytest.mark.parametrize("split", [1, 4])
def test_presets_load_through_core(split: int) -> None:
    cfg = load_experiment("stream-rl/gtea", get_registry(), split=split)
    assert cfg.model.name == "svtas-rl" and cfg.model.clip_len == 64
    assert cfg.data.train.source["split"] == f"train.split{split}.bundle"
    assert cfg.train.optimizer.lr == 5e-4


class TestFeatureBackbone(BackboneConformance):
    name = "stream-features"
    overrides = {"input_dim": 8}

    def test_gradients_reach_every_parameter(self) -> None:
        """It has none: features pass through, zeroed where padded."""
        backbone = self.build()
        x, mask = self._inputs()
        assert list(backbone.parameters()) == []
        assert torch.equal(backbone(x, mask), x * mask)


class TestConv3dBackbone(BackboneConformance):
    name = "stream-conv3d"
    overrides = {"widths": [4, 8], "temporal_stride": 2}
    seq_len = 12

    def _inputs(self):  # frames (B, 3, T, H, W) instead of features
        x = torch.randn(2, 3, 12, 8, 8)
        mask = torch.ones(2, 1, 12, dtype=torch.bool)
        mask[1, :, 6:] = False  # the suite perturbs the second half
        return x * mask[..., None, None], mask


class TestSyntheticRGB(DatasetConformance):
    name = "synthetic-rgb-segmentation"
    overrides = {"num_videos": 3, "height": 8, "width": 8, "min_length": 20, "max_length": 30}


class TestModel(ModelConformance):
    name = "svtas-rl"
    overrides = {
        "num_classes": 6,
        "clip_len": 8,
        "sample_rate": 2,
        "backbone": {"name": "stream-features", "input_dim": 16},
        "head": {"num_f_maps": 8, "encoder_layers": 2, "decoder_layers": 1, "num_decoders": 1, "state_len": 4},
    }

    def batch(self) -> dict:
        from tal.core.datasets import SyntheticSegmentation, SyntheticSegmentationConfig

        data = SyntheticSegmentation(SyntheticSegmentationConfig(num_videos=2, num_classes=6, input_dim=16))
        return data.collate([data[0], data[1]])
