"""The ``antidistill`` command line.

Each stage contributes its commands from a module in :mod:`antidistill.commands` that defines
``register(app)``; heavy imports stay inside the command functions so ``--help`` is instant.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console

from antidistill import commands
from antidistill.errors import AntidistillError

app = typer.Typer(
    name="antidistill",
    help="Detect, act on, trace and share LLM distillation attacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Detect, act on, trace and share LLM distillation attacks."""

for _info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
    importlib.import_module(f"{commands.__name__}.{_info.name}").register(app)


def main() -> None:
    """Console-script entry point: one-line errors and exit code 2 for antidistill's own errors."""
    try:
        app()
    except AntidistillError as exc:
        err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
