"""``svtas-rl``: the registered model. Backbone → block-recurrent head, run clip by clip.

A batch (``tal.core`` segmentation layout: ``features (B, C, T, ...)`` at the full frame rate,
``mask (B, 1, T)``, ``labels (B, T)``) is cut into the release's clips (:mod:`tal.stream_rl.clips`);
the clips of a video run in order, the head's recurrent state carried from one to the next (detached:
no backpropagation across clips) and started from zeros for every video.

- Training returns the objective summed over the clips (each clip's terms are divided by the video's
  number of clips, as the release normalises them): ``loss`` plus its parts.
- Evaluation returns one ``(T,)`` label tensor per video, exactly what :class:`~tal.stream_rl.StreamingSegmenter`
  emits for that video (both call :meth:`SVTASRL.predict_clip` on the same clips).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tal.stream_rl.clips import (
    ClipSpec,
    batch_clip_inputs,
    batch_clip_labels,
    clip_frame_mask,
    clip_input,
)
from tal.stream_rl.config import BRTHeadConfig, StreamLossConfig
from tal.stream_rl.modeling.brt_head import BRTHead, HeadState
from tal.stream_rl.modeling.losses import cross_entropy_terms, supervised_terms
from tal.stream_rl.modeling.rl import (
    action_log_prob,
    dice_coefficient,
    dice_reward,
    discounted_returns,
    reinforce_loss,
    sample_actions,
    td_targets,
)

logger = logging.getLogger(__name__)


@dataclass
class ClipResult:
    """What the model computes for one clip of a batch of videos."""

    token_scores: torch.Tensor  # (S, B, K, N) stage scores per token
    frame_scores: torch.Tensor  # (S, B, K, W) the same repeated to frames
    features: torch.Tensor  # (B, F, N) the encoder's last features
    backbone_scores: torch.Tensor | None  # (B, K, N) the backbone's own classifier, if any
    token_mask: torch.Tensor  # (B, N) bool
    state: HeadState  # the head's new state (with gradient)


class SVTASRL(nn.Module):
    """SVTAS-RL streaming segmentation model (see the module docstring).

    Args:
        backbone: maps ``(B, C, clip_len, ...)`` sampled frames and a ``(B, 1, clip_len)`` mask to
            ``(B, D, clip_len / temporal_stride)`` tokens; has ``out_channels`` (and ``temporal_stride``,
            1 if absent).
        num_classes: classes ``K``.
        clip_len, sample_rate: the clips (:class:`~tal.stream_rl.clips.ClipSpec`).
        head, loss: head architecture and training objective.
        backbone_lr_scale: learning-rate factor of the backbone's parameters (``param_groups``).
        train_memory: ``"video"`` carries the state through a video's clips in training, ``"clip"``
            clears it before every clip (the release's training loop).
        eval_mode: what evaluation predicts: ``"stream"`` (clip by clip, as deployed) or
            ``"offline"`` (:meth:`segment_whole`, the whole video as one clip).
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        clip_len: int = 64,
        sample_rate: int = 2,
        head: BRTHeadConfig | None = None,
        loss: StreamLossConfig | None = None,
        backbone_lr_scale: float = 0.02,
        train_memory: str = "video",
        eval_mode: str = "stream",
    ) -> None:
        super().__init__()
        if eval_mode not in ("stream", "offline"):
            raise ValueError(f"eval_mode must be 'stream' or 'offline', got {eval_mode!r}")
        self.eval_mode = eval_mode
        head = head or BRTHeadConfig()
        self.loss_config = loss or StreamLossConfig()
        self.num_classes = num_classes
        self.clip_spec = ClipSpec(clip_len, sample_rate)
        temporal_stride = int(getattr(backbone, "temporal_stride", 1))
        if clip_len % temporal_stride:
            raise ValueError(
                f"clip_len {clip_len} is not divisible by the backbone's temporal stride {temporal_stride}"
            )
        self.token_stride = sample_rate * temporal_stride
        self.backbone_lr_scale = backbone_lr_scale
        if train_memory not in ("video", "clip"):
            raise ValueError(f"train_memory must be 'video' or 'clip', got {train_memory!r}")
        self.train_memory = train_memory
        self.backbone = backbone
        out_channels: Any = backbone.out_channels  # an int attribute (Backbone protocol)
        backbone_channels = int(out_channels)
        self.head = BRTHead(
            input_dim=backbone_channels,
            num_classes=num_classes,
            num_f_maps=head.num_f_maps,
            encoder_layers=head.encoder_layers,
            decoder_layers=head.decoder_layers,
            num_decoders=head.num_decoders,
            num_heads=head.num_heads,
            state_len=head.state_len,
            dropout=head.dropout,
            channel_masking_rate=head.channel_masking_rate,
            layer_dropout=head.layer_dropout,
        )
        trainable_backbone = any(p.requires_grad for p in backbone.parameters())
        self.backbone_classifier: nn.Module | None = None
        if trainable_backbone:
            self.backbone_classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv1d(backbone_channels, num_classes, 1))
        self.value_head = nn.Linear(head.num_f_maps, 1)
        uses_value = self.loss_config.objective in ("reinforce_td", "reinforce_mc")
        uses_backbone_loss = trainable_backbone and self.loss_config.backbone_loss_weight > 0
        self.ddp_find_unused_parameters = not uses_value or (trainable_backbone and not uses_backbone_loss)

    # -- one clip -------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.head.parameters()).dtype

    def forward_clip(self, clip: torch.Tensor, frame_mask: torch.Tensor, state: HeadState | None) -> ClipResult:
        """Run one clip of a batch of videos.

        Args:
            clip: ``(B, C, clip_len, ...)`` sampled frames (zeros where padded).
            frame_mask: ``(B, W)`` bool, the clip's frame slots that hold a frame (``W = clip_len × sample_rate``;
                a longer clip than the model's, as :meth:`segment_whole` uses, is allowed).
            state: the head's state after the previous clip of the same videos, ``None`` at the start.
        """
        sr = self.clip_spec.sample_rate
        if frame_mask.shape[-1] != clip.shape[2] * sr:
            raise ValueError(f"frame_mask has {frame_mask.shape[-1]} slots for {clip.shape[2]} sampled frames x {sr}")
        sampled_mask = frame_mask[:, ::sr]
        tokens = self.backbone(clip, sampled_mask[:, None, :])
        token_mask = frame_mask[:, :: self.token_stride]
        if tokens.shape[-1] != token_mask.shape[-1]:
            raise ValueError(
                f"the backbone returned {tokens.shape[-1]} tokens for {clip.shape[2]} sampled frames; "
                f"expected {token_mask.shape[-1]} (temporal stride {self.token_stride // sr})"
            )
        backbone_scores = None
        if self.backbone_classifier is not None:
            backbone_scores = self.backbone_classifier(tokens) * token_mask[:, None, :].to(tokens.dtype)
        token_scores, features, new_state = self.head(tokens, token_mask, state)
        frame_scores = token_scores.repeat_interleave(self.token_stride, dim=-1)
        return ClipResult(token_scores, frame_scores, features, backbone_scores, token_mask, new_state)

    @torch.no_grad()
    def predict_clip(
        self, clip: torch.Tensor, frame_mask: torch.Tensor, state: HeadState | None
    ) -> tuple[torch.Tensor, HeadState]:
        """Class probabilities of a single video's clip: ``(1, C, clip_len, ...)``, ``(1, W)`` →
        ``((W, K) float32 from the last stage, new state detached)``."""
        res = self.forward_clip(clip, frame_mask, state)
        probs = F.softmax(res.frame_scores[-1, 0].float(), dim=0).transpose(0, 1).contiguous()
        return probs, [s.detach() for s in res.state]

    @torch.no_grad()
    def segment(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offline run over one whole video, clip after clip with the state carried.

        ``video (C, T, ...)`` → ``labels (T,)`` int64 and ``probs (T, K)``: the same values a
        :class:`~tal.stream_rl.StreamingSegmenter` emits for this video, however it is fed.
        """
        spec = self.clip_spec
        n = video.shape[1]
        device = self.device
        state: HeadState | None = None
        parts = []
        for k in range(spec.num_clips(n)):
            clip = clip_input(video, spec, k).to(device, self.dtype)[None]
            mask = clip_frame_mask(spec, k, n).to(device)[None]
            probs, state = self.predict_clip(clip, mask, state)
            parts.append(probs[: int(mask.sum())])
        probs_all = torch.cat(parts) if parts else torch.zeros(0, self.num_classes)
        return probs_all.argmax(dim=1), probs_all

    @torch.no_grad()
    def segment_whole(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The offline counterpart: the whole video as one clip (same sampling, all context at once).

        ``video (C, T, ...)`` → ``labels (T,)``, ``probs (T, K)``. The clip is
        ``ceil(T / sample_rate)`` sampled frames, rounded up to the backbone's temporal stride.
        """
        sr, stride = self.clip_spec.sample_rate, self.token_stride // self.clip_spec.sample_rate
        n = video.shape[1]
        if n == 0:
            return torch.zeros(0, dtype=torch.int64), torch.zeros(0, self.num_classes)
        sampled = -(-n // sr)
        whole = ClipSpec(-(-sampled // stride) * stride, sr)
        clip = clip_input(video, whole, 0).to(self.device, self.dtype)[None]
        mask = clip_frame_mask(whole, 0, n).to(self.device)[None]
        res = self.forward_clip(clip, mask, None)
        probs = F.softmax(res.frame_scores[-1, 0].float(), dim=0).transpose(0, 1)[:n].contiguous()
        return probs.argmax(dim=1), probs

    # -- tal.core Model protocol ----------------------------------------------------------------
    def forward(self, batch: Mapping[str, Any]) -> Any:
        """Losses in training mode, one ``(T_i,)`` int64 label tensor per video in eval mode
        (streamed clip by clip; the whole video at once with ``eval_mode="offline"``)."""
        features = batch["features"]
        mask = batch["mask"]
        lengths = mask.reshape(mask.shape[0], -1).sum(dim=-1).cpu()
        if self.training:
            window = batch.get("clip_window")
            if window is not None and int(window) != self.clip_spec.window:
                raise ValueError(
                    f"the batch was cut into clips of {int(window)} frames, the model's clips have "
                    f"{self.clip_spec.window} (stream-clips clip_len x sample_rate must equal the model's)"
                )
            return self._losses(features, lengths, batch["labels"], batch.get("clips_per_video"))
        run = self.segment if self.eval_mode == "stream" else self.segment_whole
        return [run(features[i, :, : int(lengths[i])])[0].cpu() for i in range(features.shape[0])]

    def _losses(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor,
        labels: torch.Tensor,
        video_clips: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The objective over the clips of a batch; ``video_clips (B,)``: clips of each whole video
        (when the batch holds pieces of videos, see ``stream-clips``), the release's normaliser."""
        cfg = self.loss_config
        spec = self.clip_spec
        device = features.device
        own_clips = torch.tensor([spec.num_clips(int(n)) for n in lengths], dtype=torch.float32, device=device)
        n_clips = own_clips if video_clips is None else video_clips.to(device=device, dtype=torch.float32)
        labels = labels.cpu()
        zero = features.new_zeros(())
        sup_sum, bb_sum, reward_sum, live_sum = zero, zero, zero, zero
        rewards: list[torch.Tensor] = []
        log_probs: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        exists: list[torch.Tensor] = []
        state: HeadState | None = None
        for k in range(int(own_clips.max().item()) if len(own_clips) else 0):
            clip, fmask = batch_clip_inputs(features, lengths, spec, k)
            fmask = fmask.to(device)
            y = batch_clip_labels(labels, lengths, spec, k).to(device)
            live = (k < own_clips).to(features.dtype)
            res = self.forward_clip(clip, fmask, None if self.train_memory == "clip" else state)
            state = [s.detach() for s in res.state]
            sup = supervised_terms(res.frame_scores, y, fmask, n_clips, cfg.smooth_weight)  # (B,)
            if res.backbone_scores is not None and cfg.backbone_loss_weight > 0:
                y_tok = y[:, :: self.token_stride]
                bb_sum = (
                    bb_sum + cfg.backbone_loss_weight * cross_entropy_terms(res.backbone_scores, y_tok, n_clips).sum()
                )
            if cfg.objective == "supervised":
                sup_sum = sup_sum + sup.sum()
                continue
            if cfg.objective == "reward_weighted":
                with torch.no_grad():
                    probs = F.softmax(res.frame_scores[-1], dim=1)
                    dice = dice_coefficient(probs, y, fmask, cfg.dice_smooth, cfg.dice_exponent)
                    reward = dice_reward(dice, cfg.beta1, cfg.beta2)
                sup_sum = sup_sum + cfg.loss_weight * (sup * reward).sum()
                reward_sum, live_sum = reward_sum + (reward * live).sum(), live_sum + live.sum()
                continue
            sup_sum = sup_sum + cfg.sup_weight * sup.sum()
            last = res.token_scores[-1]
            actions = sample_actions(last)
            with torch.no_grad():
                frame_actions = actions.repeat_interleave(self.token_stride, dim=-1)
                onehot = F.one_hot(frame_actions, self.num_classes).permute(0, 2, 1).to(last.dtype)
                reward = dice_reward(
                    dice_coefficient(onehot, y, fmask, cfg.dice_smooth, cfg.dice_exponent), cfg.beta1, cfg.beta2
                )
            tm = res.token_mask.to(res.features.dtype)
            pooled = (res.features.detach() * tm[:, None, :]).sum(-1) / tm.sum(-1, keepdim=True).clamp(min=1.0)
            rewards.append(reward * live)
            log_probs.append(action_log_prob(last, actions, res.token_mask))
            values.append(self.value_head(pooled).squeeze(-1) * live)
            exists.append(live)
            reward_sum, live_sum = reward_sum + (reward * live).sum(), live_sum + live.sum()
        out: dict[str, torch.Tensor] = {"sup": sup_sum}
        total = sup_sum
        if cfg.objective in ("reinforce_td", "reinforce_mc") and rewards:
            r, v, lp, alive = torch.stack(rewards), torch.stack(values), torch.stack(log_probs), torch.stack(exists)
            target = (
                td_targets(r, v, cfg.gamma) if cfg.objective == "reinforce_td" else discounted_returns(r, cfg.gamma)
            )
            advantage = target - v
            b = features.shape[0]
            pg = (reinforce_loss(lp, advantage) * alive / n_clips).sum() / b
            value_loss = ((target.detach() - v) ** 2 * alive / n_clips).sum() / b
            total = total + cfg.pg_weight * pg + cfg.value_weight * value_loss
            out.update(pg=pg, value=value_loss)
        if self.backbone_classifier is not None:
            out["backbone"] = bb_sum
            total = total + bb_sum
        if cfg.objective != "supervised":
            out["reward"] = reward_sum / live_sum.clamp(min=1.0)
        out["loss"] = total
        return out

    # -- optimizer ------------------------------------------------------------------------------
    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Decay / no-decay groups (tal.core's rule), the backbone's with ``lr_scale = backbone_lr_scale``
        (the release's ``finetuning_scale_factor`` on ``backbone.`` parameters)."""
        from tal.core.engine.optim import split_decay

        params = dict(self.named_parameters())
        decay, no_decay = split_decay(self)
        groups = []
        for names, wd in ((decay, weight_decay), (no_decay, 0.0)):
            for in_backbone in (False, True):
                chosen = [n for n in names if n.startswith("backbone.") == in_backbone]
                if not chosen:
                    continue
                group: dict[str, Any] = {"params": [params[n] for n in chosen], "weight_decay": wd, "names": chosen}
                if in_backbone:
                    group["lr_scale"] = self.backbone_lr_scale
                groups.append(group)
        return groups


# -- factories (registered by the plugin) ---------------------------------------------------------
def build_feature_backbone(config: Any) -> nn.Module:
    """``stream-features`` from its :class:`~tal.stream_rl.config.FeatureBackboneConfig`."""
    from tal.stream_rl.modeling.backbones import FeatureBackbone

    return FeatureBackbone(config.input_dim)


def build_conv3d_backbone(config: Any) -> nn.Module:
    """``stream-conv3d`` from its :class:`~tal.stream_rl.config.Conv3dBackboneConfig`."""
    from tal.stream_rl.modeling.backbones import Conv3dBackbone

    return Conv3dBackbone(
        config.in_channels, tuple(config.widths), config.temporal_stride, config.temporal_stride_stage
    )


_OWN_BACKBONES = {"stream-features": build_feature_backbone, "stream-conv3d": build_conv3d_backbone}


def build_svtas_rl(config: Any, registry: Any = None) -> SVTASRL:
    """``svtas-rl`` from its :class:`~tal.stream_rl.config.SVTASRLConfig`.

    The backbone is built by ``registry`` (any registered backbone); without a registry only this
    package's own backbones can be built. ``init_checkpoint`` weights are loaded last.
    """
    if registry is not None:
        backbone = registry.build("backbones", config.backbone)
    elif config.backbone.name in _OWN_BACKBONES:
        backbone = _OWN_BACKBONES[config.backbone.name](config.backbone)
    else:
        raise ValueError(
            f"backbone {config.backbone.name!r} is not one of tal-stream-rl's; pass the registry to build it"
        )
    model = SVTASRL(
        backbone,
        num_classes=config.num_classes,
        clip_len=config.clip_len,
        sample_rate=config.sample_rate,
        head=config.head,
        loss=config.loss,
        backbone_lr_scale=config.backbone_lr_scale,
        train_memory=config.train_memory,
        eval_mode=config.eval_mode,
    )
    if config.init_checkpoint:
        from tal.core.engine.checkpoint import load_model_weights

        source = load_model_weights(model, config.init_checkpoint)
        logger.info("svtas-rl: initialised from %s (%s weights)", config.init_checkpoint, source)
    return model
