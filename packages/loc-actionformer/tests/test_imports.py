"""No import cycle inside tal-loc-actionformer, and every module imports on its own (ARCHITECTURE.md)."""

from __future__ import annotations

from tal.core.import_graph import import_cycles, import_graph, modules_failing_alone, upward_imports

PACKAGE = "tal.loc_actionformer"


def test_no_import_cycles() -> None:
    assert import_cycles(PACKAGE) == []


def test_every_module_imports_alone() -> None:
    assert modules_failing_alone(PACKAGE) == []


def test_postprocess_and_release_stay_below_the_model_and_the_cli() -> None:
    graph = import_graph(PACKAGE)
    internal = {m for m in graph if m.startswith(PACKAGE)}
    # postprocess sees tensors and configs only: the model calls it, never the other way round
    assert graph[f"{PACKAGE}.postprocess"] & internal <= {PACKAGE, f"{PACKAGE}.config"}
    assert f"{PACKAGE}.postprocess" in graph[f"{PACKAGE}.modeling.meta_arch"]
    # modeling code never imports release, CLI, plugin or demo code
    assert upward_imports(PACKAGE) == {}
