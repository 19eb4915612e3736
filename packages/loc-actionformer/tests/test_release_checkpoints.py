"""The release's checkpoints: our state dicts equal its key listings, and its checkpoint layout loads strictly."""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import pytest
import torch
from conftest import SHARED, tiny_config

from tal.core.engine.checkpoint import load_model_weights
from tal.core.errors import DataFormatError
from tal.core.registry import get_registry
from tal.loc_actionformer import ActionFormer, is_release_checkpoint, model_config_from_release, release_weights
from tal.loc_actionformer.release.presets import release_config_names, release_config_path

REFERENCE = SHARED / "reference" / "actionformer"
needs_listings = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"the release's state-dict listings are not here ({REFERENCE})"
)


def read_listing(name: str) -> list[tuple[str, tuple[int, ...]]]:
    """``key<TAB>shape`` lines of ``state_dict_<name>.txt`` (comment lines start with '#')."""
    out = []
    for line in (REFERENCE / f"state_dict_{name}.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape = line.split("\t")
        out.append((key, tuple(ast.literal_eval(shape))))
    return out


def listing_totals(name: str) -> dict[str, int]:
    totals = {}
    for line in (REFERENCE / f"state_dict_{name}.txt").read_text().splitlines():
        if line.startswith("# total_numel") or line.startswith("# n_tensors"):
            key, value = line[2:].split()
            totals[key] = int(value)
    return totals


@needs_listings
@pytest.mark.parametrize("name", release_config_names())
def test_state_dict_matches_release_listing(name: str) -> None:
    assert (REFERENCE / f"state_dict_{name}.txt").is_file(), "every shipped config must have a listing"
    model = ActionFormer(model_config_from_release(release_config_path(name)))
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    expected = read_listing(name)
    assert ours == expected  # same keys, same order, same shapes
    totals = listing_totals(name)
    assert len(ours) == totals["n_tensors"]
    assert sum(v.numel() for v in model.state_dict().values()) == totals["total_numel"]
    del model
    gc.collect()


@needs_listings
def test_every_listing_has_a_config() -> None:
    names = {p.name[len("state_dict_") : -len(".txt")] for p in REFERENCE.glob("state_dict_*.txt")}
    assert names == set(release_config_names())


def _fake_release_checkpoint(model: torch.nn.Module) -> dict:
    sd = model.state_dict()
    return {
        "epoch": 35,
        "state_dict": {f"module.{k}": v.clone() for k, v in sd.items()},
        "scheduler": {"last_epoch": 1000, "base_lrs": [1e-4]},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
        "state_dict_ema": {f"module.{k}": v.clone() + 1.0 for k, v in sd.items()},
    }


def test_release_checkpoint_prefers_ema_and_loads_strict(tmp_path: Path) -> None:
    source = ActionFormer(tiny_config())
    ckpt = _fake_release_checkpoint(source)
    target = ActionFormer(tiny_config())
    registry = get_registry()
    path = tmp_path / "epoch_035.pth.tar"
    torch.save(ckpt, path)

    assert load_model_weights(target, path, registry) == "state_dict_ema"
    for k, v in target.state_dict().items():
        torch.testing.assert_close(v, source.state_dict()[k] + 1.0, rtol=0, atol=0)

    assert load_model_weights(target, path, registry, prefer_ema=False) == "state_dict"
    for k, v in target.state_dict().items():
        torch.testing.assert_close(v, source.state_dict()[k], rtol=0, atol=0)

    torch.save(dict(ckpt, state_dict_ema={**ckpt["state_dict_ema"], "module.bogus": torch.zeros(1)}), path)
    with pytest.raises(DataFormatError, match="bogus"):
        load_model_weights(target, path, registry)
    missing = {k: v for k, v in ckpt["state_dict_ema"].items() if "reg_head" not in k}
    torch.save(dict(ckpt, state_dict_ema=missing), path)
    with pytest.raises(DataFormatError, match="reg_head"):
        load_model_weights(target, path, registry)


def test_the_release_layout_claims_actionformer_checkpoints_only() -> None:
    ckpt = _fake_release_checkpoint(ActionFormer(tiny_config()))
    assert is_release_checkpoint(ckpt)
    assert is_release_checkpoint({"state_dict_ema": ckpt["state_dict_ema"]})  # e.g. model_best without the rest
    assert is_release_checkpoint({"state_dict": {k.removeprefix("module."): v for k, v in ckpt["state_dict"].items()}})
    # other methods' checkpoints that also keep their weights under state_dict, and tal's own layout
    assert not is_release_checkpoint({"state_dict": {"backbone.conv.weight": torch.zeros(1)}, "meta": {}})
    assert not is_release_checkpoint({"model": {"reg_head.offset_head.conv.weight": torch.zeros(1)}})


def test_release_weights_variants() -> None:
    w = torch.zeros(2)
    only = release_weights({"state_dict": {"module.a": w}}, prefer_ema=True)
    assert (only.state_dict, only.source, only.strict) == ({"a": w}, "state_dict", True)
    both = {"state_dict": {"module.a": w}, "state_dict_ema": {"module.a": w + 1}}
    assert release_weights(both, prefer_ema=False).source == "state_dict"
    assert release_weights(both, prefer_ema=True).source == "state_dict_ema"
