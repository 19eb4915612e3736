"""State dicts equal the release's listings key for key (order, shape, totals), schedule buffers included;
a release-layout DiffAct+TST checkpoint loads with every key used."""

from __future__ import annotations

import pytest
import torch
from conftest import REFERENCE, read_listing

from tal.seg_tst import BackboneWithTST, DiffAct, DiffActAdapter, TSTRefiner
from tal.seg_tst.config import TST_PRESETS

DATASETS = {"gtea": 11, "50salads": 19, "breakfast": 48}


def _shapes(sd: dict[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in sd.items()]


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_diffact_state_dict_equals_listing(dataset: str) -> None:
    rows, totals = read_listing(f"diffact_{dataset}.txt")
    model = DiffAct.from_preset(dataset, DATASETS[dataset])
    sd = model.state_dict()
    assert _shapes(sd) == rows
    assert sum(v.numel() for v in sd.values()) == totals["total_params"]
    assert len(sd) == totals["n_tensors"]
    buffers = [k for k in sd if "." not in k]
    assert len(buffers) == 12 and all(sd[k].shape == (1000,) for k in buffers)


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_diffact_parameter_count_matches_release(dataset: str) -> None:
    _rows, _ = read_listing(f"diffact_{dataset}.txt")
    header = (REFERENCE / f"diffact_{dataset}.txt").read_text().splitlines()[2]
    expected = int(header.split("=")[1].strip())
    model = DiffAct.from_preset(dataset, DATASETS[dataset])
    assert sum(p.numel() for p in model.parameters()) == expected


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_tst_refiner_state_dict_equals_listing(dataset: str) -> None:
    rows, totals = read_listing(f"tst_refiner_diffact_{dataset}.txt")
    p = TST_PRESETS[dataset]
    refiner = TSTRefiner(n_classes=p["n_classes"], feat_dim=p["feat_dim"], inner_dim=p["inner_dim"])
    sd = refiner.state_dict()
    assert _shapes(sd) == rows
    assert sum(v.numel() for v in sd.values()) == totals["total_params"]
    assert len(sd) == totals["n_tensors"]


def test_release_only_tensors_are_buffers_not_trained() -> None:
    refiner = TSTRefiner(n_classes=11, feat_dim=192, inner_dim=64)
    params = {n for n, _ in refiner.named_parameters()}
    for key in ("pixel_decoder.conv_out.weight", "cross_attn.norm1.weight", "self_attn.self_attn.in_proj_weight"):
        assert key in refiner.state_dict() and key not in params


def _release_checkpoint(dataset: str) -> dict[str, torch.Tensor]:
    """A ``split_1_best.pth`` as the release writes it: ``torch.save(BackboneWithTST.state_dict())``, random
    tensors of the listed shapes under ``adapter.backbone.`` and ``refiner.``."""
    gen = torch.Generator().manual_seed(1)
    ckpt = {}
    for key, shape in read_listing(f"diffact_{dataset}.txt")[0]:
        ckpt["adapter.backbone." + key] = torch.randn(
            shape, generator=gen, dtype=torch.float64 if "." not in key else torch.float32
        )
    for key, shape in read_listing(f"tst_refiner_diffact_{dataset}.txt")[0]:
        ckpt["refiner." + key] = torch.randn(shape, generator=gen)
    return ckpt


@pytest.mark.parametrize("dataset", ["gtea", "breakfast"])
def test_release_checkpoint_loads_with_every_key_used(dataset: str) -> None:
    ckpt = _release_checkpoint(dataset)
    p = TST_PRESETS[dataset]
    model = BackboneWithTST(
        DiffActAdapter(DiffAct.from_preset(dataset, p["n_classes"])),
        TSTRefiner(n_classes=p["n_classes"], feat_dim=p["feat_dim"], inner_dim=p["inner_dim"]),
        freeze_backbone=True,
    )
    assert not model.backbone_ready
    result = model.load_state_dict(ckpt, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    sd = model.state_dict()
    assert set(sd) == set(ckpt)
    for key in (
        "refiner.self_attn.self_attn.in_proj_weight",
        "adapter.backbone.encoder.conv_in.weight",
        "refiner.class_head.bias",
    ):
        torch.testing.assert_close(sd[key], ckpt[key])
    torch.testing.assert_close(sd["adapter.backbone.betas"], ckpt["adapter.backbone.betas"])
    assert model.backbone_ready


def test_backbone_with_tst_keys_are_prefixed_release_keys() -> None:
    model = BackboneWithTST(DiffActAdapter(DiffAct.from_preset("gtea", 11)), TSTRefiner(11, 192, 64))
    keys = list(model.state_dict())
    diffact = [k for k, _ in read_listing("diffact_gtea.txt")[0]]
    tst = [k for k, _ in read_listing("tst_refiner_diffact_gtea.txt")[0]]
    assert keys == ["adapter.backbone." + k for k in diffact] + ["refiner." + k for k in tst]
