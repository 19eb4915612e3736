"""CTR-GCN / LST models: release key parity, logits vs the einsum oracle, modality, loss, logit scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import REFERENCE, need_shared
from oracles.ctrgcn_einsum import ctrgcn_logits, lst_outputs
from oracles.lst_loss_loops import cosine_logits, kl_loss_rows

from tal.cuda_ops import graph_aggregate
from tal.skeleton_lst import build_model
from tal.skeleton_lst.modeling.lst import LSTOutput, contrastive_kl, lst_loss, similarity_logits

RELEASE = [
    ("ctrgcn_ntu60", "ctrgcn", 60, "ntu", "joint"),
    ("ctrgcn_ntu120", "ctrgcn", 120, "ntu", "joint"),
    ("ctrgcn_ucla", "ctrgcn", 10, "ucla", "joint"),
    ("lst4part_ntu60", "lst", 60, "ntu", "joint"),
    ("lst4part_ntu120", "lst", 120, "ntu", "joint"),
    ("lst4part_ucla", "lst", 10, "ucla", "joint"),
    ("lst4part_bone_ntu60", "lst", 60, "ntu", "bone"),
]


def read_tsv(name: str) -> tuple[list[tuple[str, str]], dict[str, int]]:
    path = need_shared(REFERENCE / "state_dicts" / f"{name}.tsv")
    rows, totals = [], {}
    for line in path.read_text().splitlines():
        if line.startswith("# total_parameters"):
            totals["params"] = int(line.split("\t")[1])
        elif line.startswith("# num_state_dict_keys"):
            totals["keys"] = int(line.split("\t")[1])
        elif not line.startswith("#") and line.strip():
            key, shape = line.split("\t")
            rows.append((key, shape))
    return rows, totals


@pytest.mark.parametrize("tsv,name,num_class,dataset,modality", RELEASE)
def test_state_dict_matches_release_listing(tsv: str, name: str, num_class: int, dataset: str, modality: str) -> None:
    rows, totals = read_tsv(tsv)
    model = build_model(name, num_class, dataset, modality)
    sd = model.state_dict()
    assert [k for k, _ in rows] == list(sd)
    assert all(str(tuple(sd[k].shape)) == shape for k, shape in rows)
    assert len(sd) == totals["keys"]
    assert sum(p.numel() for p in model.parameters()) == totals["params"]
    # a state dict with exactly the release's keys loads strictly
    fresh = build_model(name, num_class, dataset, modality)
    fresh.load_state_dict(sd, strict=True)


def assert_scaled_close(got: torch.Tensor, want: torch.Tensor, tol: float = 1e-5) -> None:
    """``|got - want| <= tol * max(1, max |want|)``: float32 agreement relative to the tensor's scale."""
    scale = max(1.0, float(want.abs().max()))
    assert float((got - want).abs().max()) <= tol * scale, float((got - want).abs().max())


