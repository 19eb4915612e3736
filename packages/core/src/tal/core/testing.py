"""Reusable conformance tests for plugin authors.

Subclass the suite of your component's kind in your own test module; pytest collects the inherited
tests::

    from tal.core.testing import BackboneConformance

    class TestMyTCN(BackboneConformance):
        name = "my-tcn"                  # registered name
        overrides = {"input_dim": 16}    # config fields to set (besides ``name``)

Every suite checks that the component is registered by a healthy plugin, that its config has a
``name`` literal, round-trips through YAML and rejects unknown fields with the field path; the
kind-specific suites check the runtime protocol and the shape contract.
"""

from __future__ import annotations

import typing
from typing import Any, ClassVar

import torch
import yaml
from pydantic import BaseModel

from tal.core import protocols
from tal.core.config import resolved_model, validate
from tal.core.errors import ConfigError
from tal.core.registry import Registry, get_registry


class ComponentConformance:
    """Checks shared by every component kind."""

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    overrides: ClassVar[dict[str, Any]] = {}

    def get_registry(self) -> Registry:
        """The registry to test against (the installed plugins by default)."""
        return get_registry()

    def make_config(self) -> Any:
        comp = self.get_registry().get(self.kind, self.name)
        assert comp.config is not None, f"{self.kind[:-1]} {self.name!r} has no config class"
        cls = resolved_model(comp.config, self.get_registry())
        return validate(cls, {"name": self.name, **self.overrides}, f"{self.kind[:-1]} {self.name}")

    def build(self) -> Any:
        return self.get_registry().build(self.kind, self.make_config())

    def test_registered_by_healthy_plugin(self) -> None:
        registry = self.get_registry()
        comp = registry.get(self.kind, self.name)
        owners = [p for p in registry.plugins if p.name == comp.owner]
        assert owners and owners[0].status == "ok", f"plugin {comp.owner!r} is not healthy: {owners}"

    def test_config_name_is_literal(self) -> None:
        comp = self.get_registry().get(self.kind, self.name)
        assert comp.config is not None and issubclass(comp.config, BaseModel)
        ann = comp.config.model_fields["name"].annotation
        assert typing.get_origin(ann) is typing.Literal and typing.get_args(ann) == (self.name,), (
            f"{comp.config.__name__}.name must be Literal[{self.name!r}], is {ann}"
        )

    def test_config_yaml_round_trip(self) -> None:
        cfg = self.make_config()
        text = yaml.safe_dump(cfg.model_dump(mode="json"))
        again = validate(type(cfg), yaml.safe_load(text))
        assert again == cfg

    def test_unknown_field_is_rejected_with_its_path(self) -> None:
        cfg = self.make_config()
        data = {**cfg.model_dump(mode="json"), "surely_not_a_field": 1}
        try:
            validate(type(cfg), data)
        except ConfigError as exc:
            assert "surely_not_a_field" in str(exc)
        else:
            raise AssertionError("an unknown config field was accepted")


