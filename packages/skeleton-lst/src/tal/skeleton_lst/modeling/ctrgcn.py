"""CTR-GCN (Chen et al., ICCV 2021): channel-wise topology refinement graph convolution.

Module names and parameter shapes are the release's (``model/ctrgcn.py``), so its checkpoints load
with ``strict=True``. The computation is the release's, rearranged for speed with the same result:

* the three subsets' 1x1 convolutions run as one convolution each (weights concatenated at run time);
* ``conv1``/``conv2`` are applied to the temporal mean of the input (a 1x1 convolution commutes with
  the mean) instead of averaging their outputs;
* the refined topology ``A (N, K, C, V, V)`` and the features ``(N, K, C, T, V)`` of all subsets go
  to :func:`tal.cuda_ops.graph_aggregate` in one call (``sum_subsets``), which replaces the per-subset
  ``torch.einsum('ncuv,nctv->nctu')``.

``tests/oracles/ctrgcn_einsum.py`` states the release's per-subset computation plainly and the tests
check the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tal.cuda_ops import graph_aggregate

__all__ = ["CTRGC", "CTRGCN", "MultiScaleTemporalConv", "TCNGCNUnit", "TemporalConv", "UnitGCN", "UnitTCN"]


def _conv_init(conv: nn.Conv2d) -> None:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.constant_(conv.bias, 0.0)


def _bn_init(bn: nn.BatchNorm1d | nn.BatchNorm2d, scale: float) -> None:
    nn.init.constant_(bn.weight, scale)
    nn.init.constant_(bn.bias, 0.0)


_M = TypeVar("_M", bound=nn.Module)
_BN = nn.modules.batchnorm._BatchNorm


def _typed(module: nn.Module, cls: type[_M]) -> _M:
    if not isinstance(module, cls):
        raise TypeError(f"expected {cls.__name__}, found {type(module).__name__}")
    return module


def conv1x1(x: Tensor, weight: Tensor, bias: Tensor, stride: int = 1) -> Tensor:
    """A 1x1 convolution ``(N, C, T, V) -> (N, O, T', V)`` as one batched GEMM (``weight (O, C[, 1, 1])``);
    a temporal ``stride`` keeps every ``stride``-th frame. On one CPU thread torch runs small 1x1
    convolutions on its slow im2col path; the GEMM avoids it."""
    if stride != 1:
        x = x[:, :, ::stride]
    n, c, t, v = x.shape
    o = weight.shape[0]
    w = weight.reshape(1, o, c).expand(n, o, c)
    out = torch.baddbmm(bias.view(1, o, 1).expand(n, o, t * v), w, x.reshape(n, c, t * v))
    return out.view(n, o, t, v)


def fold_batchnorm(conv: nn.Conv2d, bn: _BN) -> tuple[Tensor, Tensor]:
    """Weights and bias of ``bn(conv(x))`` as one convolution, with ``bn``'s running statistics (eval)."""
    assert bn.running_var is not None and bn.running_mean is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    weight = conv.weight * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
    return weight, (bias - bn.running_mean) * scale + bn.bias


def _bn_affine(bn: _BN) -> tuple[Tensor, Tensor]:
    """``bn`` in eval mode as ``x * scale + shift`` (per channel, shaped ``(C, 1, 1)``)."""
    assert bn.running_var is not None and bn.running_mean is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale.view(-1, 1, 1), (bn.bias - bn.running_mean * scale).view(-1, 1, 1)


class TemporalConv(nn.Module):
    """``(k, 1)`` convolution over time (stride, dilation, 'same' padding) + BatchNorm: ``(N, C, T, V)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1), dilation=(dilation, 1)
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class MultiScaleTemporalConv(nn.Module):
    """Four branches of ``out_channels / 4`` channels, concatenated: two dilated temporal convolutions
    (kernel 5, dilations 1 and 2), a 3-step max-pool and a strided 1x1 convolution (no residual)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 5,
        stride: int = 1,
        dilations: tuple[int, ...] = (1, 2),
    ):
        super().__init__()
        num_branches = len(dilations) + 2
        if out_channels % num_branches:
            raise ValueError(f"out_channels ({out_channels}) must be a multiple of the {num_branches} branches")
        bc = out_channels // num_branches
        branches: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(in_channels, bc, 1),
                nn.BatchNorm2d(bc),
                nn.ReLU(inplace=True),
                TemporalConv(bc, bc, kernel_size, stride=stride, dilation=d),
            )
            for d in dilations
        ]
        branches.append(
            nn.Sequential(
                nn.Conv2d(in_channels, bc, 1),
                nn.BatchNorm2d(bc),
                nn.ReLU(inplace=True),
                nn.MaxPool2d((3, 1), stride=(stride, 1), padding=(1, 0)),
                nn.BatchNorm2d(bc),
            )
        )
        branches.append(nn.Sequential(nn.Conv2d(in_channels, bc, 1, stride=(stride, 1)), nn.BatchNorm2d(bc)))
        self.branches = nn.ModuleList(branches)
        for m in self.modules():  # the release's weights_init
            if isinstance(m, nn.Conv2d):
                _conv_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.constant_(m.bias, 0.0)
        self.stride = stride
        self.branch_channels = bc
        self.num_dilated = len(dilations)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return self._forward_folded(x)
        return torch.cat([branch(x) for branch in self.branches], dim=1)

    def _forward_folded(self, x: Tensor) -> Tensor:
        """Eval mode: BatchNorms folded into the convolutions, the four input 1x1 convolutions as one."""
        branches = [b for b in self.branches if isinstance(b, nn.Sequential)]
        entry = [fold_batchnorm(_typed(b[0], nn.Conv2d), _typed(b[1], _BN)) for b in branches]
        n_relu = len(branches) - 1  # every branch but the strided 1x1 one has a ReLU after its entry
        if self.stride == 1:
            w = torch.cat([e[0] for e in entry])
            h = conv1x1(x, w, torch.cat([e[1] for e in entry]))
            parts = list(h.split(self.branch_channels, dim=1))
        else:
            w = torch.cat([e[0] for e in entry[:n_relu]])
            h = conv1x1(x, w, torch.cat([e[1] for e in entry[:n_relu]]))
            parts = [*h.split(self.branch_channels, dim=1), conv1x1(x, *entry[-1], stride=self.stride)]
        outs = []
        for i, branch in enumerate(branches[: self.num_dilated]):
            tconv = _typed(branch[3], TemporalConv)
            wt, bt = fold_batchnorm(tconv.conv, tconv.bn)
            c = tconv.conv
            outs.append(F.conv2d(F.relu(parts[i]), wt, bt, c.stride, c.padding, c.dilation))  # type: ignore[arg-type]
        pool_branch = branches[self.num_dilated]
        pool = _typed(pool_branch[3], nn.MaxPool2d)
        pooled = F.max_pool2d(F.relu(parts[self.num_dilated]), pool.kernel_size, pool.stride, pool.padding)
        scale, shift = _bn_affine(_typed(pool_branch[4], _BN))
        outs.append(torch.addcmul(shift, pooled, scale))
        outs.append(parts[-1])
        return torch.cat(outs, dim=1)


