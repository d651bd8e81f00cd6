"""``antidistill run``: the main job on embedded defaults (the README's first command)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        out: Path = typer.Option(Path("out"), help="Directory for the world, detection, report."),
        seed: int = typer.Option(7, help="Seed of the simulated world."),
        days: int = typer.Option(7, help="Days of simulated traffic."),
    ) -> None:
        """Simulate a week of traffic with campaigns, detect them, write the report."""
        from antidistill.pipeline import run_main_job

        run_main_job(out, seed=seed, days=days)