class BackboneConformance(ComponentConformance):
    """Backbone: ``(B, C_in, T)`` + mask ``(B, 1, T)`` → ``(B, out_channels, T')`` or a list of levels."""

    kind = "backbones"
    input_dim: ClassVar[int | None] = None  # default: the config's ``input_dim`` field
    seq_len: ClassVar[int] = 64

    def _inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.make_config()
        c_in = self.input_dim or getattr(cfg, "input_dim", None)
        assert c_in, "set `input_dim` on the test class or give the config an `input_dim` field"
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, c_in, self.seq_len, generator=gen)
        mask = torch.ones(2, 1, self.seq_len, dtype=torch.bool)
        mask[1, :, self.seq_len // 2 :] = False
        return x, mask

    @staticmethod
    def _levels(out: Any) -> list[torch.Tensor]:
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], (list, tuple)):
            out = out[0]  # (features, masks) pairs
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def test_protocol(self) -> None:
        backbone = self.build()
        assert isinstance(backbone, torch.nn.Module)
        assert isinstance(backbone, protocols.Backbone), "a backbone needs `out_channels` and __call__(x, mask)"

    def test_shape_contract(self) -> None:
        backbone = self.build().eval()
        x, mask = self._inputs()
        with torch.no_grad():
            levels = self._levels(backbone(x, mask))
        assert levels, "the backbone returned nothing"
        for feat in levels:
            assert feat.dim() == 3 and feat.shape[0] == 2, f"expected (B, C, T'), got {tuple(feat.shape)}"
            assert feat.shape[1] == backbone.out_channels
            assert self.seq_len % feat.shape[2] == 0, f"T'={feat.shape[2]} does not divide T={self.seq_len}"
            assert torch.isfinite(feat).all()

    def test_padding_does_not_leak(self) -> None:
        """In eval mode, what lies in the padded part never changes the valid part."""
        backbone = self.build().eval()
        x, mask = self._inputs()
        x2 = x.clone()
        x2[1, :, self.seq_len // 2 :] = 1e3 * torch.randn_like(x2[1, :, self.seq_len // 2 :])
        with torch.no_grad():
            a, b = self._levels(backbone(x, mask)), self._levels(backbone(x2, mask))
        assert len(a) == len(b)
        for fa, fb in zip(a, b, strict=True):
            valid = fa.shape[2] // 2
            torch.testing.assert_close(fa[1, :, :valid], fb[1, :, :valid], rtol=1e-4, atol=1e-4)

    def test_gradients_reach_every_parameter(self) -> None:
        backbone = self.build().train()
        x, mask = self._inputs()
        loss = sum(f.float().pow(2).mean() for f in self._levels(backbone(x, mask)))
        loss.backward()  # type: ignore[union-attr]
        missing = [n for n, p in backbone.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, f"parameters without gradient: {missing}"


class DatasetConformance(ComponentConformance):
    """Dataset: non-empty, items collate into a batch with ``video_ids`` (and ``targets`` if annotated)."""

    kind = "datasets"

    def test_protocol(self) -> None:
        assert isinstance(self.build(), protocols.Dataset)

    def test_items_collate(self) -> None:
        ds = self.build()
        assert len(ds) > 0
        n = min(2, len(ds))
        batch = ds.collate([ds[i] for i in range(n)])
        assert isinstance(batch, dict)
        assert len(batch["video_ids"]) == n
        assert len(set(batch["video_ids"])) == n, "video ids must be unique"
        if "targets" in batch:
            assert len(batch["targets"]) == n


class MetricConformance(ComponentConformance):
    """Metric: update/compute, and merging two halves equals one metric fed everything."""

    kind = "metrics"

    def samples(self) -> tuple[list[Any], list[Any], list[str]]:
        """``(predictions, targets, video_ids)`` with at least 2 videos; override in your test class."""
        raise AssertionError("override samples() to return (predictions, targets, video_ids)")

    def test_protocol(self) -> None:
        assert isinstance(self.build(), protocols.Metric)

    def test_merge_equals_single_pass(self) -> None:
        preds, targets, ids = self.samples()
        assert len(ids) >= 2
        whole = self.build()
        whole.update(preds, targets, ids)
        half = len(ids) // 2
        a, b = self.build(), self.build()
        a.update(preds[:half], targets[:half], ids[:half])
        b.update(preds[half:], targets[half:], ids[half:])
        a.merge(b)
        assert a.compute() == whole.compute()

    def test_reset_forgets(self) -> None:
        preds, targets, ids = self.samples()
        m = self.build()
        m.update(preds, targets, ids)
        first = m.compute()
        m.reset()
        m.update(preds, targets, ids)
        assert m.compute() == first


class ModelConformance(ComponentConformance):
    """Model: training forward gives a finite ``loss`` with gradients; eval gives one prediction per video."""

    kind = "models"

    def batch(self) -> dict[str, Any]:
        """A small batch for this model; override in your test class."""
        raise AssertionError("override batch() to return a batch for the model")

    def test_protocol(self) -> None:
        assert isinstance(self.build(), protocols.Model)

    def test_training_step(self) -> None:
        model = self.build().train()
        losses = model(self.batch())
        assert "loss" in losses and torch.isfinite(losses["loss"])
        losses["loss"].backward()
        assert any(p.grad is not None for p in model.parameters())

    def test_eval_predictions(self) -> None:
        model = self.build().eval()
        batch = self.batch()
        with torch.no_grad():
            preds = model(batch)
        assert len(preds) == len(batch["video_ids"])
