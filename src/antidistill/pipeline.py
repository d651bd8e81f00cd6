"""The main job: simulate a world, then run every stage that exists on it.

Kept apart from the CLI so tests and benchmarks run exactly what users run.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console


def run_main_job(
    out: Path, *, seed: int = 7, days: int = 7, console: Console | None = None
) -> None:
    """Simulate ``days`` of traffic into ``out/world`` and print its summary."""
    from antidistill.simulate import simulate_world
    from antidistill.stats import print_stats

    console = console or Console()
    world = out / "world"
    simulate_world(world, seed=seed, days=days)
    print_stats(world, console=console)