class CTRGC(nn.Module):
    """One subset's parameters: ``conv1``/``conv2`` (relation channels), ``conv3`` (features),
    ``conv4`` (relation -> channel-wise topology). :class:`UnitGCN` runs all subsets together."""

    def __init__(self, in_channels: int, out_channels: int, rel_reduction: int = 8):
        super().__init__()
        self.rel_channels = 8 if in_channels in (3, 9) else in_channels // rel_reduction
        self.conv1 = nn.Conv2d(in_channels, self.rel_channels, 1)
        self.conv2 = nn.Conv2d(in_channels, self.rel_channels, 1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, 1)
        self.conv4 = nn.Conv2d(self.rel_channels, out_channels, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _conv_init(m)


def _stack_1x1(convs: list[nn.Conv2d]) -> tuple[Tensor, Tensor]:
    """The weights ``(sum C_out, C_in)`` and biases of several 1x1 convolutions on the same input."""
    weight = torch.cat([c.weight.flatten(1) for c in convs])
    bias = torch.cat([c.bias for c in convs if c.bias is not None])
    return weight, bias


class UnitGCN(nn.Module):
    """CTR-GCN's graph convolution ``(N, C_in, T, V) -> (N, C_out, T, V)``.

    Per subset ``k``: ``A_k = alpha * conv4(tanh(conv1(x)_u - conv2(x)_v)) + PA_k`` (temporal means of
    ``conv1``/``conv2``; shape ``(N, C_out, V, V)``) and ``y_k[n, c, t, u] = sum_v A_k[n, c, u, v] *
    conv3(x)[n, c, t, v]``; then ``relu(bn(sum_k y_k) + down(x))``.
    """

    def __init__(self, in_channels: int, out_channels: int, A: np.ndarray, residual: bool = True):
        super().__init__()
        self.num_subset = int(A.shape[0])
        self.out_channels = out_channels
        subsets = [CTRGC(in_channels, out_channels) for _ in range(self.num_subset)]
        self.convs = nn.ModuleList(subsets)
        self.rel_channels = subsets[0].rel_channels
        self.down: nn.Module | None = None
        self.has_residual = residual
        if residual and in_channels != out_channels:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        self.PA = nn.Parameter(torch.from_numpy(np.asarray(A, dtype=np.float32)))
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(out_channels)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                _conv_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                _bn_init(m, 1.0)
        _bn_init(self.bn, 1e-6)

    def subsets(self) -> list[CTRGC]:
        return [c for c in self.convs if isinstance(c, CTRGC)]

    def topology(self, x: Tensor) -> Tensor:
        """The refined topology ``(N, K, C_out, V, V)`` of every subset."""
        n, _, _, v = x.shape
        k, r = self.num_subset, self.rel_channels
        convs = self.subsets()
        w12, b12 = _stack_1x1([c.conv1 for c in convs] + [c.conv2 for c in convs])
        q = F.linear(x.mean(2).transpose(1, 2), w12, b12)  # (N, V, 2*K*R)
        q = q.transpose(1, 2).reshape(n, 2, k, r, v)
        rel = torch.tanh(q[:, 0].unsqueeze(-1) - q[:, 1].unsqueeze(-2))  # (N, K, R, V, V)
        w4 = torch.cat([c.conv4.weight for c in convs])
        b4 = torch.cat([c.conv4.bias for c in convs if c.conv4.bias is not None])
        c = self.out_channels
        refined = torch.matmul(w4.view(k, c, r), rel.reshape(n, k, r, v * v)) + b4.view(1, k, c, 1)  # grouped 1x1
        return refined.view(n, k, c, v, v) * self.alpha + self.PA.unsqueeze(1)

    def forward(self, x: Tensor) -> Tensor:
        n, _, t, v = x.shape
        w3, b3 = _stack_1x1([c.conv3 for c in self.subsets()])
        feats = conv1x1(x, w3, b3).view(n, self.num_subset, self.out_channels, t, v)
        y = graph_aggregate(feats, self.topology(x), sum_subsets=True)
        y = self.bn(y)
        if self.has_residual:
            y = y + (self._down(x) if self.down is not None else x)
        return F.relu(y)

    def _down(self, x: Tensor) -> Tensor:
        assert isinstance(self.down, nn.Sequential)
        if self.training:
            return self.down(x)
        w, b = fold_batchnorm(_typed(self.down[0], nn.Conv2d), _typed(self.down[1], _BN))
        return conv1x1(x, w, b)


class UnitTCN(nn.Module):
    """1x1 (or ``(k, 1)``) strided temporal convolution + BatchNorm: the unit's residual path."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1):
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, (kernel_size, 1), padding=(pad, 0), stride=(stride, 1))
        self.bn = nn.BatchNorm2d(out_channels)
        _conv_init(self.conv)
        _bn_init(self.bn, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            w, b = fold_batchnorm(self.conv, self.bn)
            if self.conv.kernel_size == (1, 1):
                return conv1x1(x, w, b, stride=self.conv.stride[0])
            return F.conv2d(x, w, b, self.conv.stride, self.conv.padding)
        return self.bn(self.conv(x))


class TCNGCNUnit(nn.Module):
    """``relu(tcn1(gcn1(x)) + residual(x))``: one of the ten layers ``l1``..``l10``."""

    def __init__(self, in_channels: int, out_channels: int, A: np.ndarray, stride: int = 1, residual: bool = True):
        super().__init__()
        self.gcn1 = UnitGCN(in_channels, out_channels, A)
        self.tcn1 = MultiScaleTemporalConv(out_channels, out_channels, kernel_size=5, stride=stride, dilations=(1, 2))
        self.residual: nn.Module | None = None
        self.identity_residual = residual and in_channels == out_channels and stride == 1
        self.has_residual = residual
        if residual and not self.identity_residual:
            self.residual = UnitTCN(in_channels, out_channels, kernel_size=1, stride=stride)

    def forward(self, x: Tensor) -> Tensor:
        y = self.tcn1(self.gcn1(x))
        if self.identity_residual:
            y = y + x
        elif self.residual is not None:
            y = y + self.residual(x)
        return F.relu(y)


#: (in, out, stride) of l1..l10 relative to the base width 64; l1 has no residual.
LAYERS: tuple[tuple[int, int, int], ...] = (
    (0, 1, 1), (1, 1, 1), (1, 1, 1), (1, 1, 1), (1, 2, 2), (2, 2, 1), (2, 2, 1), (2, 4, 2), (4, 4, 1), (4, 4, 1),
)  # fmt: skip


class CTRGCN(nn.Module):
    """The release's ``model.ctrgcn.Model``: input ``(N, C, T, V, M)`` -> logits ``(N, num_class)``.

    ``data_bn`` normalises each (person, joint, channel) over time; ten units (64 -> 128 -> 256
    channels, time strided by 2 at ``l5`` and ``l8``); the mean over time, joints and persons goes
    to ``fc``. ``A`` is the ``(3, V, V)`` spatial graph that initialises every unit's ``PA``.
    """

    def __init__(
        self,
        num_class: int,
        A: np.ndarray,
        num_person: int = 2,
        in_channels: int = 3,
        drop_out: float = 0.0,
        base_channel: int = 64,
    ):
        super().__init__()
        self.num_class = num_class
        self.num_point = int(A.shape[-1])
        self.num_person = num_person
        self.in_channels = in_channels
        self.data_bn = nn.BatchNorm1d(num_person * in_channels * self.num_point)
        for i, (cin, cout, stride) in enumerate(LAYERS, start=1):
            c_in = in_channels if cin == 0 else base_channel * cin
            unit = TCNGCNUnit(c_in, base_channel * cout, A, stride=stride, residual=i != 1)
            self.add_module(f"l{i}", unit)
        self.feature_dim = base_channel * 4
        self.fc = nn.Linear(self.feature_dim, num_class)
        nn.init.normal_(self.fc.weight, 0.0, math.sqrt(2.0 / num_class))
        _bn_init(self.data_bn, 1.0)
        self.drop_out = nn.Dropout(drop_out) if drop_out else nn.Identity()

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """One group: the release's SGD decays every parameter (biases and norms included)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "weight_decay": weight_decay}]

    def units(self) -> list[nn.Module]:
        return [getattr(self, f"l{i}") for i in range(1, len(LAYERS) + 1)]

    def check_input(self, x: Tensor) -> None:
        if x.dim() != 5:
            raise ValueError(f"expected skeletons (N, C, T, V, M), got shape {tuple(x.shape)}")
        _, c, _, v, m = x.shape
        if (c, v, m) != (self.in_channels, self.num_point, self.num_person):
            raise ValueError(
                f"expected (N, {self.in_channels}, T, {self.num_point}, {self.num_person}) skeletons, "
                f"got {tuple(x.shape)}"
            )

    def encode(self, x: Tensor) -> Tensor:
        """Skeletons ``(N, C, T, V, M)`` -> final features ``(N, M, 256, T', V)`` (``T' = ceil(ceil(T/2)/2)``)."""
        self.check_input(x)
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for unit in self.units():
            x = unit(x)
        return x.view(n, m, x.shape[1], x.shape[2], v)

    @staticmethod
    def pool(features: Tensor) -> Tensor:
        """``(N, M, C, T', V) -> (N, C)``: mean over time and joints, then persons."""
        n, m, c = features.shape[:3]
        return features.reshape(n, m, c, -1).mean(3).mean(1)

    def classify(self, pooled: Tensor) -> Tensor:
        return self.fc(self.drop_out(pooled))

    def forward(self, x: Tensor | Mapping[str, Any]) -> Any:
        """Logits ``(N, num_class)`` of skeletons ``(N, C, T, V, M)``; a tal batch dict: :meth:`forward_batch`."""
        if isinstance(x, Mapping):
            return self.forward_batch(x)
        return self.classify(self.pool(self.encode(x)))

    def forward_batch(self, batch: Mapping[str, Any]) -> Any:
        """tal's model contract on a batch (``inputs (B, C, T, V, M)``, ``labels (B,)``): the losses
        ``{"loss"}`` (cross-entropy) in training mode, one ``(num_class,)`` score vector per sample in eval."""
        logits = self(batch["inputs"])
        if self.training:
            loss = F.cross_entropy(logits.float(), batch["labels"])
            return {"loss": loss, "ce": loss.detach()}
        return list(logits.float().unbind(0))
