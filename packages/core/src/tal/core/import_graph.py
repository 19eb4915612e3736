"""The import graph of an installed package: cycles found statically, and every module imported alone.

Used by each tal package's tests (``tests/test_imports.py``) to keep the rules of ARCHITECTURE.md:
no import cycle inside a package, and its layers (modeling below release, CLI, plugin and demo code).
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path


def package_modules(package: str) -> dict[str, Path]:
    """``{module name: source file}`` of ``package`` and all its submodules (the installed copy)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{package} is not an installed package")
    found: dict[str, Path] = {}
    if spec.origin and spec.origin.endswith(".py"):
        found[package] = Path(spec.origin)
    for info in pkgutil.walk_packages(list(spec.submodule_search_locations), prefix=f"{package}."):
        sub = importlib.util.find_spec(info.name)
        if sub is not None and sub.origin and sub.origin.endswith(".py"):
            found[info.name] = Path(sub.origin)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path, is_package: bool) -> set[str]:
    """Modules ``module`` imports anywhere (functions included), except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    base = module.split(".") if is_package else module.split(".")[:-1]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for orelse in node.orelse:
                visit(orelse)
            return
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def import_graph(package: str) -> dict[str, set[str]]:
    """``{module: modules of the same package it imports}`` (a module importing ``pkg.x`` depends on
    ``pkg.x``; ``from pkg import name`` on ``pkg.name`` when that is a module, else on ``pkg``)."""
    modules = package_modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for target in _imports(name, path, path.name == "__init__.py"):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(f"{target}."):
                deps.add(target)  # a module importing its own parent package is not a cycle
        graph[name] = deps
    return graph


#: the folders and modules of a method package that its modeling code must never import (ARCHITECTURE.md)
UPPER_LAYERS = ("release", "cli", "plugin", "demo")


def upward_imports(package: str, lower: str = "modeling", upper: tuple[str, ...] = UPPER_LAYERS) -> dict[str, set[str]]:
    """``{module: what it imports from above}`` for every module of ``package.lower`` (the module or
    folder) that imports one of ``package.<upper>`` or their submodules; empty when the layers hold."""
    graph = import_graph(package)
    lower_name = f"{package}.{lower}"
    above = tuple(f"{package}.{part}" for part in upper)

    def is_above(module: str) -> bool:
        return any(module == a or module.startswith(f"{a}.") for a in above)

    out = {}
    for module, deps in graph.items():
        if module == lower_name or module.startswith(f"{lower_name}."):
            upward = {d for d in deps if is_above(d)}
            if upward:
                out[module] = upward
    return out


def import_cycles(package: str) -> list[list[str]]:
    """Strongly connected groups of two or more modules of ``package`` (Tarjan's algorithm)."""
    graph = import_graph(package)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def strongconnect(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                strongconnect(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(cycles)


_IMPORT_ALONE = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "tal" or m.startswith("tal.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=2).strip().splitlines()[-1])
print("\\n".join(failed))
"""


def modules_failing_alone(package: str) -> list[str]:
    """Modules of ``package`` that fail to import when imported first (every ``tal`` module unloaded
    before each one), with their error; run in one fresh interpreter."""
    names = sorted(package_modules(package))
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALONE, *names], capture_output=True, text=True, timeout=600, check=False
    )
    if done.returncode != 0:
        return [f"<interpreter>: exit {done.returncode}: {done.stderr.strip()[-500:]}"]
    return [line for line in done.stdout.splitlines() if line.strip()]
