"""``tal demo``: run the demo of every installed package (or the ones named)."""

from __future__ import annotations

import argparse
import inspect
import time
import traceback
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tal.core.cli.base import Command
from tal.core.errors import TalError
from tal.core.registry import Registry, call_with_registry


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these demos")
    parser.add_argument("--out", type=Path, default=Path("tal-demo-out"), help="output folder (default tal-demo-out)")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("--data", type=Path, default=None, help="sample data folder for demos that take one")
    parser.add_argument("--list", action="store_true", help="list the demos and exit")


def _run(args: argparse.Namespace, registry: Registry) -> int:
    console = Console()
    demos = registry.components("demos")
    if args.list:
        for d in demos:
            console.print(f"{d.name:24s} {d.owner:16s} {d.description}")
        return 0
    if args.only:
        unknown = sorted(set(args.only) - {d.name for d in demos})
        if unknown:
            raise TalError(f"no demo named {unknown[0]!r}; demos: {', '.join(d.name for d in demos)}")
        demos = [d for d in demos if d.name in args.only]
    if not demos:
        raise TalError("no demos are registered (see `tal plugins`)")
    summary: list[tuple[str, str, str, str]] = []
    failed = 0
    for d in demos:
        out = args.out / d.name
        out.mkdir(parents=True, exist_ok=True)
        console.rule(f"demo {d.name} ({d.owner})")
        kwargs: dict[str, object] = {"quick": args.quick}
        if args.data is not None and "data" in inspect.signature(d.factory).parameters:
            kwargs["data"] = args.data
        t0 = time.perf_counter()
        try:
            result = call_with_registry(d.factory, registry, out, **kwargs)
        except Exception as exc:  # one demo failing must not hide the others
            failed += 1
            console.print(f"[red]demo {d.name} failed[/red]: {type(exc).__name__}: {exc}")
            console.print(traceback.format_exc(), markup=False)
            summary.append((d.name, "failed", f"{time.perf_counter() - t0:.1f}", str(exc)))
            continue
        numbers = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in (result or {}).items())
        summary.append((d.name, "ok", f"{time.perf_counter() - t0:.1f}", numbers))
    table = Table(title=f"tal demo — outputs in {args.out}/")
    for col in ("demo", "status", "seconds", "headline"):
        table.add_column(col, overflow="fold")
    for row in summary:
        table.add_row(*row)
    console.print(table)
    return 1 if failed else 0


DEMO = Command(help="run the demo of every installed package", add_arguments=_add_arguments, run=_run)


def register(registry: Registry) -> None:
    registry.add_command("demo", DEMO)
