"""MS-TCN (Farha & Gall, CVPR 2019) and MS-TCN++ (Li et al., TPAMI 2020): light backbones for TST.

Module names follow the releases (yabufarha/ms-tcn ``MultiStageModel``: ``stage1``, ``stages.N``, each
``conv_1x1``, ``layers.N.{conv_dilated, conv_1x1}``, ``conv_out``; sj-li/MS-TCN2 ``MS_TCN2``: ``PG``
with ``conv_1x1_in``, ``conv_dilated_1/2.N``, ``conv_fusion.N``, ``conv_out``, and ``Rs.N``), so their
``.model`` files load. Padded frames are zeroed at every layer's input and output, so a padded batch
gives each video the result it gets alone (the releases mask only layer outputs).

``forward(x (B, C_in, T), mask (B, 1, T))`` → logits of every stage ``(S, B, K, T)`` and the features of
the last stage before its classifier ``(B, num_f_maps, T)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tal.seg_tst.config import MSTCNBackboneConfig, MSTCNPlusPlusBackboneConfig
from tal.seg_tst.modeling.frame_losses import smoothing_loss


class DilatedResidualLayer(nn.Module):
    """``(x + dropout(conv_1x1(relu(conv_dilated(x))))) * mask``, kernel 3, dilation ``d``."""

    def __init__(self, dilation: int, channels: int, dropout: float) -> None:
        super().__init__()
        self.conv_dilated = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv_1x1 = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.dropout(self.conv_1x1(F.relu(self.conv_dilated(x))))
        return (x + out) * mask


class SingleStageTCN(nn.Module):
    """``conv_1x1`` → ``num_layers`` dilated residual layers (dilation ``2**i``) → ``conv_out``."""

    def __init__(self, num_layers: int, num_f_maps: int, dim: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.conv_1x1 = nn.Conv1d(dim, num_f_maps, 1)
        self.layers = nn.ModuleList(DilatedResidualLayer(2**i, num_f_maps, dropout) for i in range(num_layers))
        self.conv_out = nn.Conv1d(num_f_maps, num_classes, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, K, T)`` and the last layer's features ``(B, F, T)``."""
        h = self.conv_1x1(x) * mask
        for layer in self.layers:
            h = layer(h, mask)
        return self.conv_out(h) * mask, h


class MSTCN(nn.Module):
    """``num_stages`` single-stage TCNs; stage ``s > 1`` reads ``softmax`` of stage ``s - 1``."""

    def __init__(self, config: MSTCNBackboneConfig) -> None:
        super().__init__()
        c = config
        self.num_classes = c.num_classes
        self.feat_dim = c.num_f_maps
        self.stage1 = SingleStageTCN(c.num_layers, c.num_f_maps, c.input_dim, c.num_classes, c.dropout)
        self.stages = nn.ModuleList(
            SingleStageTCN(c.num_layers, c.num_f_maps, c.num_classes, c.num_classes, c.dropout)
            for _ in range(c.num_stages - 1)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = mask.to(x.dtype)
        out, feats = self.stage1(x * m, m)
        outputs = [out]
        for stage in self.stages:
            out, feats = stage(torch.softmax(out, 1) * m, m)
            outputs.append(out)
        return torch.stack(outputs), feats


class PredictionGeneration(nn.Module):
    """MS-TCN++'s first stage: layer ``i`` fuses dilations ``2**(L-1-i)`` and ``2**i``."""

    def __init__(self, num_layers: int, num_f_maps: int, dim: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.conv_1x1_in = nn.Conv1d(dim, num_f_maps, 1)
        self.conv_dilated_1 = nn.ModuleList(
            nn.Conv1d(num_f_maps, num_f_maps, 3, padding=2 ** (num_layers - 1 - i), dilation=2 ** (num_layers - 1 - i))
            for i in range(num_layers)
        )
        self.conv_dilated_2 = nn.ModuleList(
            nn.Conv1d(num_f_maps, num_f_maps, 3, padding=2**i, dilation=2**i) for i in range(num_layers)
        )
        self.conv_fusion = nn.ModuleList(nn.Conv1d(2 * num_f_maps, num_f_maps, 1) for _ in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        self.conv_out = nn.Conv1d(num_f_maps, num_classes, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.conv_1x1_in(x) * mask
        for i in range(self.num_layers):
            fused = self.conv_fusion[i](torch.cat([self.conv_dilated_1[i](f), self.conv_dilated_2[i](f)], 1))
            f = (f + self.dropout(F.relu(fused))) * mask
        return self.conv_out(f) * mask, f


class MSTCNPlusPlus(nn.Module):
    """MS-TCN++: ``PG`` then ``num_r`` refinement stages ``Rs`` on the softmax of the previous stage."""

    def __init__(self, config: MSTCNPlusPlusBackboneConfig) -> None:
        super().__init__()
        c = config
        self.num_classes = c.num_classes
        self.feat_dim = c.num_f_maps
        self.PG = PredictionGeneration(c.num_layers_pg, c.num_f_maps, c.input_dim, c.num_classes, c.dropout)
        self.Rs = nn.ModuleList(
            SingleStageTCN(c.num_layers_r, c.num_f_maps, c.num_classes, c.num_classes, c.dropout)
            for _ in range(c.num_r)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = mask.to(x.dtype)
        out, feats = self.PG(x * m, m)
        outputs = [out]
        for stage in self.Rs:
            out, feats = stage(torch.softmax(out, 1) * m, m)
            outputs.append(out)
        return torch.stack(outputs), feats


def mstcn_loss(
    stage_logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, mse_weight: float = 0.15
) -> dict[str, torch.Tensor]:
    """MS-TCN's loss summed over stages: CE (``-100`` ignored) + ``mse_weight`` × truncated smoothing.

    ``stage_logits (S, B, K, T)``, ``labels (B, T)``, ``mask (B, 1, T)``.
    """
    ce = stage_logits.new_zeros(())
    smooth = stage_logits.new_zeros(())
    k = stage_logits.shape[2]
    for p in stage_logits:
        ce = ce + F.cross_entropy(p.transpose(2, 1).reshape(-1, k), labels.reshape(-1), ignore_index=-100)
        smooth = smooth + smoothing_loss(p, mask)
    return {"ce_loss": ce, "smoothing_loss": mse_weight * smooth, "loss": ce + mse_weight * smooth}
