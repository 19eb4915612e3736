"""LST (Xiang et al., "Language Supervised Training for Skeleton-based Action Recognition"), 4-part variant.

A CTR-GCN whose pooled features are also projected to a text space: the global feature by
``linear_head[<text head>]`` and four body-part features (mean over the part's joints, time, then
persons) by ``part_list.0..3``. Training adds to the cross-entropy ``alpha`` times the mean of five
symmetric KL contrastive terms (global + head, hand, hip, foot) between the skeleton features and the
text features of the samples' class descriptions; inference uses ``fc`` only (the text branch costs
nothing). Inside the model the input is transformed per frame by LST's modality matrix
``x <- (I - A_out^k) x`` (identity for NTU joints with ``k = 8``, bones with ``k = 1``).

Names and shapes are the release's (``Model_lst_4part``, ``_bone``, ``_ucla``): with the CLIP
ViT-B/32 text width (512) its checkpoints load with ``strict=True``. With another text encoder the
model's text width follows it; a release checkpoint still loads (its text projections, unused at
inference, are then left out, see :meth:`LSTModel.adapt_checkpoint_state`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tal.skeleton_lst.modeling.ctrgcn import CTRGCN
from tal.skeleton_lst.modeling.text import TextBank

__all__ = ["LSTModel", "LSTOutput", "contrastive_kl", "label_match_matrix", "lst_loss", "similarity_logits"]

logger = logging.getLogger(__name__)

RELEASE_TEXT_HEAD = "ViT-B/32"
RELEASE_TEXT_DIM = 512
NUM_TERMS = 5  # global + 4 parts
TARGET_SHARPNESS = 10.0  # the KL target is softmax(10 * same-label matrix)


@dataclass
class LSTOutput:
    """Everything the LST forward computes: ``logits (N, K)``, ``global_feature (N, D)``,
    ``logit_scale (1, 5)`` and ``part_features`` (head, hand, hip, foot), each ``(N, D)``."""

    logits: Tensor
    global_feature: Tensor
    logit_scale: Tensor
    part_features: list[Tensor]


class LSTModel(CTRGCN):
    """CTR-GCN + LST text projections; ``forward(x)`` returns the logits, :meth:`forward_features` all outputs.

    Args:
        num_class, A, num_person, in_channels, drop_out: as :class:`CTRGCN`.
        modality: ``(V, V)`` matrix ``I - A_out^k`` applied to the joints of every frame (not saved).
        parts: four 0-based joint groups (head, hand, hip, foot).
        text_dim: width of the text features (512 for CLIP ViT-B/32, the release).
        text_head: key of the global projection in ``linear_head`` (``"ViT-B/32"`` in the release).
    """

    def __init__(
        self,
        num_class: int,
        A: np.ndarray,
        modality: np.ndarray,
        parts: Sequence[Sequence[int]],
        num_person: int = 2,
        in_channels: int = 3,
        drop_out: float = 0.0,
        text_dim: int = RELEASE_TEXT_DIM,
        text_head: str = RELEASE_TEXT_HEAD,
        base_channel: int = 64,
    ):
        super().__init__(
            num_class, A, num_person=num_person, in_channels=in_channels, drop_out=drop_out, base_channel=base_channel
        )
        if len(parts) != 4:
            raise ValueError(f"LST 4-part needs four joint groups, got {len(parts)}")
        eye = np.eye(self.num_point)
        self.modality_is_identity = bool(np.array_equal(modality, eye))
        self.register_buffer("modality", torch.as_tensor(modality, dtype=torch.float32), persistent=False)
        for i, part in enumerate(parts):
            self.register_buffer(f"part_index_{i}", torch.as_tensor(list(part), dtype=torch.long), persistent=False)
        self.text_dim = text_dim
        self.text_head = text_head
        self.logit_scale = nn.Parameter(torch.ones(1, NUM_TERMS) * math.log(1 / 0.07))
        head = nn.Linear(self.feature_dim, text_dim)
        nn.init.kaiming_normal_(head.weight, mode="fan_out")  # the release's conv_init
        nn.init.constant_(head.bias, 0.0)
        self.linear_head = nn.ModuleDict({text_head: head})
        self.part_list = nn.ModuleList(nn.Linear(self.feature_dim, text_dim) for _ in range(4))
        fc = self.fc  # the release registers fc after the text projections: keep its state_dict order
        del self.fc
        self.fc = fc
        self.loss_alpha = 0.8
        self.text_bank: TextBank | None = None
        self._register_load_state_dict_pre_hook(self._adapt_text_branch_on_load)

    # -- text ---------------------------------------------------------------------------------------
    def set_text_bank(self, bank: TextBank) -> None:
        """Attach the fixed text features used by the training loss (not saved in the state dict)."""
        if bank.dim != self.text_dim:
            raise ValueError(
                f"text features are {bank.dim}-d ({bank.identity}) but the model projects to {self.text_dim}"
            )
        if bank.num_classes != self.num_class:
            raise ValueError(f"text features describe {bank.num_classes} classes, the model has {self.num_class}")
        counts = np.bincount(bank.synonym_class, minlength=self.num_class)
        if (counts == 0).any():
            raise ValueError(f"classes without a synonym: {np.flatnonzero(counts == 0).tolist()}")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        order = np.argsort(bank.synonym_class, kind="stable")
        device = self.fc.weight.device
        self.register_buffer("text_synonyms", torch.from_numpy(bank.synonyms[order]).to(device), persistent=False)
        self.register_buffer("text_synonym_start", torch.from_numpy(starts).to(device), persistent=False)
        self.register_buffer("text_synonym_count", torch.from_numpy(counts).to(device), persistent=False)
        self.register_buffer("text_parts", torch.from_numpy(bank.parts).to(device), persistent=False)
        self.text_bank = bank

    def sample_text(self, labels: Tensor) -> tuple[Tensor, list[Tensor]]:
        """One random synonym embedding per sample ``(B, D)`` and the four part embeddings ``(B, D)``."""
        if self.text_bank is None:
            raise RuntimeError(
                f"LST training needs {self.text_dim}-d text features: call set_text_bank() (the registry factory "
                "does when the text encoder's width equals model.text_dim)"
            )
        count = self._buffer("text_synonym_count")[labels]
        offset = (torch.rand(labels.shape, device=labels.device) * count).long()
        pick = self._buffer("text_synonym_start")[labels] + offset
        parts = self._buffer("text_parts")[labels]  # (B, 4, D)
        return self._buffer("text_synonyms")[pick], list(parts.unbind(1))

    def _buffer(self, name: str) -> Tensor:
        value = getattr(self, name)
        assert isinstance(value, Tensor)
        return value

    # -- forward ----------------------------------------------------------------------------------
    def apply_modality(self, x: Tensor) -> Tensor:
        """``x (N, C, T, V, M) -> (I - A_out^k) x`` on the joint axis (a no-op for the identity)."""
        if self.modality_is_identity:
            return x
        return torch.einsum("uv,nctvm->nctum", self.modality.to(x.dtype), x)

    def part_indices(self) -> list[Tensor]:
        return [getattr(self, f"part_index_{i}") for i in range(4)]

    def forward_features(self, x: Tensor) -> LSTOutput:
        """Logits, the projected global feature, the logit scales and the projected part features."""
        self.check_input(x)
        feats = self.encode(self.apply_modality(x))  # (N, M, C, T', V)
        parts = [
            proj(feats[..., idx].mean(-1).mean(-1).mean(1))
            for proj, idx in zip(self.part_list, self.part_indices(), strict=True)
        ]
        pooled = self.pool(feats)
        glob = self.linear_head[self.text_head](pooled)
        return LSTOutput(self.classify(pooled), glob, self.logit_scale, parts)

    def forward(self, x: Tensor | Mapping[str, Any]) -> Any:
        """Logits ``(N, num_class)`` of skeletons ``(N, C, T, V, M)`` (the text branch is not computed);
        for a tal batch dict see :meth:`forward_batch`."""
        if isinstance(x, Mapping):
            return self.forward_batch(x)
        self.check_input(x)
        return self.classify(self.pool(self.encode(self.apply_modality(x))))

    def forward_batch(self, batch: Mapping[str, Any]) -> Any:
        """Training: :func:`lst_loss` (``{"loss", "ce", "contrastive"}``); eval: one score vector per sample."""
        if not self.training:
            return list(self(batch["inputs"]).float().unbind(0))
        labels = batch["labels"]
        out = self.forward_features(batch["inputs"])
        global_text, part_text = self.sample_text(labels)
        losses = lst_loss(out, labels, global_text, part_text, self.loss_alpha)
        return {"loss": losses["loss"], "ce": losses["ce"].detach(), "contrastive": losses["contrastive"].detach()}

    # -- checkpoints ------------------------------------------------------------------------------
    def text_branch_keys(self) -> list[str]:
        """State-dict keys of the text projections (``linear_head.*``, ``part_list.*``)."""
        return [k for k in self.state_dict() if k.startswith(("linear_head.", "part_list."))]

    def adapt_checkpoint_state(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """``state`` with its text projections replaced by this model's own when their layout differs
        (another text encoder's width or head name); everything the classifier uses is untouched."""
        out = dict(state)
        own = self.state_dict()
        theirs = {k for k in out if k.startswith(("linear_head.", "part_list."))}
        mine = set(self.text_branch_keys())
        fits = theirs == mine and all(tuple(out[k].shape) == tuple(own[k].shape) for k in mine)
        if fits or not theirs:
            return out
        for k in theirs:
            del out[k]
        for k in mine:
            out[k] = own[k]
        logger.warning(
            "checkpoint text projections (%s) do not match this model's text encoder (width %d, head %r): "
            "kept the model's own; they are used in training only",
            ", ".join(sorted(theirs)[:2]) + (" ..." if len(theirs) > 2 else ""),
            self.text_dim,
            self.text_head,
        )
        return out

    def _adapt_text_branch_on_load(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        text_keys = [k for k in state_dict if k.startswith((prefix + "linear_head.", prefix + "part_list."))]
        if not text_keys:
            return
        local = {k[len(prefix) :]: state_dict[k] for k in text_keys}
        adapted = self.adapt_checkpoint_state(local)
        if set(adapted) == set(local) and all(adapted[k] is local[k] for k in local):
            return
        for k in text_keys:
            del state_dict[k]
        for k, v in adapted.items():
            state_dict[prefix + k] = v


# -- the LST loss ----------------------------------------------------------------------------------
def label_match_matrix(labels: Tensor) -> Tensor:
    """``G (B, B)`` float with ``G[i, j] = 1`` where samples ``i`` and ``j`` share a label."""
    return (labels[:, None] == labels[None, :]).to(torch.float32)


def similarity_logits(features: Tensor, text: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """``scale * cos(f_i, t_j)`` ``(B, B)`` and its transpose (the release multiplies by the learnable
    ``logit_scale`` entry as it is, without ``exp``)."""
    f = features / features.norm(dim=-1, keepdim=True)
    t = text / text.norm(dim=-1, keepdim=True)
    per_skeleton = scale * f @ t.t()
    per_text = scale * t @ f.t()
    return per_skeleton, per_text


def contrastive_kl(logits: Tensor, match: Tensor) -> Tensor:
    """``KL(softmax(10 G) || softmax(logits))`` per row, averaged over the rows (the release's
    ``KLDivLoss`` mean over ``B x B`` entries times ``B``)."""
    target = F.softmax(match * TARGET_SHARPNESS, dim=1)
    log_p = F.log_softmax(logits, dim=1)
    return F.kl_div(log_p, target, reduction="sum") / logits.shape[0]


def lst_loss(
    out: LSTOutput, labels: Tensor, global_text: Tensor, part_text: Sequence[Tensor], alpha: float
) -> dict[str, Tensor]:
    """``CE(logits, y) + alpha * mean_i [KL(skeleton->text) + KL(text->skeleton)] / 2`` over the five
    terms (global, head, hand, hip, foot; term ``i`` uses ``logit_scale[:, i]``).

    ``global_text (B, D)``: one class description per sample; ``part_text``: four ``(B, D)``.
    Returns ``{"loss", "ce", "contrastive"}``.
    """
    match = label_match_matrix(labels).to(out.logits.dtype)
    terms = []
    feats = [out.global_feature, *out.part_features]
    texts = [global_text, *part_text]
    for i, (f, t) in enumerate(zip(feats, texts, strict=True)):
        s2t, t2s = similarity_logits(f.float(), t.float().to(f.device), out.logit_scale[:, i].mean().float())
        terms.append((contrastive_kl(s2t, match.float()) + contrastive_kl(t2s, match.float())) / 2)
    contrastive = torch.stack(terms).mean()
    ce = F.cross_entropy(out.logits.float(), labels)
    return {"loss": ce + alpha * contrastive, "ce": ce, "contrastive": contrastive}
