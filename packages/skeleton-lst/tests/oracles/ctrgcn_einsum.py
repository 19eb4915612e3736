"""The release's CTR-GCN / LST forward written plainly: one subset at a time with ``torch.einsum``.

Reads the parameters of a :class:`~tal.skeleton_lst.modeling.ctrgcn.CTRGCN` (or ``LSTModel``) and
computes what the release's ``model/ctrgcn.py`` computes, line by line in its order: ``conv1(x).mean``
of each subset, ``tanh`` of the pairwise differences, ``conv4 * alpha + PA[i]``, then
``einsum('ncuv,nctv->nctu')`` per subset, summed. Used by the tests as the expected values and by the
benchmark as the plain fp32 eager baseline (it is differentiable: it uses the model's parameters).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    return F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation)


def _bn(bn: nn.BatchNorm2d | nn.BatchNorm1d, x: Tensor) -> Tensor:
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.training, bn.momentum or 0.1, bn.eps)


def unit_gcn(gcn, x: Tensor) -> Tensor:
    y = None
    for i, sub in enumerate(gcn.convs):
        x1 = _conv(sub.conv1, x).mean(-2)
        x2 = _conv(sub.conv2, x).mean(-2)
        x3 = _conv(sub.conv3, x)
        rel = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))
        a = _conv(sub.conv4, rel) * gcn.alpha + gcn.PA[i].unsqueeze(0).unsqueeze(0)
        z = torch.einsum("ncuv,nctv->nctu", a, x3)
        y = z if y is None else y + z
    y = _bn(gcn.bn, y)
    if gcn.down is not None:
        y = y + _bn(gcn.down[1], _conv(gcn.down[0], x))
    else:
        y = y + x
    return F.relu(y)


def ms_tcn(tcn, x: Tensor) -> Tensor:
    outs = []
    for branch in tcn.branches:
        out = x
        for layer in branch:
            if isinstance(layer, nn.Conv2d):
                out = _conv(layer, out)
            elif isinstance(layer, nn.BatchNorm2d):
                out = _bn(layer, out)
            elif isinstance(layer, nn.ReLU):
                out = F.relu(out)
            elif isinstance(layer, nn.MaxPool2d):
                out = F.max_pool2d(out, layer.kernel_size, layer.stride, layer.padding)
            else:  # TemporalConv
                out = _bn(layer.bn, _conv(layer.conv, out))
        outs.append(out)
    return torch.cat(outs, dim=1)


def unit(layer, x: Tensor) -> Tensor:
    y = ms_tcn(layer.tcn1, unit_gcn(layer.gcn1, x))
    if layer.identity_residual:
        y = y + x
    elif layer.residual is not None:
        y = y + _bn(layer.residual.bn, _conv(layer.residual.conv, x))
    return F.relu(y)


def encode(model, x: Tensor) -> Tensor:
    """``(N, C, T, V, M)`` -> ``(N, M, C', T', V)``, the release's ``Model.forward`` up to the pooling."""
    n, c, t, v, m = x.shape
    x = x.permute(0, 4, 3, 1, 2).contiguous().view(n, m * v * c, t)
    x = _bn(model.data_bn, x)
    x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).contiguous().view(n * m, c, t, v)
    for i in range(1, 11):
        x = unit(getattr(model, f"l{i}"), x)
    return x.view(n, m, x.shape[1], x.shape[2], v)


def ctrgcn_logits(model, x: Tensor) -> Tensor:
    feats = encode(model, x)
    n, m, c = feats.shape[:3]
    return F.linear(feats.reshape(n, m, c, -1).mean(3).mean(1), model.fc.weight, model.fc.bias)


def lst_outputs(model, x: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
    """LST's (logits, global feature, [head, hand, hip, foot]) as ``Model_lst_4part.forward``:
    ``(n m t) v c`` rows multiplied by ``I - A^k``, then CTR-GCN, part means over V, T, then M."""
    n, c, t, v, m = x.shape
    rows = x.permute(0, 4, 2, 3, 1).reshape(n * m * t, v, c)
    rows = model.modality.expand(n * m * t, -1, -1) @ rows
    x = rows.view(n, m, t, v, c).permute(0, 4, 2, 3, 1)
    feats = encode(model, x)
    parts = []
    for proj, idx in zip(model.part_list, model.part_indices(), strict=True):
        parts.append(F.linear(feats[:, :, :, :, idx].mean(4).mean(3).mean(1), proj.weight, proj.bias))
    pooled = feats.reshape(n, m, feats.shape[2], -1).mean(3).mean(1)
    head = model.linear_head[model.text_head]
    return F.linear(pooled, model.fc.weight, model.fc.bias), F.linear(pooled, head.weight, head.bias), parts
