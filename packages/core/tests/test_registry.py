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
