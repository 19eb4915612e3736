"""No import cycle inside tal-core, and every module imports on its own (ARCHITECTURE.md)."""

from __future__ import annotations

import textwrap

from tal.core.import_graph import import_cycles, import_graph, modules_failing_alone, upward_imports


def test_no_import_cycles_in_tal_core() -> None:
    assert import_cycles("tal.core") == []


def test_every_module_imports_alone() -> None:
    assert modules_failing_alone("tal.core") == []


def test_the_cycle_finder_finds_a_cycle_and_ignores_type_checking(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "cyc_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cyc_pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from cyc_pkg.a import x\n")  # a lazy import is still an edge
    (pkg / "c.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from cyc_pkg import d
            """
        )
    )
    (pkg / "d.py").write_text("from . import c\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = import_graph("cyc_pkg")
    assert graph["cyc_pkg.a"] == {"cyc_pkg.b"} and graph["cyc_pkg.b"] == {"cyc_pkg.a"}
    assert graph["cyc_pkg.c"] == set() and graph["cyc_pkg.d"] == {"cyc_pkg.c"}
    assert import_cycles("cyc_pkg") == [["cyc_pkg.a", "cyc_pkg.b"]]


def test_upward_imports_names_each_module_that_reaches_above_its_layer(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "layer_pkg"
    (pkg / "modeling").mkdir(parents=True)
    (pkg / "release").mkdir()
    for f in ("__init__.py", "modeling/__init__.py", "release/__init__.py", "release/ckpt.py", "cli.py", "config.py"):
        (pkg / f).write_text("")
    (pkg / "modeling" / "net.py").write_text("from layer_pkg import config\n")  # allowed: config is not above
    (pkg / "modeling" / "head.py").write_text("def f():\n    from layer_pkg.release import ckpt\n")
    (pkg / "modeling" / "__init__.py").write_text("from .. import cli\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert upward_imports("layer_pkg") == {
        "layer_pkg.modeling": {"layer_pkg.cli"},
        "layer_pkg.modeling.head": {"layer_pkg.release", "layer_pkg.release.ckpt"},
    }
    assert upward_imports("layer_pkg", upper=("cli",)) == {"layer_pkg.modeling": {"layer_pkg.cli"}}
