"""The plugin registry: the one piece of global state in tal.

Plugins are modules listed in the ``tal`` entry-point group. Each is imported and its hooks are
called on its own, inside ``try``/``except``: a plugin that fails to import, fails pluggy's
validation, raises in a hook or registers a name that another plugin owns is reported (see
``tal plugins``) and its registrations are rolled back, while every other plugin keeps working.

Environment:
    ``TAL_DISABLE_PLUGINS=a,b``: skip these entry points (by entry-point name).
    ``TAL_STRICT_PLUGINS=1``: raise :class:`~tal.core.errors.PluginError` on the first failure.
"""

from __future__ import annotations

import functools
import inspect
import os
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from tal.core import hookspecs
from tal.core.errors import ConfigError, DuplicateComponentError, PluginError

ENTRY_POINT_GROUP = "tal"
CORE_PLUGIN = "core"
KINDS = (
    "models",
    "backbones",
    "refiners",
    "datasets",
    "metrics",
    "commands",
    "demos",
    "presets",
    "config_formats",
    "checkpoint_formats",
    "inferencers",
)
HOOKS = tuple(f"register_{kind}" for kind in KINDS)


@dataclass(frozen=True)
class Component:
    """One registered thing.

    ``factory(config)`` builds it from its validated pydantic ``config`` (for commands, demos and
    presets ``factory`` is the command spec, demo function or preset loader itself).
    """

    kind: str
    name: str
    factory: Any
    config: type | None
    owner: str
    description: str = ""


@dataclass(frozen=True)
class ConfigFormat:
    """A foreign config layout (see :meth:`Registry.add_config_format`)."""

    detect: Callable[[Mapping[str, Any]], bool]
    translate: Callable[[Mapping[str, Any], Path | None], dict[str, Any]]


@dataclass
class ModelWeights:
    """The model weights found in a checkpoint by a :class:`CheckpointFormat`.

    ``source`` says which entry they came from (``"ema"``, ``"model"``, ``"state_dict_ema"``...);
    ``strict`` is the ``load_state_dict`` strictness the layout's own code uses.
    """

    state_dict: dict[str, Any]
    source: str
    strict: bool = True


@dataclass(frozen=True)
class CheckpointFormat:
    """A checkpoint layout (see :meth:`Registry.add_checkpoint_format`)."""

    detect: Callable[[Mapping[str, Any]], bool]
    extract: Callable[[Mapping[str, Any], bool], ModelWeights]
    fallback: bool = False


@dataclass(frozen=True)
class Preset:
    """A named experiment config; with ``splits`` the loader takes ``split=K``."""

    loader: Callable[..., dict[str, Any]]
    splits: tuple[int, ...] | None = None

    def load(self, split: int | None = None) -> dict[str, Any]:
        """The raw experiment dict (``split`` defaults to the first split of a preset that has splits)."""
        if self.splits is None:
            if split is not None:
                raise ConfigError(f"this preset has no splits (got --split {split})")
            return self.loader()
        chosen = self.splits[0] if split is None else split
        if chosen not in self.splits:
            raise ConfigError(f"split {chosen} is not one of this preset's splits {list(self.splits)}")
        return self.loader(split=chosen)


@dataclass
class PluginReport:
    """What ``tal plugins`` shows for one entry point."""

    name: str
    distribution: str | None
    version: str | None
    status: str  # "ok", "error" or "disabled"
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "plugin": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "registered": self.registered,
            "error": self.error,
        }


