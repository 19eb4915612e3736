"""Named experiment presets ``loc-actionformer/<release config>``: the release's published settings.

Each preset is the translation (:func:`~tal.loc_actionformer.official.experiment_from_official`) of
a release config file (:mod:`tal.loc_actionformer.release_configs`). Data paths follow the release
layout (``./data/thumos/...``); point them elsewhere with e.g.
``--set data.train.feature_dir=/data/thumos/i3d_features``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tal.loc_actionformer.official import experiment_from_official
from tal.loc_actionformer.release_configs import RELEASE_CONFIGS

PREFIX = "loc-actionformer/"
DESCRIPTIONS = {
    "thumos_i3d": "THUMOS14, I3D features (stride 4, 16 frames), 20 classes",
    "anet_tsp": "ActivityNet 1.3, TSP features, class-agnostic + external class scores",
    "anet_i3d": "ActivityNet 1.3, I3D features resized to 192 steps + external class scores",
    "epic_slowfast_verb": "EPIC-Kitchens-100 verbs, SlowFast features, 97 classes",
    "epic_slowfast_noun": "EPIC-Kitchens-100 nouns, SlowFast features, 300 classes",
    "ego4d_omnivore_egovlp": "Ego4D moment queries, Omnivore + EgoVLP features, 110 classes",
}


def preset(name: str) -> dict[str, Any]:
    """The raw experiment dict of preset ``name`` (without the ``loc-actionformer/`` prefix)."""
    if name not in RELEASE_CONFIGS:
        raise KeyError(f"no ActionFormer preset {name!r}; presets: {', '.join(RELEASE_CONFIGS)}")
    return experiment_from_official(RELEASE_CONFIGS[name], label=name)


def preset_loaders() -> dict[str, tuple[Callable[[], dict[str, Any]], str]]:
    """``{"loc-actionformer/<name>": (loader, description)}`` for the registry."""

    def loader_for(name: str) -> Callable[[], dict[str, Any]]:
        return lambda: preset(name)

    return {PREFIX + name: (loader_for(name), DESCRIPTIONS.get(name, name)) for name in RELEASE_CONFIGS}
