"""``antidistill detect`` and ``antidistill evaluate``."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("detect")
    def detect_cmd(
        logs: list[Path] = typer.Argument(..., help="Exchange logs (Parquet/JSONL, schema v1)."),
        out: Path = typer.Option(..., "--out", help="Directory for the detection output."),
        models: Path | None = typer.Option(None, help="models.csv (model,released_at)."),
        until: str | None = typer.Option(None, help="Only exchanges before this ISO instant."),
        labels: Path | None = typer.Option(None, help="labels.parquet: score the run."),
        model: Path | None = typer.Option(None, help="A scoring model file (default: shipped)."),
        memory_limit: str | None = typer.Option(
            None, help="DuckDB memory limit before spilling [default: 1.5GB]."),
        no_report: bool = typer.Option(False, "--no-report", help="Skip report.html."),
    ) -> None:
        """Find distillation campaigns: accounts, hydra clusters, campaigns, report."""
        import sys

        from rich.console import Console

        from antidistill.detect import MEMORY_LIMIT, detect

        console = Console()
        result = detect(logs, out, models=models, until=until, labels=labels,
                        progress=sys.stderr.isatty() or sys.stdout.isatty(), model_path=model,
                        report=not no_report, memory_limit=memory_limit or MEMORY_LIMIT,
                        console=console)
        if not (sys.stderr.isatty() or sys.stdout.isatty()):
            console.print(result.summary())
        if result.evaluation is not None:
            from antidistill.evaluate import print_evaluation

            print_evaluation(result.evaluation, console)

    @app.command("evaluate")
    def evaluate_cmd(
        detect_dir: Path = typer.Argument(..., help="Output directory of `antidistill detect`."),
        labels: Path = typer.Option(..., "--labels", help="labels.parquet."),
        exchange_labels: Path | None = typer.Option(None, "--exchange-labels",
                                                    help="exchange_labels.parquet."),
        log: list[Path] | None = typer.Option(None, "--log",
                                              help="The log (default: as recorded by detect)."),
        replay: list[Path] | None = typer.Option(
            None, "--replay", help="Replay detect --until over this log for time-to-detect."),
        step_hours: float = typer.Option(24.0, help="Replay step in hours."),
        json_out: Path | None = typer.Option(None, "--json", help="Also write the JSON here."),
    ) -> None:
        """Precision, recall, FPR per population, ARI, time-to-detect (JSON + tables)."""
        import json

        from antidistill.evaluate import evaluate_dir, print_evaluation

        result = evaluate_dir(detect_dir, labels, exchange_labels=exchange_labels,
                              replay=replay or None, step_hours=step_hours, log=log or None)
        print_evaluation(result)
        if json_out is not None:
            json_out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
