"""No import cycle inside tal-seg-tst, every module imports on its own, and modeling code stays below
release, CLI, plugin and demo code (ARCHITECTURE.md)."""

from __future__ import annotations

from tal.core.import_graph import import_cycles, modules_failing_alone, upward_imports

PACKAGE = "tal.seg_tst"


def test_no_import_cycles() -> None:
    assert import_cycles(PACKAGE) == []


def test_every_module_imports_alone() -> None:
    assert modules_failing_alone(PACKAGE) == []


def test_modeling_never_imports_release_cli_plugin_or_demo_code() -> None:
    assert upward_imports(PACKAGE) == {}
