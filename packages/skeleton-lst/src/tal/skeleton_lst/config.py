"""Pydantic configs of what the plugin registers (``model: {name: lst, ...}`` in an experiment YAML)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from tal.core.config import ComponentConfig
from tal.skeleton_lst.modeling.text import ClipTextConfig, WordLlamaConfig

__all__ = ["RELEASE_K", "CTRGCNConfig", "LSTConfig", "default_alpha", "default_class_set", "default_num_person"]

Dataset = Literal["ntu", "ucla"]
#: LST's ``k`` of the modality matrix ``I - A_out^k`` per (dataset, modality) in the release configs.
RELEASE_K: dict[tuple[str, str], int] = {
    ("ntu", "joint"): 8,
    ("ntu", "bone"): 1,
    ("ucla", "joint"): 6,
    ("ucla", "bone"): 1,
}


def default_num_person(dataset: str) -> int:
    """2 bodies for NTU RGB+D, 1 for NW-UCLA."""
    return 2 if dataset == "ntu" else 1


def default_class_set(dataset: str, num_class: int) -> str:
    """The class descriptions of a dataset: ``ntu60``, ``ntu120`` or ``ucla``."""
    if dataset == "ucla":
        return "ucla"
    return "ntu60" if num_class <= 60 else "ntu120"


def default_alpha(dataset: str) -> float:
    """The contrastive-loss weight: 0.8 for NTU (``--loss-alpha``), 1.0 for NW-UCLA."""
    return 0.8 if dataset == "ntu" else 1.0


class CTRGCNConfig(ComponentConfig):
    """``ctrgcn``: the release's CTR-GCN classifier on ``(N, 3, T, V, M)`` skeletons."""

    name: Literal["ctrgcn"] = "ctrgcn"
    num_class: int = Field(60, ge=1)
    dataset: Dataset = "ntu"
    num_person: int | None = Field(None, ge=1, description="bodies per sample (default: 2 NTU, 1 NW-UCLA)")
    in_channels: int = Field(3, ge=1)
    drop_out: float = Field(0.0, ge=0.0, lt=1.0)
    base_channel: int = Field(64, ge=4, multiple_of=4, description="width of l1-l4 (the release: 64)")


class LSTConfig(ComponentConfig):
    """``lst``: CTR-GCN with LST's 4-part language supervision.

    ``modality`` picks the release's model variant (joint / bone; the motion streams use the same
    model on motion input). ``k`` defaults to the release's (8 NTU joint, 1 bone, 6 NW-UCLA joint).
    The text width follows ``text_encoder`` unless ``text_dim`` is set (512 = the release's CLIP).
    """

    name: Literal["lst"] = "lst"
    num_class: int = Field(60, ge=1)
    dataset: Dataset = "ntu"
    modality: Literal["joint", "bone"] = "joint"
    num_person: int | None = Field(None, ge=1, description="bodies per sample (default: 2 NTU, 1 NW-UCLA)")
    in_channels: int = Field(3, ge=1)
    drop_out: float = Field(0.0, ge=0.0, lt=1.0)
    base_channel: int = Field(64, ge=4, multiple_of=4, description="width of l1-l4 (the release: 64)")
    k: int | None = Field(None, ge=0, description="power of the modality matrix I - A_out^k (default: the release's)")
    class_set: Literal["ntu60", "ntu120", "ucla"] | None = None
    text_encoder: Annotated[WordLlamaConfig | ClipTextConfig, Field(discriminator="name")] = Field(
        default_factory=WordLlamaConfig
    )
    text_dim: int | None = Field(None, ge=1, description="text width (default: the encoder's)")
    text_head: str = Field("ViT-B/32", description="key of the global projection in linear_head (release: ViT-B/32)")
    loss_alpha: float | None = Field(None, ge=0.0, description="contrastive weight (default 0.8 NTU, 1.0 NW-UCLA)")
