"""Pydantic configs: one model per component, an experiment config assembled from the registry.

Every registered component has a config class derived from :class:`ComponentConfig` whose ``name``
is a ``Literal`` defaulting to the registered name. A config field may refer to *any* registered
component of a kind with :func:`component_field`; :func:`experiment_model` turns those references
into discriminated unions over what the registry holds at run time, so validation errors carry the
full path (``model.backbone.n_layers``).
"""

from __future__ import annotations

import difflib
import reprlib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from tal.core.errors import ConfigError

if typing.TYPE_CHECKING:
    from tal.core.registry import Registry


class ComponentConfig(BaseModel):
    """Base of every component config; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    name: str


class ComponentRef:
    """Marker in ``Annotated[ComponentConfig, ComponentRef("backbones")]`` (see :func:`component_field`)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"ComponentRef({self.kind!r})"


def component_field(kind: str) -> Any:
    """Type of a field that holds the config of any registered component of ``kind``.

    Example::

        class MyModelConfig(ComponentConfig):
            name: Literal["my-model"] = "my-model"
            backbone: component_field("backbones") = Field(default_factory=lambda: TCNConfig())
    """
    return Annotated[ComponentConfig, ComponentRef(kind)]


# ---------------------------------------------------------------------------------------------
# Training settings shared by every method (read by tal.core.engine.Trainer)
# ---------------------------------------------------------------------------------------------
class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class OptimizerConfig(StrictModel):
    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0)
    nesterov: bool = Field(False, description="Nesterov momentum (SGD)")
    betas: tuple[float, float] = (0.9, 0.999)


class SchedulerConfig(StrictModel):
    """Learning-rate schedule, stepped once per optimizer step (see :class:`tal.core.engine.optim.LrFactor`)."""

    name: Literal["cosine", "multistep", "constant"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0)
    milestones: list[int] = Field(default_factory=list, description="epochs at which multistep multiplies by gamma")
    gamma: float = Field(0.1, gt=0)
    eta_min: float = Field(0.0, ge=0, description="the cosine's final learning rate (absolute)")
    eta_min_absolute: bool = Field(
        False, description="every parameter group ends at eta_min (else groups with their own lr scale it)"
    )
    warmup_inclusive: bool = Field(
        False,
        description="the warmup ramp reaches the base lr at its last step (lr*t/(W-1)) instead of after it (lr*t/W)",
    )
    milestones_after_warmup: bool = Field(False, description="multistep milestones count from the end of warmup")
    warmup_per_epoch: bool = Field(
        False, description="the warmup rises once per epoch, lr*(e+1)/warmup_epochs (CTR-GCN), not every step"
    )


class EmaConfig(StrictModel):
    enabled: bool = False
    decay: float = Field(0.999, gt=0, lt=1)


class TrainConfig(StrictModel):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(2, ge=1)
    eval_batch_size: int = Field(1, ge=1)
    drop_last: bool = Field(False, description="drop the last incomplete training batch of each epoch")
    num_workers: int = Field(0, ge=0)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    clip_grad_norm: float | None = Field(None, gt=0)
    amp: bool = False
    ema: EmaConfig = Field(default_factory=EmaConfig)
    seed: int = 0
    eval_every: int = Field(1, ge=1)
    checkpoint_every: int = Field(1, ge=1)
    best_metric: str | None = None
    best_mode: Literal["auto", "max", "min"] = "auto"
    device: str = "auto"
    output_dir: str = "runs/experiment"
    tensorboard: bool = False
    progress: bool = True


class DataConfig(StrictModel):
    train: Annotated[ComponentConfig, ComponentRef("datasets")] | None = None
    val: Annotated[ComponentConfig, ComponentRef("datasets")] | None = None
    test: Annotated[ComponentConfig, ComponentRef("datasets")] | None = None


class ExperimentConfig(StrictModel):
    """``model``, ``data.{train,val,test}``, ``metric`` and ``train`` sections of a YAML file."""

    model: Annotated[ComponentConfig, ComponentRef("models")]
    data: DataConfig = Field(default_factory=DataConfig)
    metric: Annotated[ComponentConfig, ComponentRef("metrics")] | None = None
    train: TrainConfig = Field(default_factory=TrainConfig)


