"""Building CTR-GCN and LST models: the public :func:`build_model` and the registry factories."""

from __future__ import annotations

import logging

from tal.core.errors import ConfigError
from tal.skeleton_lst.config import (
    RELEASE_K,
    CTRGCNConfig,
    LSTConfig,
    default_alpha,
    default_class_set,
    default_num_person,
)
from tal.skeleton_lst.graphs import BODY_PARTS, modality_matrix, spatial_adjacency
from tal.skeleton_lst.modeling.ctrgcn import CTRGCN
from tal.skeleton_lst.modeling.lst import RELEASE_TEXT_DIM, RELEASE_TEXT_HEAD, LSTModel
from tal.skeleton_lst.modeling.text import load_text_bank

__all__ = ["build_ctrgcn", "build_lst", "build_model"]

logger = logging.getLogger(__name__)


def build_model(
    name: str,
    num_class: int,
    dataset: str,
    modality: str = "joint",
    *,
    num_person: int | None = None,
    k: int | None = None,
    text_dim: int = RELEASE_TEXT_DIM,
    text_head: str = RELEASE_TEXT_HEAD,
    drop_out: float = 0.0,
    base_channel: int = 64,
) -> CTRGCN:
    """A release-compatible model: ``name`` ``ctrgcn`` or ``lst``, ``dataset`` ``ntu`` or ``ucla``,
    ``modality`` ``joint`` or ``bone`` (motion streams use the same models on motion input).

    Its ``state_dict`` has exactly the release's keys and shapes (LST with the release's 512-d CLIP
    text width by default); in eval mode ``model(x)`` with ``x (N, 3, T, V, M)`` returns the logits
    ``(N, num_class)``. No text bank is attached (see :meth:`LSTModel.set_text_bank` for training).
    """
    if dataset not in ("ntu", "ucla"):
        raise ValueError(f"dataset must be 'ntu' or 'ucla', got {dataset!r}")
    if modality not in ("joint", "bone"):
        raise ValueError(f"modality must be 'joint' or 'bone', got {modality!r}")
    persons = num_person if num_person is not None else default_num_person(dataset)
    A = spatial_adjacency(dataset)
    if name == "ctrgcn":
        return CTRGCN(num_class, A, num_person=persons, drop_out=drop_out, base_channel=base_channel)
    if name == "lst":
        power = RELEASE_K[(dataset, modality)] if k is None else k
        return LSTModel(
            num_class,
            A,
            modality_matrix(dataset, power),
            BODY_PARTS[(dataset, modality)],
            num_person=persons,
            drop_out=drop_out,
            text_dim=text_dim,
            text_head=text_head,
            base_channel=base_channel,
        )
    raise ValueError(f"model name must be 'ctrgcn' or 'lst', got {name!r}")


def build_ctrgcn(config: CTRGCNConfig) -> CTRGCN:
    """Registry factory of ``ctrgcn``."""
    if config.in_channels != 3:
        return CTRGCN(
            config.num_class,
            spatial_adjacency(config.dataset),
            num_person=config.num_person or default_num_person(config.dataset),
            in_channels=config.in_channels,
            drop_out=config.drop_out,
            base_channel=config.base_channel,
        )
    return build_model(
        "ctrgcn",
        config.num_class,
        config.dataset,
        num_person=config.num_person,
        drop_out=config.drop_out,
        base_channel=config.base_channel,
    )


def build_lst(config: LSTConfig, attach_text: bool = True) -> LSTModel:
    """Registry factory of ``lst``: the model plus the fixed text features of its classes for training."""
    class_set = config.class_set or default_class_set(config.dataset, config.num_class)
    text_dim = config.text_dim if config.text_dim is not None else config.text_encoder.dim
    model = build_model(
        "lst",
        config.num_class,
        config.dataset,
        config.modality,
        num_person=config.num_person,
        k=config.k,
        text_dim=text_dim,
        text_head=config.text_head,
        drop_out=config.drop_out,
        base_channel=config.base_channel,
    )
    assert isinstance(model, LSTModel)
    model.loss_alpha = config.loss_alpha if config.loss_alpha is not None else default_alpha(config.dataset)
    if attach_text:
        bank = load_text_bank(class_set, config.text_encoder)
        if bank.num_classes != config.num_class:
            raise ConfigError(
                f"model.class_set: {class_set} has {bank.num_classes} class descriptions, model.num_class is "
                f"{config.num_class}"
            )
        if bank.dim == text_dim:
            model.set_text_bank(bank)
        else:  # e.g. text_dim 512 to load a release checkpoint with another encoder: evaluation only
            logger.info(
                "model.text_dim %d differs from the %d-d %s text features: the LST loss is unavailable, "
                "the model evaluates and predicts",
                text_dim,
                bank.dim,
                bank.identity,
            )
    return model
