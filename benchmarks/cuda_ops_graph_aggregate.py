"""graph_aggregate forward+backward on CPU at CTR-GCN shapes: C++ kernel vs torch.einsum.

Shapes: N=16, (C, T) in {(64, 64), (128, 32), (256, 16)}, V=25, three subsets
(refined per-subset topology summed over subsets, as CTR-GCN's unit_gcn does;
and a shared (K, V, V) adjacency). Each variant is timed as forward + backward
(gradients for x and A), interleaved round by round, best of the rounds.

Prints, per shape: einsum (autograd through torch.einsum, the baseline), the C++
kernel (torch.ops.tal_ops_ext fwd + bwd) and the public op as dispatched, with
their speed relative to einsum. On a shared machine use --threads 1: with two
threads every variant is at the mercy of the other processes (OpenMP barriers).
Run: python benchmarks/cuda_ops_graph_aggregate.py [--rounds 15] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch
from cuda_ops_common import best_of

import tal.cuda_ops as ops
from tal.cuda_ops import _backend


def refined_case(c: int, t: int, n: int = 16, k: int = 3, v: int = 25) -> dict:
    x = torch.randn(n, k, c, t, v)
    a = torch.randn(n, k, c, v, v)
    g = torch.randn(n, c, t, v)

    def einsum() -> None:
        xx, aa = x.detach().requires_grad_(), a.detach().requires_grad_()
        torch.einsum("nkcuv,nkctv->nctu", aa, xx).backward(g)

    def op() -> None:
        xx, aa = x.detach().requires_grad_(), a.detach().requires_grad_()
        ops.graph_aggregate(xx, aa, sum_subsets=True).backward(g)

    def ext() -> None:
        torch.ops.tal_ops_ext.graph_refined_fwd(x, a, True)
        torch.ops.tal_ops_ext.graph_refined_bwd(g, x, a, True, True, True)

    return {"einsum": einsum, "op": op, "ext": ext}


def shared_case(c: int, t: int, n: int = 16, k: int = 3, v: int = 25) -> dict:
    x = torch.randn(n, c, t, v)
    a = torch.randn(k, v, v)
    g = torch.randn(n, k, c, t, v)

    def einsum() -> None:
        xx, aa = x.detach().requires_grad_(), a.detach().requires_grad_()
        torch.einsum("kuv,nctv->nkctu", aa, xx).backward(g)

    def op() -> None:
        xx, aa = x.detach().requires_grad_(), a.detach().requires_grad_()
        ops.graph_aggregate(xx, aa).backward(g)

    def ext() -> None:
        torch.ops.tal_ops_ext.graph_shared_fwd(x, a, False)
        torch.ops.tal_ops_ext.graph_shared_bwd(g, x, a, False, True, True)

    return {"einsum": einsum, "op": op, "ext": ext}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dispatch = ops.backend_info()["graph_aggregate"]["cpu"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; CPU dispatch: {dispatch.impl}")
    if not _backend.EXT.loaded:
        print("compiled kernels not loaded: the C++ column is skipped")
    for c, t in [(64, 64), (128, 32), (256, 16)]:
        for name, fns in (("refined", refined_case(c, t)), ("shared ", shared_case(c, t))):
            if not _backend.EXT.loaded:
                del fns["ext"]
            res = best_of(fns, args.rounds)
            line = f"{name} N=16 K=3 C={c} T={t} V=25 fwd+bwd: einsum {res['einsum']:.2f} ms"
            if "ext" in res:
                line += f", C++ {res['ext']:.2f} ms (C++ speed = {res['einsum'] / res['ext']:.2f}x einsum)"
            print(line + f", op as dispatched {res['op']:.2f} ms (op speed = {res['einsum'] / res['op']:.2f}x einsum)")


if __name__ == "__main__":
    main()
