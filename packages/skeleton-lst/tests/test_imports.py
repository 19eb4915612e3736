"""No import cycle inside tal-skeleton-lst, and every module imports on its own (ARCHITECTURE.md)."""

from __future__ import annotations

import pytest

import_graph = pytest.importorskip("tal.core.import_graph", reason="tal-core without its import-graph helpers")


def test_no_import_cycles() -> None:
    assert import_graph.import_cycles("tal.skeleton_lst") == []


def test_every_module_imports_alone() -> None:
    assert import_graph.modules_failing_alone("tal.skeleton_lst") == []


def test_modeling_never_imports_release_cli_plugin_or_demo_code() -> None:
    assert import_graph.upward_imports("tal.skeleton_lst") == {}


def test_package_import_is_light() -> None:
    import subprocess
    import sys

    code = "import sys, tal.skeleton_lst; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # the public names load their modules on first use