# ---------------------------------------------------------------------------------------------
# Materialising component references into discriminated unions
# ---------------------------------------------------------------------------------------------
def _ref_of(annotation: Any) -> ComponentRef | None:
    if typing.get_origin(annotation) is Annotated:
        for meta in typing.get_args(annotation)[1:]:
            if isinstance(meta, ComponentRef):
                return meta
    return None


def _union_for(kind: str, registry: Registry, cache: dict[type, type], depth: int) -> Any:
    classes = [c.config for c in registry.components(kind) if c.config is not None]
    if not classes:
        return _nothing_registered(kind)
    resolved = tuple(_materialize(c, registry, cache, depth + 1) for c in classes)
    if len(resolved) == 1:
        return resolved[0]
    return Annotated[Union[resolved], Field(discriminator="name")]


def _nothing_registered(kind: str) -> type[BaseModel]:
    """A config type that rejects any value: no component of ``kind`` is installed."""

    class NothingRegistered(BaseModel):
        @model_validator(mode="before")
        @classmethod
        def reject(cls, value: Any) -> Any:
            raise ValueError(f"no {kind} are registered (see `tal plugins`)")

    NothingRegistered.__name__ = f"No{kind.capitalize()}Registered"
    return NothingRegistered


def _resolve(annotation: Any, registry: Registry, cache: dict[type, type], depth: int) -> Any:
    ref = _ref_of(annotation)
    if ref is not None:
        return _union_for(ref.kind, registry, cache, depth)
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        old = typing.get_args(annotation)
        args = tuple(_resolve(a, registry, cache, depth) for a in old)
        if all(a is b for a, b in zip(args, old, strict=True)):
            return annotation  # nothing to materialize: keep the class as it is
        return Union[args]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _materialize(annotation, registry, cache, depth + 1)
    return annotation


def _materialize(cls: type[BaseModel], registry: Registry, cache: dict[type, type], depth: int = 0) -> type:
    if cls in cache:
        return cache[cls]
    if depth > 8:
        raise ConfigError(f"component references nest too deeply at {cls.__name__}")
    hints = typing.get_type_hints(cls, include_extras=True)
    overrides: dict[str, Any] = {}
    for fname, finfo in cls.model_fields.items():
        ann = hints.get(fname, finfo.annotation)
        new = _resolve(ann, registry, cache, depth)
        if new is not ann:
            keep: dict[str, Any] = {"description": finfo.description}
            if finfo.default_factory is not None:
                keep["default_factory"] = finfo.default_factory
            elif not finfo.is_required():
                keep["default"] = finfo.default
            overrides[fname] = (new, Field(**keep))
    if not overrides:
        cache[cls] = cls
        return cls
    new_cls = create_model(cls.__name__, __base__=cls, __module__=cls.__module__, **overrides)
    cache[cls] = new_cls
    return new_cls


def resolved_model(cls: type[BaseModel], registry: Registry) -> type[BaseModel]:
    """``cls`` with every :func:`component_field` replaced by a union of the registered configs."""
    return _materialize(cls, registry, {})


def experiment_model(registry: Registry) -> type[BaseModel]:
    """The experiment-config model built from the registry at run time."""
    return resolved_model(ExperimentConfig, registry)


# ---------------------------------------------------------------------------------------------
# Loading and error messages
# ---------------------------------------------------------------------------------------------
def _walk_path(data: Any, loc: tuple[Any, ...]) -> list[str]:
    """Drop discriminator tags pydantic inserts into ``loc`` so paths read ``model.backbone.n_layers``."""
    parts: list[str] = []
    cur = data
    for item in loc:
        if isinstance(cur, Mapping) and item not in cur and cur.get("name") == item:
            continue  # a union tag
        if isinstance(item, str) and item.endswith("]") and "[" in item and isinstance(cur, Mapping):
            continue  # pydantic's function-wrapper tags
        parts.append(str(item))
        if isinstance(cur, Mapping):
            cur = cur.get(item)
        elif isinstance(cur, (list, tuple)) and isinstance(item, int) and item < len(cur):
            cur = cur[item]
        else:
            cur = None
    return parts


