"""``antidistill simulate`` and ``antidistill stats``."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate(
        out: Path = typer.Option(..., "--out", help="Directory to write the world into."),
        accounts: int | None = typer.Option(None, help="Total accounts (scales populations)."),
        days: int = typer.Option(7, help="Days of traffic."),
        exchanges: int | None = typer.Option(None, help="Total exchanges to aim for."),
        seed: int = typer.Option(7, help="Seed; the same seed gives byte-identical files."),
        evasion: str = typer.Option("v1", help="Evasive campaign tactic mix: v1, v2 "
                                               "(partly held out), mix (v1 plus cells "
                                               "of random tactics, for training) or v3 "
                                               "(held out, written without reading the "
                                               "detector)."),
        quiet: bool = typer.Option(False, "--quiet", help="Do not print the summary."),
    ) -> None:
        """Simulate API traffic: legitimate populations plus distillation campaigns."""
        from rich.console import Console

        from antidistill.simulate import simulate_world
        from antidistill.stats import print_stats

        console = Console()
        summary = simulate_world(out, seed=seed, days=days, accounts=accounts,
                                 exchanges=exchanges, evasion=evasion,
                                 progress=console.is_terminal)
        console.print(
            f"wrote {summary.exchanges:,} exchanges from {summary.accounts:,} accounts "
            f"({summary.attack_exchanges:,} harvesting) to {out} in {summary.seconds:.1f} s "
            f"({summary.exchanges_per_second:,.0f} exchanges/s)")
        if not quiet:
            print_stats(out, console=console)

    @app.command("stats")
    def stats(path: Path = typer.Argument(..., help="World directory or exchanges Parquet "
                                                    "file/directory.")) -> None:
        """Summarise a world or an exchange log: accounts, volume per day, models, populations."""
        from antidistill.stats import print_stats

        print_stats(path)
