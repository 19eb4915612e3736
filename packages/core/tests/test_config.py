from __future__ import annotations

from typing import Literal

import pytest
from conftest import FakeEntryPoint, make_plugin
from pydantic import Field

from tal.core import ComponentConfig, component_field
from tal.core.config import apply_override, load_experiment
from tal.core.errors import ConfigError
from tal.core.registry import load_registry


class TCNConfig(ComponentConfig):
    name: Literal["tcn"] = "tcn"
    n_layers: int = Field(4, ge=1)


class GRUConfig(ComponentConfig):
    name: Literal["gru"] = "gru"
    hidden: int = 8


class SegModelConfig(ComponentConfig):
    name: Literal["seg-model"] = "seg-model"
    num_classes: int = 3
    backbone: component_field("backbones") = Field(default_factory=TCNConfig)  # type: ignore[valid-type]


class ToyDataConfig(ComponentConfig):
    name: Literal["toy"] = "toy"
    root: str


def _plugin(registry):
    registry.add_backbone("tcn", object, config=TCNConfig)
    registry.add_backbone("gru", object, config=GRUConfig)
    registry.add_model("seg-model", object, config=SegModelConfig)
    registry.add_dataset("toy", object, config=ToyDataConfig)
    registry.add_preset("seg-model/small", lambda: {"model": {"name": "seg-model", "num_classes": 2}})


@pytest.fixture
def registry():
    hooks = {
        "register_backbones": lambda registry: None,
        "register_models": _plugin,
    }
    return load_registry([FakeEntryPoint("t", make_plugin("t", **hooks))], strict=True, disabled=[])


def test_nested_component_selected_by_name(registry):
    cfg = load_experiment({"model": {"name": "seg-model", "backbone": {"name": "gru", "hidden": 5}}}, registry)
    assert type(cfg.model.backbone).__name__ == "GRUConfig"
    assert cfg.model.backbone.hidden == 5
    default = load_experiment({"model": {"name": "seg-model"}}, registry)
    assert default.model.backbone.name == "tcn" and default.model.backbone.n_layers == 4


def test_bad_nested_value_names_full_path(registry):
    with pytest.raises(ConfigError) as err:
        load_experiment({"model": {"name": "seg-model", "backbone": {"name": "tcn", "n_layers": 0}}}, registry)
    msg = str(err.value)
    assert "model.backbone.n_layers" in msg and "(got 0)" in msg


def test_unknown_component_name_lists_allowed(registry):
    with pytest.raises(ConfigError) as err:
        load_experiment({"model": {"name": "seg-model", "backbone": {"name": "lstm"}}}, registry)
    msg = str(err.value)
    assert "model.backbone" in msg and "'gru'" in msg and "'tcn'" in msg and "'lstm'" in msg


def test_unknown_field_suggests_close_match(registry):
    with pytest.raises(ConfigError) as err:
        load_experiment({"model": {"name": "seg-model", "backbone": {"name": "tcn", "n_layer": 2}}}, registry)
    msg = str(err.value)
    assert "model.backbone.n_layer" in msg and "did you mean 'n_layers'" in msg


def test_missing_required_field_and_train_section(registry):
    with pytest.raises(ConfigError) as err:
        load_experiment(
            {"model": {"name": "seg-model"}, "data": {"train": {"name": "toy"}}, "train": {"epochs": 0}}, registry
        )
    msg = str(err.value)
    assert "data.train.root: Field required" in msg
    assert "train.epochs" in msg


def test_yaml_file_preset_and_overrides(registry, tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("model:\n  name: seg-model\n  backbone: {name: tcn, n_layers: 2}\ntrain:\n  epochs: 3\n")
    cfg = load_experiment(f, registry, overrides=["model.backbone.n_layers=6", "train.optimizer.lr=0.5"])
    assert cfg.model.backbone.n_layers == 6 and cfg.train.epochs == 3 and cfg.train.optimizer.lr == 0.5
    preset = load_experiment("seg-model/small", registry)
    assert preset.model.num_classes == 2
    with pytest.raises(ConfigError, match="presets: seg-model/small"):
        load_experiment("seg-model/large", registry)


def test_yaml_is_read_with_safe_load(registry, tmp_path):
    f = tmp_path / "evil.yaml"
    f.write_text("model: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment(f, registry)


def test_apply_override_rejects_malformed():
    with pytest.raises(ConfigError):
        apply_override({}, "no_equals_sign")
    data = {"a": 1}
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_override(data, "a.b=2")


def _foreign(detect_key: str, classes_key: str):
    def detect(data):
        return detect_key in data

    def translate(data, path):
        if data[classes_key] < 1:
            raise ConfigError(f"{classes_key}: must be >= 1, got {data[classes_key]}")
        return {"model": {"name": "seg-model", "num_classes": data[classes_key]}, "train": {"epochs": 2}}

    return detect, translate


def test_registered_config_format_translates_files_and_dicts(tmp_path):
    def hook(registry):
        _plugin(registry)
        registry.add_config_format("old-layout", *_foreign("n_cls", "n_cls"), "an older tool's YAML")

    reg = load_registry([FakeEntryPoint("t", make_plugin("t", register_models=hook))], strict=True, disabled=[])
    f = tmp_path / "old.yaml"
    f.write_text("n_cls: 7\n")
    cfg = load_experiment(f, reg, overrides=["train.epochs=5"])  # overrides address the translated config
    assert cfg.model.num_classes == 7 and cfg.train.epochs == 5
    assert load_experiment({"n_cls": 4}, reg).model.num_classes == 4
    native = load_experiment({"model": {"name": "seg-model", "num_classes": 9}}, reg)
    assert native.model.num_classes == 9  # a tal config is left alone
    f.write_text("n_cls: 0\n")
    with pytest.raises(ConfigError, match=r"old.yaml \(old-layout config\): n_cls: must be >= 1, got 0"):
        load_experiment(f, reg)
    f.write_text("n_cls: 2\nmodel: {name: seg-model, num_classes: x}\n")
    with pytest.raises(ConfigError, match=r"translated from the old-layout layout"):
        load_experiment(f, reg, overrides=["model.num_classes=x"])


def test_two_formats_claiming_one_file_is_an_error_naming_both():
    def hook_a(registry):
        _plugin(registry)
        registry.add_config_format("layout-a", *_foreign("n", "n"))

    def hook_b(registry):
        registry.add_config_format("layout-b", *_foreign("n", "n"))

    reg = load_registry(
        [
            FakeEntryPoint("a", make_plugin("a", register_models=hook_a)),
            FakeEntryPoint("b", make_plugin("b", register_config_formats=hook_b)),
        ],
        strict=True,
        disabled=[],
    )
    assert reg.names("config_formats") == ["layout-a", "layout-b"]
    with pytest.raises(ConfigError, match=r"layout-a \(plugin a\), layout-b \(plugin b\)"):
        load_experiment({"n": 1}, reg)


class OptionalFieldConfig(ComponentConfig):
    name: Literal["optional-field"] = "optional-field"
    threshold: float | None = None
    labels: list[int] | None = None


def test_a_config_without_component_references_is_not_rebuilt() -> None:
    """Resolving keeps classes whose Optional fields reference no component, so a nested default and a
    validated dict have the same class (a re-created class broke YAML round trips of such configs)."""
    from tal.core.config import resolved_model
    from tal.core.registry import Registry

    assert resolved_model(OptionalFieldConfig, Registry()) is OptionalFieldConfig