def _fields_at(model: type[BaseModel], data: Any, path: list[str]) -> list[str] | None:
    """Allowed field names of the model that holds ``path[-1]`` (best effort)."""
    cls: Any = model
    cur = data
    for part in path[:-1]:
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            return None
        ann = cls.model_fields[part].annotation
        cur = cur.get(part) if isinstance(cur, Mapping) else None
        cls = _pick_model(ann, cur)
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return sorted(cls.model_fields)
    return None


def _pick_model(annotation: Any, value: Any) -> Any:
    candidates: list[Any] = []

    def collect(a: Any) -> None:
        origin = typing.get_origin(a)
        if origin is Annotated:
            collect(typing.get_args(a)[0])
        elif origin is Union or type(a).__name__ == "UnionType":
            for x in typing.get_args(a):
                collect(x)
        elif isinstance(a, type) and issubclass(a, BaseModel):
            candidates.append(a)

    collect(annotation)
    name = value.get("name") if isinstance(value, Mapping) else None
    for c in candidates:
        if "name" in c.model_fields and c.model_fields["name"].default == name:
            return c
    return candidates[0] if len(candidates) == 1 else None


#: at most this many characters of a bad value, and this many problems, in an error message
MAX_VALUE_CHARS = 120
MAX_PROBLEMS = 20


