"""``tal config validate FILE`` and ``tal config show NAME``."""

from __future__ import annotations

import argparse

import yaml
from pydantic import BaseModel, ValidationError

from tal.core.cli.base import Command
from tal.core.config import load_experiment, resolved_model
from tal.core.errors import ConfigError
from tal.core.registry import KINDS, Registry

CONFIG_KINDS = ("models", "backbones", "refiners", "datasets", "metrics")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = sub.add_parser("validate", help="check an experiment YAML file (or preset) against the registry")
    v.add_argument("file", help="experiment YAML file or preset name")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    s = sub.add_parser("show", help="print the default config of a registered component or a preset")
    s.add_argument("name", help="component or preset name")
    s.add_argument("--kind", choices=[k for k in KINDS if k in CONFIG_KINDS] + ["presets"])


def default_config(registry: Registry, name: str, kind: str | None = None) -> dict[str, object]:
    """The default config of component ``name`` (searching every kind unless ``kind`` is given)."""
    kinds = [kind] if kind else [*CONFIG_KINDS, "presets"]
    hits = [k for k in kinds if name in registry.names(k)]
    if not hits:
        known = {k: registry.names(k) for k in kinds if registry.names(k)}
        raise ConfigError(f"no component or preset named {name!r}; registered: {known}")
    if len(hits) > 1:
        raise ConfigError(f"{name!r} names a component of several kinds ({', '.join(hits)}); pass --kind")
    comp = registry.get(hits[0], name)
    if hits[0] == "presets":
        return dict(comp.factory.load())
    assert comp.config is not None
    return defaults_of(resolved_model(comp.config, registry))


def defaults_of(cls: type[BaseModel]) -> dict[str, object]:
    """Field defaults of a config class; required fields show as ``<required: TYPE>``."""
    try:
        return cls().model_dump(mode="json")
    except ValidationError:
        out: dict[str, object] = {}
        for fname, finfo in cls.model_fields.items():
            if finfo.is_required():
                out[fname] = f"<required: {getattr(finfo.annotation, '__name__', finfo.annotation)}>"
            else:
                value = finfo.get_default(call_default_factory=True)
                out[fname] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        return out


def _run(args: argparse.Namespace, registry: Registry) -> int:
    if args.action == "validate":
        cfg = load_experiment(args.file, registry, args.overrides)
        print(f"{args.file}: valid (model {cfg.model.name}", end="")
        for split in ("train", "val", "test"):
            ds = getattr(cfg.data, split)
            if ds is not None:
                print(f", {split} {ds.name}", end="")
        print(")")
        return 0
    print(yaml.safe_dump(default_config(registry, args.name, args.kind), sort_keys=False), end="")
    return 0


CONFIG = Command(help="validate experiment configs and show component defaults", add_arguments=_add_arguments, run=_run)


def register(registry: Registry) -> None:
    registry.add_command("config", CONFIG)
