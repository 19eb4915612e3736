from __future__ import annotations

from typing import Literal

import pytest
from conftest import FakeEntryPoint, make_plugin

from tal.core import ComponentConfig
from tal.core.errors import PluginError
from tal.core.registry import load_registry


class TinyConfig(ComponentConfig):
    name: Literal["tiny"] = "tiny"
    width: int = 4


class OtherConfig(ComponentConfig):
    name: Literal["other"] = "other"


def _adds_tiny(registry):
    registry.add_backbone("tiny", lambda cfg: ("built", cfg.width), config=TinyConfig)


def test_plugin_registers_and_reports():
    ep = FakeEntryPoint("good", make_plugin("good", register_backbones=_adds_tiny), dist="tal-good", version="2.1")
    reg = load_registry([ep], strict=False, disabled=[])
    assert reg.names("backbones") == ["tiny"]
    assert reg.build("backbones", TinyConfig(width=7)) == ("built", 7)
    [report] = reg.plugins
    assert (report.status, report.distribution, report.version) == ("ok", "tal-good", "2.1")
    assert report.registered == {"backbones": ["tiny"]}
    assert reg.get("backbones", "tiny").owner == "good"


def test_import_failure_is_reported_and_others_still_work():
    bad = FakeEntryPoint("bad", ImportError("No module named 'missing_dep'"), dist="tal-bad")
    good = FakeEntryPoint("good", make_plugin("good", register_backbones=_adds_tiny))
    reg = load_registry([bad, good], strict=False, disabled=[])
    status = {p.name: p for p in reg.plugins}
    assert status["bad"].status == "error" and "missing_dep" in status["bad"].error
    assert status["good"].status == "ok"
    assert reg.names("backbones") == ["tiny"]


def test_hook_that_raises_is_rolled_back():
    def half_then_fail(registry):
        registry.add_backbone("other", lambda cfg: None, config=OtherConfig)
        raise RuntimeError("boom in hook")

    ep = FakeEntryPoint("flaky", make_plugin("flaky", register_backbones=half_then_fail))
    reg = load_registry([ep], strict=False, disabled=[])
    assert reg.plugins[0].status == "error"
    assert "boom in hook" in reg.plugins[0].error
    assert reg.names("backbones") == []  # nothing half-registered


def test_duplicate_names_error_names_both_owners():
    a = FakeEntryPoint("alpha", make_plugin("alpha", register_backbones=_adds_tiny))
    b = FakeEntryPoint("beta", make_plugin("beta", register_backbones=_adds_tiny))
    reg = load_registry([a, b], strict=False, disabled=[])
    status = {p.name: p for p in reg.plugins}
    assert status["alpha"].status == "ok"
    assert status["beta"].status == "error"
    assert "'alpha'" in status["beta"].error and "'beta'" in status["beta"].error
    with pytest.raises(PluginError, match=r"alpha.*beta"):
        load_registry([a, b], strict=True, disabled=[])


