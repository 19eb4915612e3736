"""The CPU inference path (``modeling/ctrgcn_inference.py``) against the release's per-subset einsum
computation, the modules' own forward, and torch's max-pool; when it applies and when its prepared
weights are rebuilt."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from oracles.ctrgcn_einsum import ctrgcn_logits
from test_modeling import assert_scaled_close, randomise

from tal.skeleton_lst import build_model
from tal.skeleton_lst.modeling.ctrgcn_inference import relu_max_pool


def eval_model(name: str, num_class: int, dataset: str, modality: str, stats_shape: tuple[int, ...]):
    """A randomised model (see ``randomise``) in eval mode, BatchNorm statistics from ``stats_shape`` inputs."""
    model = build_model(name, num_class, dataset, modality)
    randomise(model, stats_shape)
    return model.eval()


@pytest.mark.parametrize(
    "name,num_class,dataset,modality,shape",
    [
        ("ctrgcn", 60, "ntu", "joint", (2, 3, 16, 25, 2)),
        ("lst", 60, "ntu", "joint", (1, 3, 13, 25, 2)),  # odd lengths through both strided units
        ("lst", 60, "ntu", "bone", (2, 3, 6, 25, 2)),
        ("lst", 10, "ucla", "joint", (3, 3, 10, 20, 1)),
        ("ctrgcn", 10, "ucla", "bone", (2, 3, 1, 20, 1)),  # one frame
    ],
)
def test_cpu_inference_equals_einsum_oracle(name, num_class, dataset, modality, shape) -> None:
    """In float64 the matrix-product path and the release's per-subset einsum agree to rounding."""
    model = build_model(name, num_class, dataset, modality).double()
    randomise(model, (2, shape[1], max(shape[2], 8), *shape[3:]))  # statistics of more than one frame
    x = torch.randn(shape, dtype=torch.float64)
    with torch.no_grad():
        assert model.eval().uses_cpu_inference(x)
        got = model(x)
        want = ctrgcn_logits(model, model.apply_modality(x)) if name == "lst" else ctrgcn_logits(model, x)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_cpu_inference_equals_module_forward_in_float32() -> None:
    """NTU shapes in float32 (the benchmark's): within 1e-5 of the modules' own eval forward."""
    model = eval_model("lst", 60, "ntu", "joint", (4, 3, 64, 25, 2))
    x = torch.randn(2, 3, 64, 25, 2)
    with torch.inference_mode():
        fast = model(x)
        model.cpu_inference = False
        assert not model.uses_cpu_inference(x)
        slow = model(x)
    assert_scaled_close(fast, slow, tol=1e-5)


def test_prepared_weights_are_reused_and_rebuilt_when_parameters_change() -> None:
    model = eval_model("ctrgcn", 10, "ucla", "joint", (2, 3, 8, 20, 1))
    x = torch.randn(2, 3, 8, 20, 1)
    with torch.no_grad():
        before = model(x)
        weights = model.inference_weights()
        assert model.inference_weights() is weights  # nothing changed: the same prepared weights
        model.l4.gcn1.alpha.add_(0.5)  # in place
        assert model.inference_weights() is not weights
        model.cpu_inference = False
        want = model(x)
        model.cpu_inference = True
        got = model(x)
    assert not torch.allclose(before, got)
    assert_scaled_close(got, want)
    other = eval_model("ctrgcn", 10, "ucla", "joint", (2, 3, 8, 20, 1))
    model.load_state_dict(other.state_dict())  # copies into the same tensors
    with torch.no_grad():
        assert_scaled_close(model(x), other(x))
        model.double()  # new tensors
        assert_scaled_close(model(x.double()), other(x).double())


def test_gradients_and_training_use_the_modules() -> None:
    model = build_model("ctrgcn", 10, "ucla", "joint").eval()
    x = torch.randn(1, 3, 4, 20, 1, requires_grad=True)
    assert not model.uses_cpu_inference(x)  # eval with autograd (e.g. input saliency)
    model(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.no_grad():
        assert model.uses_cpu_inference(x)
        assert not model.train().uses_cpu_inference(x)
        assert not model.eval().uses_cpu_inference(x.half())


def test_state_dict_and_pickles_leave_the_prepared_weights_out() -> None:
    model = build_model("ctrgcn", 10, "ucla", "joint").eval()
    keys = list(model.state_dict())
    with torch.no_grad():
        out = model(torch.ones(1, 3, 4, 20, 1))
    assert list(model.state_dict()) == keys
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert clone._inference_cache is None
        with torch.no_grad():
            torch.testing.assert_close(clone(torch.ones(1, 3, 4, 20, 1)), out)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("t", [1, 2, 3, 16, 17])
def test_relu_max_pool_equals_torch(stride: int, t: int) -> None:
    x = torch.randn(2, 5, t, 3)
    want = F.max_pool2d(torch.relu(x), (3, 1), (stride, 1), (1, 0))
    torch.testing.assert_close(relu_max_pool(x, stride), want, atol=0, rtol=0)
    strided = torch.randn(2, 10, t, 3)[:, 2:7]  # a channel slice, as the temporal block passes it
    want = F.max_pool2d(torch.relu(strided), (3, 1), (stride, 1), (1, 0))
    torch.testing.assert_close(relu_max_pool(strided, stride), want, atol=0, rtol=0)
