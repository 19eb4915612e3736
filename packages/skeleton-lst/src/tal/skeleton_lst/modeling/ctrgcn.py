"""CTR-GCN (Chen et al., ICCV 2021): channel-wise topology refinement graph convolution.

Module names and parameter shapes are the release's (``model/ctrgcn.py``), so its checkpoints load
with ``strict=True``. The computation is the release's, rearranged for speed with the same result:

* features run through the units in the channels-last memory format (``(N, C, T, V)`` tensors stored
  as ``(N, T, V, C)``), where oneDNN's convolutions are fastest on the CPU;
* ``conv1``/``conv2`` of all subsets are applied to the temporal mean of the input (a 1x1 convolution
  commutes with the mean) in one product; the four branch entries of the temporal block run as one
  convolution (the strided one apart);
* the graph aggregation ``y[n, c, t, u] = sum_k sum_v A_k[n, c, u, v] x_k[n, c, t, v]`` of all
  subsets goes to :func:`tal.cuda_ops.graph_aggregate` in one call. Under ``torch.compile`` on the
  CPU it is written instead as a broadcast product summed over ``v`` on the channels-last tensors,
  which Inductor turns into one loop nest fused with its neighbours (``graph_aggregate``'s CPU path
  is a batched product that needs the ``(N, K, C, T, V)`` layout and stays opaque to Inductor);
  ``UnitGCN.aggregation`` selects a path explicitly;
* in eval mode the BatchNorms are folded into the convolutions before them.

Inference on the CPU (eval mode, no gradient, float32/float64, not while ``torch.compile`` traces) goes instead
through :mod:`tal.skeleton_lst.modeling.ctrgcn_inference`: joints-major features, a few large
matrix products on weights prepared once (:meth:`TCNGCNUnit.inference_weights`, cached by
:meth:`CTRGCN.inference_weights` until a parameter or buffer changes); ``CTRGCN.cpu_inference = False``
turns it off.

``tests/oracles/ctrgcn_einsum.py`` states the release's per-subset computation plainly and the tests
check the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tal.cuda_ops import graph_aggregate
from tal.skeleton_lst.modeling.ctrgcn_inference import (
    GCNWeights,
    TCNWeights,
    TemporalConvWeights,
    UnitWeights,
    unit_forward,
)

__all__ = ["CTRGC", "CTRGCN", "MultiScaleTemporalConv", "TCNGCNUnit", "TemporalConv", "UnitGCN", "UnitTCN"]

CHANNELS_LAST = torch.channels_last
Aggregation = Literal["auto", "graph_aggregate", "fused"]


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


def channels_last(x: Tensor) -> Tensor:
    """``x (N, C, T, V)`` stored as ``(N, T, V, C)`` (a no-op when it already is)."""
    return x.contiguous(memory_format=CHANNELS_LAST)


def _onednn(x: Tensor) -> bool:
    """Whether an eager float32 CPU convolution should call oneDNN directly: torch's own dispatch sends
    1x1 convolutions of fewer than 16 samples on one thread to its slower reference path."""
    if torch.compiler.is_compiling():  # Inductor picks its own convolution kernels
        return False
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and bool(torch.backends.mkldnn.enabled)
    )


def conv2d(conv: nn.Conv2d, x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None) -> Tensor:
    """``conv`` on ``x (N, C, T, V)`` with its stride, padding and dilation; ``weight``/``bias`` replace its
    own (folded BatchNorms). Channels-last in and out, where oneDNN's kernels are fastest on the CPU."""
    w = conv.weight if weight is None else weight
    b = conv.bias if weight is None else bias
    x = channels_last(x)
    if _onednn(x):
        padding = cast(tuple[int, ...], conv.padding)  # CTR-GCN's convolutions pad by numbers, never "same"
        return torch.mkldnn_convolution(x, w, b, list(padding), list(conv.stride), list(conv.dilation), conv.groups)
    return F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation)  # type: ignore[arg-type]


