"""CTR-GCN inference on the CPU as a few large matrix products on prepared weights.

:class:`tal.skeleton_lst.modeling.ctrgcn.CTRGCN` runs its units through these functions when it is in
eval mode, no gradient is recorded and the input is float32 on the CPU (and not while ``torch.compile``
traces it). The weights are prepared once per state of the parameters (:meth:`TCNGCNUnit.inference_weights`:
every BatchNorm folded, the subsets' 1x1 convolutions stacked, biases merged) and the computation is the
release's, reordered, on standard ``(N, C, T, V)`` tensors:

* ``conv3`` of all subsets is one product ``W (C*K, C_in) @ x (C_in, V*T)`` on the input transposed to
  joints-major order, so that its output ``(N, C, K, V, T)`` holds, for every sample, channel and subset,
  a ``(V, T)`` matrix; the topologies are computed subset-major, ``(K, N, C, U, V)``, so the graph
  aggregation is ``K`` batched products ``(T, V) @ (V, U)`` over (sample, channel) accumulating into one
  output, on views of both (no copy of either);
* ``conv3``'s bias rides in the same product, as one more input row of ones;
* ``down`` and the units' 1x1 residual convolutions accumulate into the output of the product before them
  (``baddbmm_``), their biases folded into the others; the temporal block's four entry convolutions are one
  product; max-pooling after a ReLU is two ``maximum`` passes over shifted slices.

``tests/test_ctrgcn_inference.py`` checks these against the modules' own forward and the release's
per-subset computation (``tests/oracles/ctrgcn_einsum.py``); ``benchmarks/skeleton_lst_inference_cpu.py``
measures them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["GCNWeights", "TCNWeights", "TemporalConvWeights", "UnitWeights", "relu_max_pool", "unit_forward"]


@dataclass(frozen=True)
class GCNWeights:
    """One :class:`UnitGCN` in eval mode (``K`` subsets, ``R`` relation channels, ``C`` output channels).

    ``query (2*K*R, C_in)``/``query_bias (2*K*R, 1)``: ``conv1`` then ``conv2`` of every subset;
    ``topology (K, C, R + 2)``: ``[alpha * conv4.weight | alpha * conv4.bias | 1]`` per subset;
    ``pa (K, V*V)``: the learned adjacencies; ``features (C*K, C_in + 1)``: ``conv3`` of every subset
    scaled by ``bn``, rows in (channel, subset) order, its bias (scaled) as the last column;
    ``down (C, C_in)`` or ``None``: the folded ``down`` branch; ``identity``: add the input instead;
    ``bias (C,)``: ``bn``'s shift plus ``down``'s folded bias.
    """

    query: Tensor
    query_bias: Tensor
    topology: Tensor
    pa: Tensor
    features: Tensor
    down: Tensor | None
    identity: bool
    bias: Tensor


@dataclass(frozen=True)
class TemporalConvWeights:
    """A folded ``(5, 1)`` temporal convolution: ``weight (C_b, C_b, 5, 1)``, ``bias (C_b,)`` and its geometry."""

    weight: Tensor
    bias: Tensor
    padding: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]


@dataclass(frozen=True)
class TCNWeights:
    """One :class:`MultiScaleTemporalConv` and the unit's residual, in eval mode (``C_b = C / 4``).

    ``entry (E*C_b, C)``/``entry_bias (E*C_b, 1)``: the entry convolutions of the branches at stride 1
    (``E`` = 4, or 3 when strided); ``temporal``: the two dilated branches; ``pool_scale``/``pool_shift``
    ``(1, C_b, 1, 1)``: the pooled branch's last BatchNorm; ``strided``/``strided_bias``: the last branch's
    strided 1x1 convolution when ``stride > 1``; ``residual (C, C_in)`` or ``None``: the unit's folded 1x1
    residual convolution; ``identity``: add the unit's input instead. The residual's bias is already in the
    branches' biases.
    """

    branch_channels: int
    stride: int
    entry: Tensor
    entry_bias: Tensor
    temporal: tuple[TemporalConvWeights, TemporalConvWeights]
    pool_scale: Tensor
    pool_shift: Tensor
    strided: Tensor | None
    strided_bias: Tensor | None
    residual: Tensor | None
    identity: bool


@dataclass(frozen=True)
class UnitWeights:
    """One ``TCNGCNUnit``: its graph convolution and temporal block."""

    gcn: GCNWeights
    tcn: TCNWeights


def relu_max_pool(x: Tensor, stride: int) -> Tensor:
    """``max_pool2d(relu(x), (3, 1), (stride, 1), padding=(1, 0))`` for ``x (N, C, T, V)`` (any strides):
    ``(N, C, ceil(T / stride), V)``. After the ReLU every value is >= 0 and every window holds its centre,
    so padding with zeros gives the same maxima as the pool's -inf padding."""
    out = torch.relu(x[:, :, ::stride])
    t_out = out.shape[2]
    right = x[:, :, 1::stride]  # element t*stride + 1 of each window
    r = min(t_out, right.shape[2])
    torch.maximum(out[:, :, :r], right[:, :, :r], out=out[:, :, :r])
    left = x[:, :, stride - 1 :: stride]  # element t*stride - 1, for windows t >= 1
    lo = min(t_out - 1, left.shape[2])
    torch.maximum(out[:, :, 1 : 1 + lo], left[:, :, :lo], out=out[:, :, 1 : 1 + lo])
    return out