def randomise(model: torch.nn.Module, shape: tuple[int, ...]) -> None:
    """Non-zero alpha, BatchNorm affine weights around 1 and running statistics of real activations
    (one train-mode pass with a cumulative average), so every term of the forward matters and the
    eval-mode activations stay of order one."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("alpha"):
                p.fill_(0.7)
            elif "bn" in name and name.endswith("weight"):
                p.copy_(0.8 + 0.4 * torch.rand(p.shape, generator=g))
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = None
                m.reset_running_stats()
        model.train()
        dtype = next(model.parameters()).dtype
        model(torch.randn(shape, generator=g, dtype=torch.float64).to(dtype))


@pytest.mark.parametrize(
    "name,num_class,dataset,modality,shape",
    [
        ("ctrgcn", 60, "ntu", "joint", (2, 3, 8, 25, 2)),
        ("ctrgcn", 10, "ucla", "joint", (2, 3, 13, 20, 1)),
        ("lst", 60, "ntu", "joint", (2, 3, 8, 25, 2)),
        ("lst", 60, "ntu", "bone", (2, 3, 6, 25, 2)),
        ("lst", 10, "ucla", "joint", (3, 3, 10, 20, 1)),
        ("lst", 10, "ucla", "bone", (2, 3, 7, 20, 1)),
    ],
)
def test_eval_outputs_equal_einsum_oracle(name, num_class, dataset, modality, shape) -> None:
    """In float64 the rearranged forward and the release's per-subset einsum agree to rounding."""
    model = build_model(name, num_class, dataset, modality).double()
    randomise(model, shape)
    model.eval()
    x = torch.randn(shape, dtype=torch.float64)
    with torch.no_grad():
        got = model(x)
        want = ctrgcn_logits(model, model.apply_modality(x)) if name == "lst" else ctrgcn_logits(model, x)
        assert got.shape == (shape[0], num_class)
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)
        if name == "lst":
            logits, glob, parts = lst_outputs(model, x)
            out = model.forward_features(x)
            torch.testing.assert_close(out.logits, logits, atol=1e-10, rtol=1e-10)
            torch.testing.assert_close(out.logits, got, atol=1e-12, rtol=1e-12)
            torch.testing.assert_close(out.global_feature, glob, atol=1e-10, rtol=1e-10)
            for a, b in zip(out.part_features, parts, strict=True):
                torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_float32_logits_within_1e5_of_einsum_oracle() -> None:
    """NTU shapes in float32 with BatchNorm statistics of real activations: logits within 1e-5 (relative
    to their scale) of the release's computation."""
    model = build_model("lst", 60, "ntu", "joint")
    randomise(model, (4, 3, 32, 25, 2))
    model.eval()
    x = torch.randn(2, 3, 32, 25, 2)
    with torch.no_grad():
        assert_scaled_close(model(x), lst_outputs(model, x)[0], tol=1e-5)


def test_training_mode_and_gradients_match_oracle() -> None:
    model = build_model("lst", 60, "ntu", "bone").double()
    x = torch.randn(2, 3, 6, 25, 2, dtype=torch.float64)
    randomise(model, tuple(x.shape))
    model.train()
    out = model.forward_features(x)
    ref_logits, ref_glob, ref_parts = lst_outputs(model, x)
    torch.testing.assert_close(out.logits, ref_logits, atol=1e-10, rtol=1e-10)
    (out.logits.square().sum() + out.global_feature.sum() + out.part_features[1].sum()).backward()
    fast = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    (ref_logits.square().sum() + ref_glob.sum() + ref_parts[1].sum()).backward()
    for n, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(fast[n], p.grad, atol=1e-8, rtol=1e-8, msg=n)


def test_graph_aggregate_equals_einsum_per_subset() -> None:
    n, k, c, t, v = 2, 3, 8, 5, 25
    x = torch.randn(n, k, c, t, v, dtype=torch.float64)
    A = torch.randn(n, k, c, v, v, dtype=torch.float64)
    got = graph_aggregate(x, A, sum_subsets=True)
    want = sum(torch.einsum("ncuv,nctv->nctu", A[:, i], x[:, i]) for i in range(k))
    torch.testing.assert_close(got, want)


def test_modality_transform_inside_the_model() -> None:
    x = torch.randn(2, 3, 4, 25, 2)
    joint = build_model("lst", 60, "ntu", "joint")
    assert joint.modality_is_identity and torch.equal(joint.apply_modality(x), x)
    bone = build_model("lst", 60, "ntu", "bone")
    y = bone.apply_modality(x)
    torch.testing.assert_close(y[:, :, :, 0], x[:, :, :, 0] - x[:, :, :, 1])  # joint 1 minus its parent 2
    ucla = build_model("lst", 10, "ucla", "joint")
    assert not ucla.modality_is_identity
    u = torch.randn(1, 3, 4, 20, 1)
    torch.testing.assert_close(ucla.apply_modality(u)[:, :, :, 2], u[:, :, :, 2] - u[:, :, :, 15] - u[:, :, :, 19])
    assert "modality" not in bone.state_dict()


def test_logit_scale_is_used_as_is() -> None:
    model = build_model("lst", 60, "ntu")
    assert model.logit_scale.shape == (1, 5)
    assert torch.allclose(model.logit_scale, torch.full((1, 5), math.log(1 / 0.07)))
    f = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    s2t, t2s = similarity_logits(f, t, torch.tensor(2.5))
    # scale * cosine, no exp: cos(e1, e1) = 1, cos(e1, (1,1)) = 1/sqrt(2), cos(e2, e1) = 0
    want = torch.tensor([[2.5, 2.5 / math.sqrt(2)], [0.0, 2.5 / math.sqrt(2)]])
    torch.testing.assert_close(s2t, want)
    torch.testing.assert_close(t2s, want.t())


