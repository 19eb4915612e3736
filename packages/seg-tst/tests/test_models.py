"""The two models: batches, frozen backbone, sampling rate, padding, optimizer groups, any adapter."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from tal.core.errors import ConfigError
from tal.seg_tst import AdapterOutput, BackboneWithTST, DiffAct, DiffActAdapter, MSTCNAdapter, SegBackboneModel
from tal.seg_tst.config import DiffActConfig, MSTCNBackboneConfig, MSTCNPlusPlusBackboneConfig
from tal.seg_tst.modeling.mstcn import MSTCN, MSTCNPlusPlus
from tal.seg_tst.modeling.tst import TSTRefiner

K, C = 4, 6


def mstcn_adapter() -> MSTCNAdapter:
    return MSTCNAdapter(
        MSTCN(MSTCNBackboneConfig(num_classes=K, input_dim=C, num_stages=2, num_layers=3, num_f_maps=8))
    )


def tiny_refiner(feat_dim: int = 8) -> TSTRefiner:
    return TSTRefiner(n_classes=K, feat_dim=feat_dim, inner_dim=8, sd_dim=16, n_layers=3)


def batch(lengths: list[int], sample_rate: int = 1) -> dict[str, Any]:
    t_max = max(lengths)
    x = torch.zeros(len(lengths), C, t_max)
    mask = torch.zeros(len(lengths), 1, t_max, dtype=torch.bool)
    labels = torch.full((len(lengths), t_max), -100)
    targets = []
    for i, n in enumerate(lengths):
        lab = (torch.arange(n) // 7) % K
        x[i, :, :n] = torch.randn(C, n) + lab.float()
        mask[i, :, :n] = True
        labels[i, :n] = lab
        targets.append(lab)
    return {
        "features": x,
        "mask": mask,
        "labels": labels,
        "targets": targets,
        "video_ids": [f"v{i}" for i in range(len(lengths))],
        "sample_rate": sample_rate,
        "class_counts": torch.ones(K, dtype=torch.long),
    }


def test_stage2_trains_only_the_refiner_and_needs_a_trained_backbone() -> None:
    model = BackboneWithTST(mstcn_adapter(), tiny_refiner(), freeze_backbone=True).train()
    with pytest.raises(ConfigError, match="backbone_checkpoint"):
        model(batch([30]))
    model.backbone_ready = True
    losses = model(batch([30, 21]))
    assert set(losses) == {"loss", "cls_loss", "focal_loss", "dice_loss"}
    losses["loss"].backward()
    assert all(p.grad is None for p in model.adapter.parameters())
    assert model.refiner.class_head.weight.grad is not None


def test_unfrozen_backbone_adds_its_loss() -> None:
    model = BackboneWithTST(mstcn_adapter(), tiny_refiner(), freeze_backbone=False).train()
    losses = model(batch([25]))
    assert "backbone_loss" in losses
    losses["loss"].backward()
    assert model.adapter.backbone.stage1.conv_1x1.weight.grad is not None


def test_eval_predictions_at_full_rate_and_padding_free() -> None:
    model = BackboneWithTST(mstcn_adapter(), tiny_refiner(), postprocess=("median", 3)).eval()
    b = batch([30, 17], sample_rate=2)
    preds = model(b)
    assert [p["refined"].shape[0] for p in preds] == [30, 17]
    assert set(preds[0]) == {"refined", "backbone"}
    single = model({k: (v[1:2] if isinstance(v, torch.Tensor) and v.dim() > 1 else v) for k, v in b.items()})
    # the second video alone (its padding removed) gives the same labels
    b2 = batch([17], sample_rate=2)
    b2["features"] = b["features"][1:2, :, :17]
    assert torch.equal(model(b2)[0]["refined"], preds[1]["refined"])
    assert single[0]["refined"].shape[0] == 17


def test_release_style_forward() -> None:
    model = BackboneWithTST(mstcn_adapter(), tiny_refiner()).eval()
    out = model(torch.randn(1, C, 20))
    assert set(out) >= {"segment_cls", "segment_mask", "action_idx", "backbone_outputs", "frame_predictions"}
    n_seg = out["segment_cls"].shape[2]
    assert out["segment_mask"].shape == (2, 1, n_seg, 20)


def test_param_groups_follow_the_release() -> None:
    model = BackboneWithTST(mstcn_adapter(), tiny_refiner(), lr_transformer=5e-5)
    groups = model.param_groups(1e-4)
    attn = {id(p) for p in model.refiner.transformer_parameters()}
    assert groups[1]["lr"] == 5e-5 and {id(p) for p in groups[1]["params"]} == attn
    assert all(g["weight_decay"] == 1e-4 for g in groups)
    n_trainable = sum(1 for p in model.parameters() if p.requires_grad)
    assert sum(len(g["params"]) for g in groups) == n_trainable
    assert not any(id(p) in attn for p in groups[0]["params"])


def test_dimension_mismatch_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="feat_dim"):
        BackboneWithTST(mstcn_adapter(), tiny_refiner(feat_dim=9))
    with pytest.raises(TypeError, match="not a segmentation adapter"):
        BackboneWithTST(nn.Linear(2, 2), tiny_refiner())  # type: ignore[arg-type]


def tiny_diffact() -> DiffAct:
    return DiffAct(
        DiffActConfig.model_validate(
            {
                "num_classes": K,
                "input_dim": C,
                "encoder_params": {"num_layers": 3, "num_f_maps": 8, "feature_layer_indices": [1, 2]},
                "decoder_params": {"num_layers": 2, "num_f_maps": 6, "time_emb_dim": 16, "kernel_size": 3},
                "diffusion_params": {"sampling_timesteps": 3},
                "soft_label": None,
            }
        )
    )


def test_stage1_diffact_with_temporal_sampling() -> None:
    model = SegBackboneModel(DiffActAdapter(tiny_diffact()), ("median", 3)).train()
    losses = model(batch([33, 20], sample_rate=4))
    assert "decoder_boundary_loss" in losses and torch.isfinite(losses["loss"])
    losses["loss"].backward()
    model.eval()
    preds = model(batch([33, 20], sample_rate=4))
    assert [p.shape[0] for p in preds] == [33, 20]
    assert torch.equal(preds[0], model(batch([33, 20], sample_rate=4))[0])  # eval seed: deterministic


def test_diffact_adapter_features_and_seeded_predictions() -> None:
    adapter = DiffActAdapter(tiny_diffact(), eval_seed=666).eval()
    mask = torch.ones(1, 1, 15, dtype=torch.bool)
    x = torch.randn(1, C, 15)
    out = adapter(x, mask)
    assert out.features.shape == (1, 16, 15) and out.probabilities
    torch.testing.assert_close(out.predictions, adapter.backbone.sample(x, seed=666))


def test_mstcn_plus_plus_keys_and_padding() -> None:
    m = MSTCNPlusPlus(MSTCNPlusPlusBackboneConfig(num_classes=K, input_dim=C, num_layers_pg=3, num_layers_r=2, num_r=2))
    keys = set(m.state_dict())
    assert {
        "PG.conv_1x1_in.weight",
        "PG.conv_dilated_1.0.weight",
        "PG.conv_fusion.2.bias",
        "Rs.1.layers.1.conv_1x1.weight",
    } <= keys
    x = torch.randn(2, C, 20)
    mask = torch.ones(2, 1, 20, dtype=torch.bool)
    mask[1, :, 12:] = False
    m.eval()
    x2 = x.clone()
    x2[1, :, 12:] = 100.0
    a, _ = m(x, mask)
    b, _ = m(x2, mask)
    torch.testing.assert_close(a[:, 1, :, :12], b[:, 1, :, :12])
    alone, _ = m(x[1:2, :, :12], torch.ones(1, 1, 12, dtype=torch.bool))
    torch.testing.assert_close(a[:, 1, :, :12], alone[:, 0], rtol=1e-5, atol=1e-5)


def test_mstcn_release_key_names() -> None:
    keys = set(MSTCN(MSTCNBackboneConfig(num_classes=K, input_dim=C, num_stages=3, num_layers=2)).state_dict())
    assert {"stage1.conv_1x1.weight", "stage1.layers.1.conv_dilated.weight", "stages.1.conv_out.bias"} <= keys


class ThirdPartyAdapter(nn.Module):
    """A backbone from outside the package: a 1x1 conv; its features are the input itself."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Conv1d(C, K, 1)
        self.feat_dim = C
        self.num_classes = K

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> AdapterOutput:
        return AdapterOutput(x, self.backbone(x), probabilities=False)

    def training_loss(self, x, mask, labels, boundary=None, class_counts=None):
        loss = nn.functional.cross_entropy(self.backbone(x), labels, ignore_index=-100)
        return {"loss": loss}


def test_any_adapter_works() -> None:
    model = BackboneWithTST(ThirdPartyAdapter(), tiny_refiner(feat_dim=C)).train()
    model.backbone_ready = True
    model(batch([20]))["loss"].backward()
    stage1 = SegBackboneModel(ThirdPartyAdapter(), eval_offsets="first").eval()
    assert stage1(batch([9]))[0].shape == (9,)
