"""State-dict compatibility with the official release and loading of its checkpoints."""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from release_configs import RELEASE_CONFIGS, THUMOS_I3D

from tal.loc_actionformer import ActionFormer, load_official_checkpoint, load_official_config, official_state_dict

# shared/ sits beside the repository root
REFERENCE = Path(__file__).resolve().parents[4] / "shared" / "reference" / "actionformer"
if not REFERENCE.is_dir():
    REFERENCE = Path("/work/shared/reference/actionformer")


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


@pytest.mark.parametrize("name", sorted(RELEASE_CONFIGS))
def test_state_dict_matches_release_listing(name: str) -> None:
    assert (REFERENCE / f"state_dict_{name}.txt").is_file(), "every listing must have a config here"
    model = ActionFormer(load_official_config(RELEASE_CONFIGS[name]))
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    expected = read_listing(name)
    assert ours == expected  # same keys, same order, same shapes
    totals = listing_totals(name)
    assert len(ours) == totals["n_tensors"]
    assert sum(v.numel() for v in model.state_dict().values()) == totals["total_numel"]
    del model
    gc.collect()


def test_every_listing_has_a_config() -> None:
    names = {p.name[len("state_dict_") : -len(".txt")] for p in REFERENCE.glob("state_dict_*.txt")}
    assert names == set(RELEASE_CONFIGS)


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
    source = ActionFormer(load_official_config(THUMOS_I3D))
    ckpt = _fake_release_checkpoint(source)
    target = ActionFormer(load_official_config(THUMOS_I3D))

    assert load_official_checkpoint(target, ckpt) == "state_dict_ema"
    for k, v in target.state_dict().items():
        torch.testing.assert_close(v, source.state_dict()[k] + 1.0, rtol=0, atol=0)

    assert load_official_checkpoint(target, ckpt, prefer_ema=False) == "state_dict"
    for k, v in target.state_dict().items():
        torch.testing.assert_close(v, source.state_dict()[k], rtol=0, atol=0)

    extra = dict(ckpt, state_dict_ema={**ckpt["state_dict_ema"], "module.bogus": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="bogus"):
        load_official_checkpoint(target, extra)
    missing = dict(ckpt, state_dict_ema={k: v for k, v in ckpt["state_dict_ema"].items() if "reg_head" not in k})
    with pytest.raises(RuntimeError, match="reg_head"):
        load_official_checkpoint(target, missing)


def test_release_checkpoint_file_loads_with_weights_only(tmp_path: Path) -> None:
    source, target = ActionFormer(tiny_config()), ActionFormer(tiny_config())
    path = tmp_path / "epoch_035.pth.tar"
    torch.save(_fake_release_checkpoint(source), path)
    assert load_official_checkpoint(target, path) == "state_dict_ema"
    for k, v in target.state_dict().items():
        torch.testing.assert_close(v, source.state_dict()[k] + 1.0)


def test_official_state_dict_variants() -> None:
    w = torch.zeros(2)
    assert official_state_dict({"state_dict": {"module.a": w}}) == ({"a": w}, "state_dict")
    assert official_state_dict({"module.a": w, "b": w})[1] == "<bare state dict>"
    with pytest.raises(KeyError):
        official_state_dict({"epoch": 3})
