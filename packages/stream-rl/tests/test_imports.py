"""No import cycle inside tal-stream-rl, every module imports on its own, and modeling code stays below
release, CLI and plugin code (ARCHITECTURE.md)."""

from __future__ import annotations

from tal.core.import_graph import import_cycles, import_graph, modules_failing_alone

PACKAGE = "tal.stream_rl"


def test_no_import_cycles() -> None:
    assert import_cycles(PACKAGE) == []


def test_every_module_imports_alone() -> None:
    assert modules_failing_alone(PACKAGE) == []


def test_modeling_never_imports_release_cli_or_plugin_code() -> None:
    graph = import_graph(PACKAGE)
    above = tuple(f"{PACKAGE}.{part}" for part in ("release", "cli", "plugin", "demo"))
    for module in (m for m in graph if m.startswith(f"{PACKAGE}.modeling")):
        upward = {d for d in graph[module] if any(d == a or d.startswith(f"{a}.") for a in above)}
        assert not upward, (module, upward)
