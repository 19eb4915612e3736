"""CTR-GCN inference on the CPU as a few large matrix products on prepared weights.

:class:`tal.skeleton_lst.modeling.ctrgcn.CTRGCN` runs its units through these functions when it is in
eval mode, no gradient is recorded and the input is a float32/float64 CPU tensor (and not while
``torch.compile`` traces it). The weights are prepared once per state of the parameters
(:meth:`TCNGCNUnit.inference_weights`: every BatchNorm folded, the subsets' 1x1 convolutions stacked,
biases merged) and the computation is the release's, reordered:

* ``tanh`` of the relations is ``2 sigmoid(2 d) - 1`` with the factors folded into the weights (torch's
  ``tanh`` is several times slower than its ``sigmoid`` on the CPU);
* features stay joints-major, ``(N, C, V, T)`` stored as ``(N, C + 1, V*T)`` buffers whose last row is
  ones, so that ``conv3`` of all subsets *and its bias* is one product ``W (C*K, C_in + 1) @ x``; its
  output ``(N, C, K, V, T)`` holds, for every sample, channel and subset, the ``(V, T)`` matrix the graph
  aggregation contracts, and the topologies are computed subset-major ``(K, N, C, U, V)``, so the
  aggregation is ``K`` batched products ``(U, V) @ (V, T)`` over (sample, channel) accumulating into one
  output, on views of both (no copies);
* ``down`` accumulates into the aggregation's output (``baddbmm_``); the unit's 1x1 residual convolution's
  bias is folded into the branches' biases; the temporal block's four entry convolutions are one product
  and its branches write straight into the next unit's buffer (no concatenation); max-pooling after a ReLU
  is two ``maximum`` passes over shifted slices;
* only the two dilated temporal convolutions run time-major ``(N, C, T, V)`` (oneDNN's fastest layout for
  a ``(5, 1)`` kernel): their ReLU'd inputs are written transposed and their outputs read back transposed.

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

    ``query (2*K*R, C_in)``/``query_bias (2*K*R, 1)``: twice ``conv1`` then ``conv2`` of every subset;
    ``topology (K, C, R + 2)``: ``[2 alpha conv4.weight | alpha (conv4.bias - conv4.weight @ 1) | 1]`` per
    subset (so that with ``s = sigmoid(2 conv1 - 2 conv2)``, ``topology @ [s; 1; PA]`` is the release's
    ``alpha * conv4(tanh(conv1 - conv2)) + PA``, as ``tanh(d) = 2 sigmoid(2 d) - 1``);
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


def relu_max_pool(x: Tensor, stride: int, dim: int = 2) -> Tensor:
    """``max_pool(relu(x))`` over windows of 3 along ``dim`` (stride ``stride``, padding 1): the pooled
    branch's ``max_pool2d((3, 1), (stride, 1), (1, 0))`` for ``dim=2`` of ``(N, C, T, V)``. Output length
    ``ceil(L / stride)``. After the ReLU every value is >= 0 and every window holds its centre, so padding
    with zeros gives the same maxima as the pool's -inf padding."""
    out = torch.relu(x[_every(dim, 0, stride)])
    length = out.shape[dim]
    right = x[_every(dim, 1, stride)]  # element i*stride + 1 of window i
    r = min(length, right.shape[dim])
    torch.maximum(out.narrow(dim, 0, r), right.narrow(dim, 0, r), out=out.narrow(dim, 0, r))
    left = x[_every(dim, stride - 1, stride)]  # element i*stride - 1, for windows i >= 1
    lo = min(length - 1, left.shape[dim])
    torch.maximum(out.narrow(dim, 1, lo), left.narrow(dim, 0, lo), out=out.narrow(dim, 1, lo))
    return out


def _every(dim: int, start: int, step: int) -> tuple[slice, ...]:
    """The index ``[..., start::step]`` at position ``dim``."""
    return (slice(None),) * dim + (slice(start, None, step),)