def fold_batchnorm(conv: nn.Conv2d, bn: _BN) -> tuple[Tensor, Tensor]:
    """Weights and bias of ``bn(conv(x))`` as one convolution, with ``bn``'s running statistics (eval)."""
    scale, shift = bn_affine(bn)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
    weight = conv.weight * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
    return weight, bias * scale + shift


def bn_affine(bn: _BN) -> tuple[Tensor, Tensor]:
    """``bn`` in eval mode as ``x * scale + shift``, both ``(C,)``."""
    assert bn.running_var is not None and bn.running_mean is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _affine(x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    return torch.addcmul(shift.view(1, -1, 1, 1), x, scale.view(1, -1, 1, 1))


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
        if not self.training:
            return conv2d(self.conv, x, *fold_batchnorm(self.conv, self.bn))
        return self.bn(conv2d(self.conv, x))

    def inference_weights(self, extra_bias: Tensor) -> TemporalConvWeights:
        """The folded convolution, ``extra_bias (C,)`` added to its bias."""
        weight, bias = fold_batchnorm(self.conv, self.bn)
        return TemporalConvWeights(
            weight.contiguous(),
            bias + extra_bias,
            padding=cast(tuple[int, int], self.conv.padding),
            stride=cast(tuple[int, int], self.conv.stride),
            dilation=cast(tuple[int, int], self.conv.dilation),
        )


class MultiScaleTemporalConv(nn.Module):
    """Four branches of ``out_channels / 4`` channels, concatenated: two dilated temporal convolutions
    (kernel 5, dilations 1 and 2), a 3-step max-pool and a strided 1x1 convolution (no residual).

    The branches' entry 1x1 convolutions (all four, or the first three when strided) run as one
    convolution whose output channels are then split; BatchNorms are applied per branch as usual.
    """

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

    def _branches(self) -> list[nn.Sequential]:
        return [b for b in self.branches if isinstance(b, nn.Sequential)]

    def _entries(self, x: Tensor, folded: bool) -> list[Tensor]:
        """The four branches' entry convolutions (+ BatchNorm folded in when ``folded``), ``(N, C/4, T, V)``
        each: one convolution for those at stride 1, one for the strided last branch if strided."""
        branches = self._branches()
        convs = [_typed(b[0], nn.Conv2d) for b in branches]
        wb: list[tuple[Tensor, Tensor | None]]
        if folded:
            wb = [fold_batchnorm(c, _typed(b[1], _BN)) for c, b in zip(convs, branches, strict=True)]
        else:
            wb = [(c.weight, c.bias) for c in convs]
        joint = len(convs) if self.stride == 1 else len(convs) - 1
        w = torch.cat([w for w, _ in wb[:joint]])
        b = torch.cat([b for _, b in wb[:joint] if b is not None])
        parts = list(conv2d(convs[0], x, w, b).split(self.branch_channels, dim=1))
        if joint < len(convs):
            parts.append(conv2d(convs[-1], x, *wb[-1]))
        return parts

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, T, V) -> (N, C, T / stride, V)`` channels-last."""
        if not self.training:
            return self._forward_folded(x)
        branches = self._branches()
        parts = self._entries(x, folded=False)
        outs = []
        for i, branch in enumerate(branches[: self.num_dilated]):
            outs.append(branch[3](F.relu(branch[1](parts[i]))))
        pool_branch = branches[self.num_dilated]
        pooled = pool_branch[3](F.relu(pool_branch[1](parts[self.num_dilated])))
        outs.append(pool_branch[4](pooled))
        outs.append(branches[-1][1](parts[-1]))
        return channels_last(torch.cat(outs, dim=1))

    def _forward_folded(self, x: Tensor) -> Tensor:
        """Eval mode: every BatchNorm folded into the convolution before it (the pooled branch's last one
        applied as a per-channel affine map)."""
        branches = self._branches()
        parts = self._entries(x, folded=True)
        outs = []
        for i, branch in enumerate(branches[: self.num_dilated]):
            outs.append(branch[3](F.relu(parts[i])))
        pool_branch = branches[self.num_dilated]
        pool = _typed(pool_branch[3], nn.MaxPool2d)
        pooled = F.max_pool2d(F.relu(parts[self.num_dilated]), pool.kernel_size, pool.stride, pool.padding)
        outs.append(_affine(pooled, *bn_affine(_typed(pool_branch[4], _BN))))
        outs.append(parts[-1])
        return channels_last(torch.cat(outs, dim=1))

    def inference_weights(self, residual: Tensor | None, residual_bias: Tensor | None, identity: bool) -> TCNWeights:
        """Eval-mode weights (:class:`TCNWeights`), with the unit's folded residual convolution
        ``residual (C, C_in)`` (or ``None``) whose bias ``(C,)`` goes into the branches' biases."""
        branches = self._branches()
        cb = self.branch_channels
        folded = [fold_batchnorm(_typed(b[0], nn.Conv2d), _typed(b[1], _BN)) for b in branches]
        extras = (folded[0][1].new_zeros(4 * cb) if residual_bias is None else residual_bias).split(cb)
        joint = len(folded) if self.stride == 1 else len(folded) - 1
        entry_biases = [b for _, b in folded[:joint]]
        if joint == len(folded):  # the last branch's bias also carries the residual's
            entry_biases[3] = entry_biases[3] + extras[3]
        pool = _typed(branches[self.num_dilated][3], nn.MaxPool2d)
        if (pool.kernel_size, pool.padding) != ((3, 1), (1, 0)):  # as MultiScaleTemporalConv builds it
            raise ValueError(f"the CPU inference path pools (3, 1) windows padded by (1, 0), not {pool}")
        scale, shift = bn_affine(_typed(branches[self.num_dilated][4], _BN))
        strided, strided_bias = None, None
        if joint < len(folded):
            strided, strided_bias = folded[3][0].flatten(1).contiguous(), (folded[3][1] + extras[3]).view(-1, 1)
        temporal = [_typed(b[3], TemporalConv).inference_weights(extras[i]) for i, b in enumerate(branches[:2])]
        return TCNWeights(
            branch_channels=cb,
            stride=self.stride,
            entry=torch.cat([w.flatten(1) for w, _ in folded[:joint]]).contiguous(),
            entry_bias=torch.cat(entry_biases).view(-1, 1),
            temporal=(temporal[0], temporal[1]),
            pool_scale=scale.view(1, -1, 1, 1),
            pool_shift=(shift + extras[2]).view(1, -1, 1, 1),
            strided=strided,
            strided_bias=strided_bias,
            residual=residual,
            identity=identity,
        )


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


