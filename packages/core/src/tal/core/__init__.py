"""tal-core: contracts, plugin registry, configs, data formats, metrics, engine and CLI of tal."""

from tal.core.config import ComponentConfig, component_field
from tal.core.errors import ConfigError, DataFormatError, PluginError, TalError
from tal.core.hookspecs import hookimpl
from tal.core.registry import Registry, get_registry
from tal.core.types import Segments, VideoRecord

__version__ = "0.1.0"

__all__ = [
    "ComponentConfig",
    "ConfigError",
    "DataFormatError",
    "PluginError",
    "Registry",
    "Segments",
    "TalError",
    "VideoRecord",
    "component_field",
    "get_registry",
    "hookimpl",
]