def gcn_forward(w: GCNWeights, xb: Tensor, t: int) -> Tensor:
    """``relu(bn(sum_k A_k conv3_k(x)) + residual)`` on joints-major features: ``xb (N, C_in + 1, V*T)``
    holds ``x`` in its first ``C_in`` rows and ones in the last (conv3's bias rides on them) ->
    ``(N, C, V*T)``."""
    n, c_in = xb.shape[0], xb.shape[1] - 1
    v = xb.shape[2] // t
    k, c, r2 = w.topology.shape
    r = r2 - 2
    x = xb[:, :c_in]
    q = torch.baddbmm(w.query_bias, w.query.expand(n, -1, -1), x.unflatten(2, (v, t)).mean(3)).view(n, 2, k, r, v)
    # sigmoid relations extended by a row of ones and one of PA (see GCNWeights.topology), subsets first
    rel = xb.new_empty(k, n, r2, v, v)
    torch.sub(q[:, 0, :, :, :, None].transpose(0, 1), q[:, 1, :, :, None, :].transpose(0, 1), out=rel[:, :, :r])
    rel[:, :, :r].sigmoid_()  # tanh(d) = 2 sigmoid(2 d) - 1: the 2s and the -1 are in the weights
    rel[:, :, r] = 1.0
    rel[:, :, r + 1] = w.pa.view(k, 1, v, v)
    topology = torch.matmul(w.topology.unsqueeze(1), rel.view(k, n, r2, v * v)).view(k, n * c, v, v)
    feats = torch.matmul(w.features, xb).view(n * c, k, v, t)  # conv3 (+ bias) of every subset
    y = torch.bmm(topology[0], feats[:, 0])  # (N*C, U, T)
    for i in range(1, k):
        y.baddbmm_(topology[i], feats[:, i])
    y = y.view(n, c, v * t)
    if w.down is not None:
        y.baddbmm_(w.down.expand(n, -1, -1), x)
    elif w.identity:
        y.add_(x)
    return y.add_(w.bias.view(1, -1, 1)).relu_()


def tcn_forward(w: TCNWeights, g: Tensor, xb: Tensor, t: int) -> Tensor:
    """The temporal block on joints-major ``g (N, C, V*T)`` plus the unit's residual of its input (the
    first rows of ``xb``, as :func:`gcn_forward`), then the ReLU: a new ``(N, C + 1, V*T')`` buffer,
    ``T' = ceil(T / stride)``, holding the output and a last row of ones for the next unit."""
    n, c, vt = g.shape
    v = vt // t
    cb, s = w.branch_channels, w.stride
    t_out = (t - 1) // s + 1
    entries = torch.baddbmm(w.entry_bias, w.entry.expand(n, -1, -1), g).view(n, -1, v, t)
    out_buffer = g.new_empty(n, c + 1, v * t_out)
    out_buffer[:, c] = 1.0
    out = out_buffer[:, :c].unflatten(2, (v, t_out))  # (N, C, V, T')
    for i, tc in enumerate(w.temporal):  # the dilated convolutions time-major, their fastest layout
        inp = g.new_empty(n, cb, t, v)
        torch.clamp_min(entries[:, i * cb : (i + 1) * cb].transpose(2, 3), 0.0, out=inp)
        conv = F.conv2d(inp, tc.weight, tc.bias, tc.stride, tc.padding, tc.dilation)
        out[:, i * cb : (i + 1) * cb].copy_(conv.transpose(2, 3))
    pooled = relu_max_pool(entries[:, 2 * cb : 3 * cb], s, dim=3)
    torch.addcmul(w.pool_shift, pooled, w.pool_scale, out=out[:, 2 * cb : 3 * cb])
    if w.strided is None:
        out[:, 3 * cb :].copy_(entries[:, 3 * cb :])
    else:
        assert w.strided_bias is not None
        sub = g.view(n, c, v, t)[:, :, :, ::s].reshape(n, c, v * t_out)
        out[:, 3 * cb :].copy_(torch.baddbmm(w.strided_bias, w.strided.expand(n, -1, -1), sub).view(n, cb, v, t_out))
    x = xb[:, :-1]
    if w.identity:
        out.add_(x.unflatten(2, (v, t)))
    elif w.residual is not None:
        sub = x.unflatten(2, (v, t))[:, :, :, ::s].reshape(n, -1, v * t_out) if s > 1 else x
        out_buffer[:, :c].baddbmm_(w.residual.expand(n, -1, -1), sub)
    out.relu_()
    return out_buffer


def unit_forward(w: UnitWeights, xb: Tensor, t: int) -> Tensor:
    """One ``TCNGCNUnit`` in eval mode on a joints-major buffer ``xb (N, C_in + 1, V*T)`` (input rows, then
    ones) -> the next unit's buffer ``(N, C + 1, V*T')``."""
    return tcn_forward(w.tcn, gcn_forward(w.gcn, xb, t), xb, t)