def short_repr(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters (a YAML anchor bomb has a repr of many megabytes)."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = limit
    short.maxlist = short.maxdict = 6
    short.maxlevel = 3
    text = short.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_validation_error(err: ValidationError, data: Any, model: type[BaseModel], source: str = "") -> str:
    """One line per problem: ``path: message (got value); allowed: ...`` (values and the count of
    problems are capped so that an error never floods the terminal)."""
    lines = []
    errors = err.errors()
    for e in errors[:MAX_PROBLEMS]:
        path = _walk_path(data, tuple(e["loc"]))
        where = ".".join(path) or "<root>"
        msg = e["msg"]
        extra = ""
        ctx = e.get("ctx") or {}
        if e["type"] == "union_tag_invalid":
            msg = f"unknown name {ctx.get('tag')!r}; allowed names: {ctx.get('expected_tags')}"
        elif e["type"] == "union_tag_not_found":
            extra = "; add a `name` field"
        elif e["type"] == "extra_forbidden":
            allowed = _fields_at(model, data, path)
            if allowed:
                close = difflib.get_close_matches(path[-1], allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                extra = f"; allowed fields: {', '.join(allowed)}{hint}"
        got = (
            ""
            if e["type"] in ("missing", "union_tag_not_found", "union_tag_invalid")
            else f" (got {short_repr(e.get('input'))})"
        )
        lines.append(f"  {where}: {msg[: 2 * MAX_VALUE_CHARS]}{got}{extra}")
    if len(errors) > MAX_PROBLEMS:
        lines.append(f"  ... and {len(errors) - MAX_PROBLEMS} more problems")
    head = f"invalid config{' ' + source if source else ''}:"
    return "\n".join([head, *lines])


def validate(cls: type[BaseModel], data: Mapping[str, Any], source: str = "") -> BaseModel:
    """Validate ``data`` against ``cls``; raise :class:`ConfigError` with readable paths."""
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, data, cls, source)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; errors name the file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {str(exc)[: 4 * MAX_VALUE_CHARS]}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping, got {type(data).__name__}")
    return data


def translate_foreign(
    data: dict[str, Any], registry: Registry, path: Path | None = None, label: str = "<dict>"
) -> tuple[dict[str, Any], str]:
    """``data`` translated by the one registered config format that recognises it (else unchanged).

    Returns the raw experiment dict and a label for error messages (``FILE (<format> config)``).
    """
    hits = [c for c in registry.components("config_formats") if c.factory.detect(data)]
    if not hits:
        return data, label
    if len(hits) > 1:
        names = ", ".join(f"{c.name} (plugin {c.owner})" for c in hits)
        raise ConfigError(f"{label}: more than one config format claims this file: {names}")
    fmt = hits[0]
    try:
        translated = fmt.factory.translate(data, path)
    except ConfigError as exc:
        raise ConfigError(f"{label} ({fmt.name} config): {exc}") from None
    return translated, f"{label} (translated from the {fmt.name} layout)"


def load_experiment(
    source: str | Path | Mapping[str, Any],
    registry: Registry,
    overrides: list[str] | None = None,
    split: int | None = None,
) -> Any:
    """Load an experiment config from a YAML file, a registered preset name, or a dict.

    A file or dict in a registered foreign layout (``registry.add_config_format``, e.g. ActionFormer's
    release YAMLs) is translated first. ``overrides`` are ``dotted.path=value`` strings (values parsed
    as YAML), applied to the tal experiment dict before validation. ``split`` selects a split of a
    preset that has splits (default: its first).
    """
    reg = registry
    path: Path | None = None
    if split is not None and (isinstance(source, Mapping) or str(source) not in reg.names("presets")):
        raise ConfigError(
            f"{source if not isinstance(source, Mapping) else '<dict>'}: --split applies to presets "
            "with splits; in a YAML file set the dataset's split field instead"
        )
    if isinstance(source, Mapping):
        data, label = dict(source), "<dict>"
    elif Path(source).suffix in (".yaml", ".yml") or Path(source).is_file():
        path = Path(source)
        data, label = read_yaml(path), str(source)
    elif str(source) in reg.names("presets"):
        preset = reg.get("presets", str(source)).factory
        try:
            data = preset.load(split)
        except ConfigError as exc:
            raise ConfigError(f"preset {source}: {exc}") from None
        label = f"preset {source}"
        if preset.splits:
            label += f" (split {split if split is not None else preset.splits[0]})"
    else:
        known = ", ".join(reg.names("presets")) or "none"
        raise ConfigError(f"{source}: neither a YAML file nor a registered preset (presets: {known})")
    data, label = translate_foreign(data, reg, path, label)
    for item in overrides or []:
        apply_override(data, item)
    cfg = validate(experiment_model(reg), data, label)
    check_agreement(cfg, label)
    return cfg


def _channels(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
        return sum(value)  # several feature streams, concatenated
    return None


def check_agreement(cfg: Any, label: str = "<config>") -> None:
    """Fields the model and its datasets must agree on (``input_dim``: feature channels).

    Caught here, ``tal config validate`` reports the disagreement and ``tal train`` stops before it
    creates a run folder.
    """
    model_dim = _channels(getattr(cfg.model, "input_dim", None))
    if model_dim is None:
        return
    for section in ("train", "val", "test"):
        ds = getattr(cfg.data, section, None)
        data_dim = _channels(getattr(ds, "input_dim", None)) if ds is not None else None
        if data_dim is not None and data_dim != model_dim:
            raise ConfigError(
                f"invalid config {label}:\n  data.{section}.input_dim is {data_dim} but model.input_dim is "
                f"{model_dim}: the model would get {data_dim}-channel features; make them equal"
            )


#: the validated experiment config a run folder holds beside its checkpoints
RUN_CONFIG = "config.yaml"


def write_run_config(out_dir: str | Path, cfg: BaseModel) -> Path:
    """Write the validated experiment config as ``out_dir/config.yaml``, atomically: what ``tal eval``
    and ``tal infer`` read beside a run's checkpoints."""
    from tal.core.formats.atomic import atomic_write_text

    path = Path(out_dir) / RUN_CONFIG
    atomic_write_text(path, yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return path


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set ``a.b.c=value`` in a nested dict in place (value parsed with ``yaml.safe_load``)."""
    if "=" not in item:
        raise ConfigError(f"override {short_repr(item)} must look like path.to.field=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {short_repr(item)}: empty field name in {key!r}")
    cur = data
    for p in parts[:-1]:
        nxt = cur.get(p)
        if nxt is None:
            nxt = cur[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {item!r}: {p!r} is not a mapping")
        cur = nxt
    try:
        cur[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"override {short_repr(item)}: the value is not valid YAML ({problem})") from None
