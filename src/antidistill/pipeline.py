"""The main job: simulate a world, detect on it, write the report, score it against the labels.

Kept apart from the CLI so tests and benchmarks run exactly what users run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console


def run_main_job(
    out: Path, *, seed: int = 7, days: int = 7, console: Console | None = None
) -> None:
    """``out/world``: a simulated week; ``out/detect``: accounts, clusters, campaigns, report."""
    from antidistill.detect import detect
    from antidistill.evaluate import print_evaluation
    from antidistill.simulate import simulate_world
    from antidistill.stats import print_stats

    console = console or Console()
    world = out / "world"
    interactive = sys.stdout.isatty()
    simulate_world(world, seed=seed, days=days, progress=interactive)
    print_stats(world, console=console)
    result = detect(
        [world / "exchanges.parquet"],
        out / "detect",
        models=world / "models.csv",
        labels=world / "labels.parquet",
        progress=interactive,
        console=console,
    )
    console.print(result.summary())
    if result.evaluation is not None:
        print_evaluation(result.evaluation, console)
    report = result.files.get("report")
    if report is not None:
        console.print(f"Report: [bold]{report}[/]")