def aggregate_channels_last(x: Tensor, A: Tensor) -> Tensor:
    """``y[n, c, t, u] = sum_v A[n, u, v, c] * x[n, c, t, v]`` for ``x (N, C, T, V)`` (any layout) and ``A
    (N, U, V, C)``, as a broadcast product summed over ``v``: under ``torch.compile`` Inductor makes it one
    loop nest over the channels-last layout; in eager mode it materialises ``(N, T, U, V, C)`` (tests only)."""
    return (x.permute(0, 2, 3, 1).unsqueeze(2) * A.unsqueeze(1)).sum(3).permute(0, 3, 1, 2)


class UnitGCN(nn.Module):
    """CTR-GCN's graph convolution ``(N, C_in, T, V) -> (N, C_out, T, V)`` (channels-last).

    Per subset ``k``: ``A_k = alpha * conv4(tanh(conv1(x)_u - conv2(x)_v)) + PA_k`` (temporal means of
    ``conv1``/``conv2``; shape ``(N, C_out, V, V)``) and ``y_k[n, c, t, u] = sum_v A_k[n, c, u, v] *
    conv3(x)[n, c, t, v]``; then ``relu(bn(sum_k y_k) + down(x))``.

    ``aggregation``: ``"graph_aggregate"`` (one :func:`tal.cuda_ops.graph_aggregate` call for all
    subsets), ``"fused"`` (:func:`aggregate_channels_last` per subset, for Inductor) or ``"auto"``
    (fused while ``torch.compile`` traces a CPU model, ``graph_aggregate`` otherwise).
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
        self.aggregation: Aggregation = "auto"

    def subsets(self) -> list[CTRGC]:
        return [c for c in self.convs if isinstance(c, CTRGC)]

    def _query(self, x: Tensor) -> Tensor:
        """``conv1`` and ``conv2`` of every subset on the temporal mean of ``x``: ``(N, V, 2, K, R)``."""
        n, _, _, v = x.shape
        convs = self.subsets()
        w12, b12 = _stack_1x1([c.conv1 for c in convs] + [c.conv2 for c in convs])
        return F.linear(x.mean(2).transpose(1, 2), w12, b12).view(n, v, 2, self.num_subset, self.rel_channels)

    def _topology_weight(self) -> Tensor:
        """``[alpha * conv4.weight | alpha * conv4.bias | 1]`` of every subset, ``(K, C, R + 2)``: with the
        relations extended by a row of ones and a row of ``PA`` (:meth:`_extend`), one product gives the
        refined topology ``alpha * conv4(rel) + PA`` without passes over it to add the bias and ``PA``."""
        convs = self.subsets()
        w4 = torch.stack([c.conv4.weight.flatten(1) for c in convs])  # (K, C, R)
        b4 = torch.stack([c.conv4.bias for c in convs if c.conv4.bias is not None]).unsqueeze(-1)
        return torch.cat([w4 * self.alpha, b4 * self.alpha, torch.ones_like(b4)], dim=-1)

    def _extend(self, rel: Tensor, pa: Tensor, dim: int) -> Tensor:
        """``rel`` with a row of ones and the row ``pa`` appended along ``dim`` (see :meth:`_topology_weight`)."""
        shape = list(rel.shape)
        shape[dim] = 1
        return torch.cat([rel, rel.new_ones(()).expand(shape), pa.expand(shape)], dim=dim)

    def _use_fused(self, x: Tensor) -> bool:
        if self.aggregation == "auto":
            return x.device.type == "cpu" and torch.compiler.is_compiling()
        return self.aggregation == "fused"

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C_in, T, V) -> (N, C_out, T, V)`` channels-last."""
        x = channels_last(x)
        folded = None if self.training else bn_affine(self.bn)  # eval: bn's scale goes into conv3
        y = self._aggregate_fused(x, folded) if self._use_fused(x) else self._aggregate(x, folded)
        if folded is None:
            y = self.bn(y)
        if not self.has_residual:
            out = channels_last(y) if folded is None else _affine(y, torch.ones_like(folded[1]), folded[1])
        elif self.down is not None:  # eval: bn's shift goes into the bias of down
            out = self._down(x, None if folded is None else folded[1]) + y
        else:
            out = x + y if folded is None else torch.add(x, y).add_(folded[1].view(1, -1, 1, 1))
        return F.relu(channels_last(out))

    def _conv3(self, folded: tuple[Tensor, Tensor] | None) -> list[tuple[Tensor, Tensor]]:
        """``conv3`` weights and biases of every subset, scaled by ``bn``'s eval scale when ``folded``."""
        out = []
        for c in self.subsets():
            w, b = c.conv3.weight, c.conv3.bias
            assert b is not None
            if folded is not None:
                w, b = w * folded[0].view(-1, 1, 1, 1), b * folded[0]
            out.append((w, b))
        return out

    def _aggregate(self, x: Tensor, folded: tuple[Tensor, Tensor] | None) -> Tensor:
        """All subsets through one ``graph_aggregate`` call: ``(N, C_out, T, V)``, contiguous."""
        n, _, t, v = x.shape
        k, r, c = self.num_subset, self.rel_channels, self.out_channels
        w3 = self._conv3(folded)
        conv3 = self.subsets()[0].conv3
        feats = conv2d(conv3, x, torch.cat([w for w, _ in w3]), torch.cat([b for _, b in w3]))  # (N, K*C, T, V)
        feats = feats.view(n, k, c, t, v).contiguous()  # the layout graph_aggregate's CPU path takes
        q = self._query(x).permute(2, 0, 3, 4, 1)  # (2, N, K, R, V)
        rel = torch.tanh(q[0].unsqueeze(-1) - q[1].unsqueeze(-2)).view(n, k, r, v * v)
        rel = self._extend(rel, self.PA.view(1, k, 1, v * v), dim=2)  # (N, K, R + 2, V * V)
        topology = torch.matmul(self._topology_weight(), rel).view(n, k, c, v, v)
        return graph_aggregate(feats, topology, sum_subsets=True)

    def _aggregate_fused(self, x: Tensor, folded: tuple[Tensor, Tensor] | None) -> Tensor:
        """Subset by subset with :func:`aggregate_channels_last`: ``(N, C_out, T, V)``, channels-last."""
        v = x.shape[3]
        q = self._query(x)
        rel = torch.tanh(q[:, :, None, 0] - q[:, None, :, 1])  # (N, U, V, K, R)
        weight = self._topology_weight()
        conv3 = self.subsets()[0].conv3
        y: Tensor | None = None
        for i, (w, b) in enumerate(self._conv3(folded)):
            rel_i = self._extend(rel[:, :, :, i], self.PA[i].view(1, v, v, 1), dim=3)  # (N, U, V, R + 2)
            z = aggregate_channels_last(conv2d(conv3, x, w, b), F.linear(rel_i, weight[i]))
            y = z if y is None else y + z
        assert y is not None
        return y

    def _down(self, x: Tensor, shift: Tensor | None) -> Tensor:
        """``down(x)``; in eval mode (``shift``: ``bn``'s eval shift) folded, plus ``shift``."""
        assert isinstance(self.down, nn.Sequential)
        conv, bn = _typed(self.down[0], nn.Conv2d), _typed(self.down[1], _BN)
        if shift is None:
            return bn(conv2d(conv, x))
        w, b = fold_batchnorm(conv, bn)
        return conv2d(conv, x, w, b + shift)

    def inference_weights(self) -> GCNWeights:
        """Eval-mode weights for :func:`tal.skeleton_lst.modeling.ctrgcn_inference.gcn_forward`."""
        convs = self.subsets()
        k, v = self.num_subset, self.PA.shape[-1]
        scale, shift = bn_affine(self.bn)
        query, query_bias = _stack_1x1([c.conv1 for c in convs] + [c.conv2 for c in convs])
        w3 = torch.stack([c.conv3.weight.flatten(1) for c in convs])  # (K, C, C_in)
        b3 = torch.stack([c.conv3.bias for c in convs if c.conv3.bias is not None])  # (K, C)
        features = torch.cat([w3, b3.unsqueeze(-1)], dim=-1) * scale.view(1, -1, 1)  # (K, C, C_in + 1)
        down, bias = None, shift
        if self.down is not None:
            assert isinstance(self.down, nn.Sequential)
            wd, bd = fold_batchnorm(_typed(self.down[0], nn.Conv2d), _typed(self.down[1], _BN))
            down, bias = wd.flatten(1).contiguous(), shift + bd
        # [alpha w4 | alpha b4 | 1] rewritten for sigmoid relations: tanh(d) = 2 sigmoid(2 d) - 1
        w4, b4, ones = self._topology_weight().split([self.rel_channels, 1, 1], dim=-1)
        topology = torch.cat([2 * w4, b4 - w4.sum(-1, keepdim=True), ones], dim=-1)
        return GCNWeights(
            query=2 * query,
            query_bias=2 * query_bias.view(-1, 1),
            topology=topology,
            pa=self.PA.reshape(k, v * v),
            features=features.transpose(0, 1).reshape(-1, features.shape[-1]).contiguous(),
            down=down,
            identity=self.has_residual and self.down is None,
            bias=bias,
        )


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
            return conv2d(self.conv, x, *fold_batchnorm(self.conv, self.bn))
        return self.bn(conv2d(self.conv, x))


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

    def inference_weights(self) -> UnitWeights:
        """Eval-mode weights for :func:`tal.skeleton_lst.modeling.ctrgcn_inference.unit_forward`."""
        residual, residual_bias = None, None
        if self.residual is not None:
            tcn = _typed(self.residual, UnitTCN)
            if tcn.conv.kernel_size != (1, 1):
                raise ValueError(f"the CPU inference path takes 1x1 residual convolutions, not {tcn.conv}")
            weight, residual_bias = fold_batchnorm(tcn.conv, tcn.bn)
            residual = weight.flatten(1).contiguous()
        tcn1 = _typed(self.tcn1, MultiScaleTemporalConv)
        return UnitWeights(
            _typed(self.gcn1, UnitGCN).inference_weights(),
            tcn1.inference_weights(residual, residual_bias, self.identity_residual),
        )

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
        self.cpu_inference = True  # False: eval on the CPU through the modules' own forward
        self._inference_cache: tuple[tuple[Any, ...], list[UnitWeights]] | None = None

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

    def uses_cpu_inference(self, x: Tensor) -> bool:
        """Whether :meth:`encode` runs ``x`` through :mod:`~tal.skeleton_lst.modeling.ctrgcn_inference`: eval
        mode, no gradient recorded, a float32 or float64 CPU input, not under ``torch.compile``,
        ``cpu_inference`` on."""
        return (
            self.cpu_inference
            and not self.training
            and not torch.is_grad_enabled()
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64)
            and not torch.compiler.is_compiling()
        )

    def inference_weights(self) -> list[UnitWeights]:
        """Every unit's eval-mode weights, prepared once and kept until a parameter or buffer of a unit
        changes (in place, by loading a state dict, or by moving the model)."""
        # every tensor of every unit (the modules' own dicts: parameters() would take several times longer)
        tensors = [
            t
            for unit in self.units()
            for m in unit.modules()
            for d in (m._parameters, m._buffers)
            for t in d.values()
            if t is not None
        ]
        key = tuple((t.data_ptr(), t._version) for t in tensors)  # a new dtype or device is a new data_ptr
        if self._inference_cache is None or self._inference_cache[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                weights = [_typed(unit, TCNGCNUnit).inference_weights() for unit in self.units()]
            self._inference_cache = (key, weights)
        return self._inference_cache[1]

    def encode(self, x: Tensor) -> Tensor:
        """Skeletons ``(N, C, T, V, M)`` -> final features ``(N, M, 256, T', V)`` (``T' = ceil(ceil(T/2)/2)``)."""
        self.check_input(x)
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n, m * v * c, t)
        x = self.data_bn(x)
        if self.uses_cpu_inference(x):  # joints-major (N*M, C + 1, V*T) buffers, see ctrgcn_inference
            buffer = x.new_empty(n * m, c + 1, v * t)
            buffer[:, :c].unflatten(2, (v, t)).copy_(x.view(n, m, v, c, t).transpose(2, 3).flatten(0, 1))
            buffer[:, c] = 1.0
            for weights in self.inference_weights():
                buffer = unit_forward(weights, buffer, t)
                t = (t - 1) // weights.tcn.stride + 1
            return buffer[:, :-1].unflatten(2, (v, t)).transpose(2, 3).unflatten(0, (n, m))
        x = x.view(n, m, v, c, t).permute(0, 1, 4, 2, 3).reshape(n * m, t, v, c).permute(0, 3, 1, 2)  # channels-last
        for unit in self.units():
            x = unit(x)
        return x.view(n, m, x.shape[1], x.shape[2], v)

    def __getstate__(self) -> dict[str, Any]:
        """Pickles and copies leave the prepared inference weights out (they are rebuilt on first use)."""
        state = dict(super().__getstate__())
        state["_inference_cache"] = None
        return state

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