def gcn_forward(w: GCNWeights, x: Tensor) -> Tensor:
    """``relu(bn(sum_k A_k conv3_k(x)) + residual)``: ``x (N, C_in, T, V)`` contiguous -> ``(N, C, T, V)``."""
    n, c_in, t, v = x.shape
    k, c, r2 = w.topology.shape
    r = r2 - 2
    # the input joints-major, (C_in, V*T), plus a row of ones that carries conv3's bias (the last column
    # of w.features) through the same product
    xt = x.new_empty(n, c_in + 1, v * t)
    xt[:, :c_in].view(n, c_in, v, t).copy_(x.transpose(2, 3))
    xt[:, c_in] = 1.0
    q = torch.baddbmm(w.query_bias, w.query.expand(n, -1, -1), xt[:, :c_in].view(n, c_in, v, t).mean(3))
    q = q.view(n, 2, k, r, v)
    # the relations extended by a row of ones and one of PA (see UnitGCN._topology_weight), subsets first
    rel = x.new_empty(k, n, r2, v, v)
    torch.sub(q[:, 0, :, :, :, None].transpose(0, 1), q[:, 1, :, :, None, :].transpose(0, 1), out=rel[:, :, :r])
    rel[:, :, :r].tanh_()
    rel[:, :, r] = 1.0
    rel[:, :, r + 1] = w.pa.view(k, 1, v, v)
    topology = torch.matmul(w.topology.unsqueeze(1), rel.view(k, n, r2, v * v)).view(k, n * c, v, v)
    feats = torch.matmul(w.features, xt).view(n * c, k, v, t)  # conv3 (+ bias) of every subset
    y = torch.bmm(feats[:, 0].transpose(1, 2), topology[0].transpose(1, 2))  # (N*C, T, U)
    for i in range(1, k):
        y.baddbmm_(feats[:, i].transpose(1, 2), topology[i].transpose(1, 2))
    y = y.view(n, c, t * v)
    if w.down is not None:
        y.baddbmm_(w.down.expand(n, -1, -1), x.view(n, c_in, t * v))
    elif w.identity:
        y.add_(x.view(n, c_in, t * v))
    return y.view(n, c, t, v).add_(w.bias.view(1, -1, 1, 1)).relu_()


def tcn_forward(w: TCNWeights, g: Tensor, x: Tensor) -> Tensor:
    """The temporal block on ``g (N, C, T, V)`` plus the unit's residual of its input ``x (N, C_in, T, V)``,
    then the ReLU: ``(N, C, ceil(T / stride), V)``."""
    n, c, t, v = g.shape
    cb, s = w.branch_channels, w.stride
    entries = torch.baddbmm(w.entry_bias, w.entry.expand(n, -1, -1), g.view(n, c, t * v)).view(n, -1, t, v)
    outs = [
        F.conv2d(torch.relu(entries[:, i * cb : (i + 1) * cb]), tc.weight, tc.bias, tc.stride, tc.padding, tc.dilation)
        for i, tc in enumerate(w.temporal)
    ]
    pooled = relu_max_pool(entries[:, 2 * cb : 3 * cb], s)
    outs.append(torch.addcmul(w.pool_shift, pooled, w.pool_scale))
    t_out = pooled.shape[2]
    if w.strided is None:
        outs.append(entries[:, 3 * cb :])
    else:
        assert w.strided_bias is not None
        sub = g[:, :, ::s].reshape(n, c, t_out * v)
        outs.append(torch.baddbmm(w.strided_bias, w.strided.expand(n, -1, -1), sub).view(n, cb, t_out, v))
    out = torch.cat(outs, dim=1)
    if w.identity:
        out.add_(x)
    elif w.residual is not None:
        sub = x[:, :, ::s] if s > 1 else x
        out.view(n, c, t_out * v).baddbmm_(w.residual.expand(n, -1, -1), sub.reshape(n, -1, t_out * v))
    return out.relu_()


def unit_forward(w: UnitWeights, x: Tensor) -> Tensor:
    """One ``TCNGCNUnit`` in eval mode: ``x (N, C_in, T, V)`` contiguous -> ``(N, C, ceil(T / stride), V)``."""
    return tcn_forward(w.tcn, gcn_forward(w.gcn, x), x)