def test_contrastive_kl_by_hand() -> None:
    # two samples, different labels, logits s * I: KL(softmax(10 I) || softmax(s I)) per row, mean over rows
    s = 2.0
    logits = torch.tensor([[s, 0.0], [0.0, s]])
    match = torch.eye(2)
    p_hi = math.exp(10) / (math.exp(10) + 1)
    q_hi = math.exp(s) / (math.exp(s) + 1)
    row = p_hi * math.log(p_hi / q_hi) + (1 - p_hi) * math.log((1 - p_hi) / (1 - q_hi))
    assert float(contrastive_kl(logits, match)) == pytest.approx(row, rel=1e-6)
    # same label everywhere: target uniform
    same = torch.ones(2, 2)
    q = torch.softmax(logits, 1)
    want = float(sum(0.5 * math.log(0.5 / float(q[i, j])) for i in range(2) for j in range(2)) / 2)
    assert float(contrastive_kl(logits, same)) == pytest.approx(want, rel=1e-6)


def test_lst_loss_against_loop_oracle() -> None:
    g = torch.Generator().manual_seed(3)
    b, d, k = 6, 8, 4
    labels = torch.tensor([0, 1, 1, 2, 3, 0])
    feats = [torch.randn(b, d, generator=g) for _ in range(5)]
    texts = [torch.randn(b, d, generator=g) for _ in range(5)]
    scale = torch.tensor([[2.0, 1.5, 3.0, 2.5, 1.0]])
    logits = torch.randn(b, k, generator=g)
    out = LSTOutput(logits, feats[0], scale, feats[1:])
    losses = lst_loss(out, labels, texts[0], texts[1:], alpha=0.8)
    terms = []
    for i in range(5):
        s2t = cosine_logits(feats[i].tolist(), texts[i].tolist(), float(scale[0, i]))
        t2s = [list(col) for col in zip(*s2t, strict=True)]
        terms.append((kl_loss_rows(s2t, labels.tolist()) + kl_loss_rows(t2s, labels.tolist())) / 2)
    ce = float(torch.nn.functional.cross_entropy(logits, labels))
    assert float(losses["contrastive"]) == pytest.approx(sum(terms) / 5, rel=1e-5)
    assert float(losses["loss"]) == pytest.approx(ce + 0.8 * sum(terms) / 5, rel=1e-5)


def test_text_branch_of_another_width_loads() -> None:
    release = build_model("lst", 60, "ntu")  # 512-d CLIP projections
    small = build_model("lst", 60, "ntu", text_dim=256)
    small_before = {k: v.clone() for k, v in small.state_dict().items() if k.startswith(("linear_head", "part_list"))}
    small.load_state_dict(release.state_dict(), strict=True)
    for k, v in small.state_dict().items():
        if k in small_before:
            assert torch.equal(v, small_before[k])  # kept its own text projections
        else:
            assert torch.equal(v, release.state_dict()[k])
    release.eval(), small.eval()
    x = torch.randn(1, 3, 8, 25, 2)
    with torch.no_grad():
        torch.testing.assert_close(small(x), release(x))


def test_input_shape_errors_are_clear() -> None:
    model = build_model("ctrgcn", 60, "ntu")
    with pytest.raises(ValueError, match=r"\(N, 3, T, 25, 2\)"):
        model(torch.randn(1, 3, 8, 20, 2))
    with pytest.raises(ValueError, match="dataset"):
        build_model("lst", 60, "kinetics")


def test_batch_contract() -> None:
    model = build_model("ctrgcn", 5, "ucla")
    batch = {"inputs": torch.randn(3, 3, 8, 20, 1), "labels": torch.tensor([0, 1, 4])}
    losses = model(batch)
    assert set(losses) >= {"loss"} and losses["loss"].requires_grad
    model.eval()
    with torch.no_grad():
        preds = model(batch)
    assert len(preds) == 3 and preds[0].shape == (5,)
    assert np.isfinite(torch.stack(preds).numpy()).all()
