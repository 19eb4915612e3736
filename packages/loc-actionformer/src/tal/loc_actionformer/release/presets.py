"""Named experiment presets ``loc-actionformer/<release config>``: the release's configs as they are.

Each preset is the translation (:func:`~tal.loc_actionformer.release.translate.experiment_from_release`)
of one of the release's config files shipped in ``configs/`` (package data), so a preset cannot drift
from the file it comes from. Data paths follow the release layout (``./data/thumos/...``); point them
elsewhere with e.g. ``--set data.train.feature_dir=/data/thumos/i3d_features``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tal.loc_actionformer.release.translate import experiment_from_release

PREFIX = "loc-actionformer/"
#: the release's configs/*.yaml, as package data
CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DESCRIPTIONS = {
    "thumos_i3d": "THUMOS14, I3D features (stride 4, 16 frames), 20 classes",
    "anet_tsp": "ActivityNet 1.3, TSP features resized to 192 steps + external class scores",
    "anet_i3d": "ActivityNet 1.3, I3D features resized to 192 steps + external class scores",
    "epic_slowfast_verb": "EPIC-Kitchens-100 verbs, SlowFast features, 97 classes",
    "epic_slowfast_noun": "EPIC-Kitchens-100 nouns, SlowFast features, 300 classes",
    "ego4d_omnivore_egovlp": "Ego4D moment queries, Omnivore + EgoVLP features, 110 classes",
}


def release_config_names() -> list[str]:
    """Names of the release's config files shipped with the package (without ``.yaml``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def release_config_path(name: str) -> Path:
    """The shipped release config ``name`` (e.g. ``"thumos_i3d"``)."""
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(f"no release config {name!r}; shipped: {', '.join(release_config_names())}")
    return path


def preset(name: str) -> dict[str, Any]:
    """The raw experiment dict of preset ``name`` (without the ``loc-actionformer/`` prefix)."""
    return experiment_from_release(release_config_path(name), label=name)


def preset_loaders() -> dict[str, tuple[Callable[[], dict[str, Any]], str]]:
    """``{"loc-actionformer/<name>": (loader, description)}`` for the registry."""

    def loader_for(name: str) -> Callable[[], dict[str, Any]]:
        return lambda: preset(name)

    return {PREFIX + name: (loader_for(name), DESCRIPTIONS.get(name, name)) for name in release_config_names()}