def test_strict_mode_raises_with_distribution(monkeypatch):
    bad = FakeEntryPoint("bad", ImportError("nope"), dist="tal-bad")
    with pytest.raises(PluginError, match=r"tal-bad.*nope"):
        load_registry([bad], strict=True, disabled=[])
    monkeypatch.setenv("TAL_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError):
        load_registry([bad], disabled=[])


def test_disabled_plugins_are_not_loaded(monkeypatch):
    good = FakeEntryPoint("good", make_plugin("good", register_backbones=_adds_tiny))
    never = FakeEntryPoint("never", RuntimeError("must not be imported"))
    monkeypatch.setenv("TAL_DISABLE_PLUGINS", "never, good")
    reg = load_registry([good, never], strict=True)
    assert [p.status for p in reg.plugins] == ["disabled", "disabled"]
    assert reg.names("backbones") == []


def test_unknown_hook_name_is_a_plugin_error():
    from tal.core import hookimpl

    module = make_plugin("typo")
    module.register_backbone = hookimpl(lambda registry: None)  # singular: not a hook
    module.register_backbone.__name__ = "register_backbone"
    reg = load_registry([FakeEntryPoint("typo", module)], strict=False, disabled=[])
    assert reg.plugins[0].status == "error"
    assert "register_backbone" in reg.plugins[0].error


def test_config_name_must_match_registered_name():
    def wrong(registry):
        registry.add_backbone("not-tiny", lambda cfg: None, config=TinyConfig)

    reg = load_registry([FakeEntryPoint("w", make_plugin("w", register_backbones=wrong))], strict=False, disabled=[])
    assert "must default to 'not-tiny'" in reg.plugins[0].error


def test_unknown_component_lists_known_names():
    reg = load_registry([FakeEntryPoint("good", make_plugin("good", register_backbones=_adds_tiny))], disabled=[])
    with pytest.raises(PluginError, match="no backbone named 'tcn'; registered backbones: tiny"):
        reg.get("backbones", "tcn")


def test_installed_core_plugin_is_healthy():
    reg = load_registry(disabled=[])
    core = [p for p in reg.plugins if p.name == "core"]
    assert core and core[0].status == "ok", core
    assert {"plugins", "config", "score", "train", "eval", "demo"} <= set(reg.names("commands"))


# -- the registry passed to what it builds --------------------------------------------------------
class ParentConfig(ComponentConfig):
    name: Literal["parent"] = "parent"
    child: TinyConfig = TinyConfig()


def test_a_factory_that_declares_registry_receives_the_building_registry():
    seen = {}

    def build_parent(config, registry):
        seen["registry"] = registry
        return ("parent", registry.build("backbones", config.child))

    def adds(registry):
        registry.add_backbone("tiny", lambda cfg: ("tiny", cfg.width), config=TinyConfig)
        registry.add_model("parent", build_parent, config=ParentConfig)

    reg = load_registry([FakeEntryPoint("p", make_plugin("p", register_models=adds))], strict=True, disabled=[])
    assert reg.build("models", ParentConfig(child=TinyConfig(width=3))) == ("parent", ("tiny", 3))
    assert seen["registry"] is reg  # not the process-wide one


def test_call_with_registry_passes_it_only_to_functions_that_take_it():
    from tal.core.registry import Registry, accepts_registry, call_with_registry

    reg = Registry()
    assert call_with_registry(lambda x, registry: (x, registry), reg, 1) == (1, reg)
    assert call_with_registry(lambda x: x, reg, 2) == 2
    assert accepts_registry(print) is False  # a builtin without a signature


def test_presets_with_splits():
    from tal.core.config import load_experiment
    from tal.core.errors import ConfigError

    calls = []

    def loader(split):
        calls.append(split)
        return {"model": {"name": "tiny-model", "width": split}}

    class TinyModelConfig(ComponentConfig):
        name: Literal["tiny-model"] = "tiny-model"
        width: int

    def adds(registry):
        registry.add_model("tiny-model", lambda c: c, config=TinyModelConfig)
        registry.add_preset("tiny/gtea", loader, "gtea", splits=(1, 2, 3, 4))
        registry.add_preset("tiny/plain", lambda: {"model": {"name": "tiny-model", "width": 9}})

    reg = load_registry([FakeEntryPoint("p", make_plugin("p", register_models=adds))], strict=True, disabled=[])
    assert load_experiment("tiny/gtea", reg, split=3).model.width == 3
    assert load_experiment("tiny/gtea", reg).model.width == 1  # the first split by default
    assert calls == [3, 1]
    assert reg.get("presets", "tiny/gtea").factory.splits == (1, 2, 3, 4)
    with pytest.raises(
        ConfigError, match=r"preset tiny/gtea: split 5 is not one of this preset's splits \[1, 2, 3, 4\]"
    ):
        load_experiment("tiny/gtea", reg, split=5)
    with pytest.raises(ConfigError, match="this preset has no splits"):
        load_experiment("tiny/plain", reg, split=1)
    assert load_experiment("tiny/plain", reg).model.width == 9
    with pytest.raises(ConfigError, match="--split applies to presets"):
        load_experiment({"model": {"name": "tiny-model", "width": 1}}, reg, split=1)


def test_checkpoint_formats_plugin_layouts_first_core_layouts_as_fallback(tmp_path):
    import torch
    from torch import nn

    from tal.core.engine.checkpoint import find_weights, load_model_weights, save_checkpoint
    from tal.core.errors import DataFormatError
    from tal.core.registry import ModelWeights

    def adds(registry):
        registry.add_checkpoint_format(
            "release",
            lambda ckpt: "net" in ckpt,
            lambda ckpt, ema: ModelWeights(dict(ckpt["net"]), "net", strict=False),
        )

    from tal.core import builtin

    core = FakeEntryPoint("core", builtin)
    reg = load_registry([core, FakeEntryPoint("p", make_plugin("p", register_checkpoint_formats=adds))], strict=True,
                        disabled=[])  # fmt: skip
    assert reg.names("checkpoint_formats") == ["release", "state-dict", "tal"]
    w = {"weight": torch.full((1, 2), 3.0), "bias": torch.zeros(1)}
    # a plugin layout wins over core's bare-state-dict fallback, which would also match a dict of tensors
    weights, layout = find_weights({"net": w}, reg)
    assert layout == "release" and weights.source == "net" and weights.strict is False
    assert find_weights(w, reg)[1] == "state-dict"
    assert find_weights({"model": w}, reg)[1] == "tal"
    # non-strict release layout: a partial state dict loads, the rest keeps its values (and is logged)
    save_checkpoint({"net": {"weight": w["weight"]}}, tmp_path / "r.pt")
    model = nn.Linear(2, 1)
    assert load_model_weights(model, tmp_path / "r.pt", reg) == "net"
    assert torch.equal(model.weight, w["weight"])

    def also_claims(registry):
        registry.add_checkpoint_format("greedy", lambda ckpt: True, lambda ckpt, ema: ModelWeights({}, "x"))

    both = load_registry(
        [
            FakeEntryPoint("p", make_plugin("p", register_checkpoint_formats=adds)),
            FakeEntryPoint("q", make_plugin("q", register_checkpoint_formats=also_claims)),
        ],
        strict=True,
        disabled=[],
    )
    with pytest.raises(
        DataFormatError,
        match=r"more than one checkpoint layout claims this file: greedy \(plugin q\), release \(plugin p\)",
    ):
        find_weights({"net": w}, both)


def test_inferencers_are_a_kind_with_owners():
    class Runner:
        help = "run it"

        def run(self, args, model, experiment, registry):
            return 0

    def adds(registry):
        registry.add_inferencer("tiny", Runner())

    reg = load_registry([FakeEntryPoint("p", make_plugin("p", register_inferencers=adds))], strict=True, disabled=[])
    comp = reg.get("inferencers", "tiny")
    assert comp.owner == "p" and comp.description == "run it"
