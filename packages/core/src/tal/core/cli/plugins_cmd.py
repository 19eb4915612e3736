"""``tal plugins``: what each installed plugin registered, and whether it loaded."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from tal.core.cli.base import Command
from tal.core.registry import Registry


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def report(registry: Registry) -> list[dict[str, object]]:
    """One dict per plugin: plugin, distribution, version, registered, status, error."""
    return [p.as_dict() for p in registry.plugins]


def _run(args: argparse.Namespace, registry: Registry) -> int:
    rows = report(registry)
    if args.json:
        print(json.dumps({"plugins": rows}, indent=2))
        return 0
    table = Table(title="tal plugins", show_lines=True)
    for col in ("plugin", "distribution", "version", "registered", "status"):
        table.add_column(col, overflow="fold")
    for r in rows:
        registered = r["registered"]
        assert isinstance(registered, dict)
        what = "\n".join(f"{kind}: {', '.join(names)}" for kind, names in registered.items()) or "-"
        status = str(r["status"])
        if r["error"]:
            status = f"[red]{status}[/red]\n{r['error']}"
        elif status == "ok":
            status = "[green]ok[/green]"
        table.add_row(str(r["plugin"]), str(r["distribution"]), str(r["version"]), what, status)
    Console(width=max(100, Console().width)).print(table)
    return 0


PLUGINS = Command(help="list installed plugins and what they register", add_arguments=_add_arguments, run=_run)


def register(registry: Registry) -> None:
    registry.add_command("plugins", PLUGINS)