class Registry:
    """Named components of every kind, each owned by the plugin that registered it."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
        self.plugins: list[PluginReport] = []
        self._owner = "<direct>"

    # -- adding -------------------------------------------------------------------------------
    def add(self, kind: str, name: str, factory: Any, config: type | None = None, description: str = "") -> None:
        """Register ``name`` under ``kind``. Raises :class:`DuplicateComponentError` if taken."""
        if kind not in self._items:
            raise PluginError(f"unknown component kind {kind!r}; kinds are {', '.join(KINDS)}")
        if not isinstance(name, str) or not name:
            raise PluginError(f"{self._owner}: a {kind[:-1]} name must be a non-empty string, got {name!r}")
        existing = self._items[kind].get(name)
        if existing is not None:
            raise DuplicateComponentError(
                f"{kind[:-1]} {name!r} is registered by both plugin {existing.owner!r} and plugin {self._owner!r}"
            )
        if config is not None:
            _check_config_name(kind, name, config)
        doc = description or _first_doc_line(factory)
        self._items[kind][name] = Component(kind, name, factory, config, self._owner, doc)

    def add_model(self, name: str, factory: Callable[..., Any], config: type, description: str = "") -> None:
        self.add("models", name, factory, config, description)

    def add_backbone(self, name: str, factory: Callable[..., Any], config: type, description: str = "") -> None:
        self.add("backbones", name, factory, config, description)

    def add_refiner(self, name: str, factory: Callable[..., Any], config: type, description: str = "") -> None:
        self.add("refiners", name, factory, config, description)

    def add_dataset(self, name: str, factory: Callable[..., Any], config: type, description: str = "") -> None:
        self.add("datasets", name, factory, config, description)

    def add_metric(self, name: str, factory: Callable[..., Any], config: type, description: str = "") -> None:
        self.add("metrics", name, factory, config, description)

    def add_command(self, name: str, command: Any, description: str = "") -> None:
        """``command`` has ``add_arguments(parser)`` and ``run(args) -> int`` (see :mod:`tal.core.cli`)."""
        self.add("commands", name, command, None, description or getattr(command, "help", ""))

    def add_demo(self, name: str, demo: Callable[..., Any], description: str = "") -> None:
        """``demo(out_dir: Path, quick: bool) -> dict`` of headline numbers."""
        self.add("demos", name, demo, None, description)

    def add_preset(
        self,
        name: str,
        loader: Callable[..., dict[str, Any]],
        description: str = "",
        splits: Iterable[int] | None = None,
    ) -> None:
        """``loader()`` returns a raw experiment-config dict (as if read from YAML).

        With ``splits`` (e.g. ``(1, 2, 3, 4)`` for a dataset's cross-validation splits) the loader is
        called as ``loader(split=K)``; ``tal train PRESET --split K`` and ``tal eval PRESET --split all``
        use it.
        """
        chosen = tuple(int(k) for k in splits) if splits is not None else None
        if chosen is not None and not chosen:
            raise PluginError(f"{self._owner}: preset {name!r} declares an empty list of splits")
        self.add("presets", name, Preset(loader, chosen), None, description or _first_doc_line(loader))

    def add_config_format(
        self,
        name: str,
        detect: Callable[[Mapping[str, Any]], bool],
        translate: Callable[[Mapping[str, Any], Path | None], dict[str, Any]],
        description: str = "",
    ) -> None:
        """A foreign config layout that ``load_experiment`` (``tal train``/``eval``/``config validate``) accepts.

        ``detect(data)`` says whether a parsed YAML mapping is in this layout; ``translate(data, path)``
        returns the raw tal experiment dict (``path`` is the file it came from, or ``None``).
        """
        self.add("config_formats", name, ConfigFormat(detect, translate), None, description)

    def add_checkpoint_format(
        self,
        name: str,
        detect: Callable[[Mapping[str, Any]], bool],
        extract: Callable[[Mapping[str, Any], bool], ModelWeights],
        description: str = "",
        fallback: bool = False,
    ) -> None:
        """A checkpoint layout that :func:`tal.core.engine.checkpoint.load_model_weights` reads.

        ``detect(ckpt)`` says whether a loaded checkpoint (what ``torch.load(weights_only=True)``
        returned) is in this layout; ``extract(ckpt, prefer_ema)`` returns its :class:`ModelWeights`.
        ``fallback`` layouts (core's generic ones) are tried only when no other layout claims a file.
        """
        self.add("checkpoint_formats", name, CheckpointFormat(detect, extract, fallback), None, description)

    def add_inferencer(self, model_name: str, inferencer: Any, description: str = "") -> None:
        """How ``tal infer`` runs models named ``model_name``.

        ``inferencer.add_arguments(parser)`` adds the flags only it uses; ``inferencer.run(args, model,
        experiment, registry) -> int`` runs the built model (weights loaded, eval mode) on ``args.feat``.
        """
        self.add("inferencers", model_name, inferencer, None, description or getattr(inferencer, "help", ""))

    # -- reading ------------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> Component:
        try:
            return self._items[kind][name]
        except KeyError:
            known = ", ".join(sorted(self._items.get(kind, {}))) or "none"
            raise PluginError(f"no {kind[:-1]} named {name!r}; registered {kind}: {known}") from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._items[kind])

    def components(self, kind: str) -> list[Component]:
        return [self._items[kind][n] for n in self.names(kind)]

    def __iter__(self) -> Iterator[Component]:
        for kind in KINDS:
            yield from self.components(kind)

    def build(self, kind: str, config: Any) -> Any:
        """Build a component from its validated config (the config's ``name`` selects it).

        A factory that builds sub-components declares a ``registry`` parameter and is called as
        ``factory(config, registry=self)``; other factories as ``factory(config)``.
        """
        comp = self.get(kind, config.name)
        return call_with_registry(comp.factory, self, config)

    # -- plugin loading -----------------------------------------------------------------------
    def _snapshot(self) -> dict[str, dict[str, Component]]:
        return {kind: dict(items) for kind, items in self._items.items()}

    def load_plugin(self, name: str, module: ModuleType | Any, pm: pluggy.PluginManager) -> dict[str, list[str]]:
        """Register ``module``'s hooks and call them; on any error roll back and re-raise."""
        before = self._snapshot()
        self._owner = name
        try:
            pm.register(module, name=name)
            pm.check_pending()
            for hook in HOOKS:
                for impl in getattr(pm.hook, hook).get_hookimpls():
                    if impl.plugin_name == name:
                        impl.function(registry=self)
        except BaseException:
            self._items = before
            if pm.is_registered(module):
                pm.unregister(module)
            raise
        finally:
            self._owner = "<direct>"
        return {
            kind: sorted(set(self._items[kind]) - set(before[kind]))
            for kind in KINDS
            if set(self._items[kind]) - set(before[kind])
        }


def _first_doc_line(obj: Any) -> str:
    return (getattr(obj, "__doc__", None) or "").strip().split("\n")[0]


@functools.lru_cache(maxsize=512)
def accepts_registry(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` declares a parameter named ``registry``."""
    try:
        return "registry" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # builtins without a signature
        return False


def call_with_registry(fn: Callable[..., Any], registry: Registry, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, registry=registry, **kwargs)`` if ``fn`` takes a ``registry`` parameter, else without it.

    The rule for everything a plugin hands the registry to call back: component factories, command
    ``run`` functions, demos.
    """
    if accepts_registry(fn):
        return fn(*args, registry=registry, **kwargs)
    return fn(*args, **kwargs)


def _check_config_name(kind: str, name: str, config: type) -> None:
    fields = getattr(config, "model_fields", None)
    if fields is None or "name" not in fields:
        raise PluginError(
            f"{kind[:-1]} {name!r}: config {config.__name__} must be a pydantic model with a `name` field"
        )
    default = fields["name"].default
    if default != name:
        raise PluginError(
            f"{kind[:-1]} {name!r}: config {config.__name__}.name must default to {name!r} (it is {default!r})"
        )


def _env_list(var: str) -> set[str]:
    return {p.strip() for p in os.environ.get(var, "").split(",") if p.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    # Core first (its names take precedence), then the rest in a stable order.
    unique = {(ep.name, ep.value): ep for ep in eps}
    return sorted(unique.values(), key=lambda ep: (ep.name != CORE_PLUGIN, ep.name))


def _format_error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def load_registry(
    entry_points: Iterable[Any] | None = None,
    *,
    strict: bool | None = None,
    disabled: Iterable[str] | None = None,
) -> Registry:
    """Build a fresh registry from the ``tal`` entry points (or the given ones, for tests).

    Each item of ``entry_points`` needs ``name``, ``load()`` and optionally ``dist``.
    """
    strict = os.environ.get("TAL_STRICT_PLUGINS", "") not in ("", "0") if strict is None else strict
    disabled_set = _env_list("TAL_DISABLE_PLUGINS") if disabled is None else set(disabled)
    eps = _entry_points() if entry_points is None else list(entry_points)
    registry = Registry()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for ep in eps:
        dist = getattr(ep, "dist", None)
        report = PluginReport(
            name=ep.name,
            distribution=getattr(dist, "name", None) if dist else None,
            version=getattr(dist, "version", None) if dist else None,
            status="ok",
        )
        registry.plugins.append(report)
        if ep.name in disabled_set:
            report.status = "disabled"
            continue
        try:
            module = ep.load()
            report.registered = registry.load_plugin(ep.name, module, pm)
        except Exception as exc:  # a broken plugin must never break the others
            report.status = "error"
            report.error = _format_error(exc)
            if strict:
                raise PluginError(
                    f"plugin {ep.name!r} ({report.distribution or 'unknown distribution'}): {report.error}"
                ) from exc
    return registry


_REGISTRY: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry, loaded on first use (``refresh=True`` reloads it).

    Only the CLI entry and top-level convenience functions call this; library functions take the
    registry as an argument.
    """
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = load_registry()
    return _REGISTRY


def build(kind: str, config: Any) -> Any:
    """Build a component of ``kind`` from its validated config using the process-wide registry."""
    return get_registry().build(kind, config)
