"""The package's layering: no import cycle, each module importable on its own, one dispatch path.

Layers (a module may import only from the layers below it)::

    __init__, __main__                      public API, CLI
    nms, batched_nms, segment_iou,          validation + docstring + one call through _ops
    graph_aggregate
    _ops                                    torch.ops.tal_ops registration, plain-eager call path
    _backend                                kernel(op, device): which implementation, with its limits
    _composite                              op bodies over a backend's primitives
    _reference, _checks, _cpu/, _triton/    leaves (torch, and their own folder only)
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import tal.cuda_ops as ops
from tal.cuda_ops import _backend

PKG_DIR = Path(ops.__file__).resolve().parent
PKG = "tal.cuda_ops"
PUBLIC = {"nms", "batched_nms", "segment_iou", "graph_aggregate"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG_DIR).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([PKG, *parts])


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG_DIR.rglob("*.py"))}


def _imports(name: str, path: Path, module_level: bool = False) -> set[str]:
    """Package modules imported by ``name`` (static, from its source; also in functions unless ``module_level``)."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    modules = _modules()
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in tree.body if module_level else ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from X import a`: the module X.a if there is one, else X itself
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    return {name: _imports(name, path) for name, path in _modules().items()}


def test_static_import_graph_has_no_cycle():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = [*stack[stack.index(dep) :], dep] if dep in stack else [node, dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def _short(name: str) -> str:
    return name[len(PKG) + 1 :] if name != PKG else "__init__"


def test_layers():
    graph = {_short(k): {_short(v) for v in deps} for k, deps in _graph().items()}
    for leaf in ("_reference", "_checks"):
        assert graph[leaf] == set(), f"{leaf} must import only torch, imports {graph[leaf]}"
    for name, deps in graph.items():
        for folder in ("_cpu", "_triton"):
            if name.startswith(folder):
                outside = {d for d in deps if not d.startswith(folder)}
                assert not outside, f"{name} reaches outside {folder}/: {outside}"
        if name in PUBLIC:
            assert deps <= {"_ops", "_checks"}, f"public module {name} imports {deps}"
        if name not in ("__init__", "__main__"):
            assert not deps & PUBLIC, f"{name} imports a public module: {deps & PUBLIC}"
    assert graph["_composite"] <= {"_checks", "_reference"}
    assert "_ops" not in graph["_backend"] and "_backend" in graph["_ops"]


# A fresh interpreter imports torch and triton once (third-party, slow to import), then forks one
# child per module; each child starts with no module of the package imported and imports one module
# alone. The package's __init__ runs only for the package itself: for a submodule it is replaced by
# an empty package object, so only that module and what it imports are loaded.
_IMPORT_EACH = """
import importlib, json, os, sys, traceback, types
import torch
try:
    import triton
except ImportError:
    pass
import tal
results = {}
for name in NAMES:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            if name != PKG:
                package = types.ModuleType(PKG)
                package.__path__ = [PKG_DIR]
                sys.modules[PKG] = package
            importlib.import_module(name)
            out = {"ok": True, "loaded": sorted(m for m in sys.modules if m.startswith(PKG + "."))}
        except BaseException:
            out = {"ok": False, "error": traceback.format_exc()}
        os.write(write, json.dumps(out).encode())
        os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    results[name] = json.loads(b"".join(chunks) or b'{"ok": false, "error": "child died"}')
print(json.dumps(results))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_each_module_imports_alone_in_a_fresh_interpreter():
    names = sorted(_modules())
    code = f"NAMES = {names!r}\nPKG = {PKG!r}\nPKG_DIR = {str(PKG_DIR)!r}\n" + textwrap.dedent(_IMPORT_EACH)
    env = dict(os.environ, TRITON_INTERPRET="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    modules = _modules()
    for name in names:
        result = results[name]
        assert result["ok"], f"importing {name} alone failed:\n{result['error']}"
        if name != PKG:
            expected = _imports(name, modules[name], module_level=True)
            assert expected <= set(result["loaded"]) | {name}, (name, expected - set(result["loaded"]))
    assert results[f"{PKG}._reference"]["loaded"] == [f"{PKG}._reference"]
    assert results[f"{PKG}._checks"]["loaded"] == [f"{PKG}._checks"]


# ------------------------------------------------------------ one dispatch path


def _public_calls():
    g = torch.Generator().manual_seed(0)
    segs = torch.sort(torch.rand(30, 2, generator=g) * 20, 1).values
    scores = torch.rand(30, generator=g)
    labels = torch.randint(0, 3, (30,), generator=g)
    x, a = torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 3, 5, 5, generator=g)
    xs, adj = torch.randn(2, 3, 4, 5, generator=g), torch.randn(3, 5, 5, generator=g)
    return [
        ("segment_iou", lambda: ops.segment_iou(segs, segs)),
        ("segment_iou_matched", lambda: ops.segment_iou_matched(segs, segs)),
        ("nms_1d", lambda: ops.nms_1d(segs, scores, 0.3)),
        ("soft_nms_1d", lambda: ops.soft_nms_1d(segs, scores)),
        ("batched_nms", lambda: ops.batched_nms(segs, scores, labels, 0.3, 0.01, 20)),
        ("graph_aggregate_refined", lambda: ops.graph_aggregate(x, a)),
        ("graph_aggregate_shared", lambda: ops.graph_aggregate(xs, adj)),
    ]


class _DispatcherMode(torch.overrides.TorchFunctionMode):
    """While active, the public functions must take the torch.ops road."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("road", ["plain eager", "torch.ops"])
def test_every_public_call_runs_through_backend_kernel(monkeypatch, road):
    seen: list[str] = []
    real = _backend.kernel

    def spy(op: str, device: torch.device):
        seen.append(op)
        return real(op, device)

    monkeypatch.setattr(_backend, "kernel", spy)
    for op, call in _public_calls():
        seen.clear()
        if road == "torch.ops":
            with _DispatcherMode():
                call()
        else:
            call()
        assert seen == [op], (road, op, seen)
