"""``antidistill ingest``: normalise provider logs into a schema-v1 Parquet dataset."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest_cmd(
        sources: list[Path] = typer.Argument(..., help="Log files or directories to ingest."),
        out: Path = typer.Option(..., "--out", help="Output dataset directory (day-partitioned)."),
        fmt: str = typer.Option(
            "auto", "--format", help="auto|parquet|jsonl|csv|litellm|otel (auto sniffs each file)."
        ),
        mapping: Path | None = typer.Option(
            None, "--mapping", help="YAML mapping file for other log shapes (docs/formats.md)."
        ),
        overwrite: bool = typer.Option(
            False, "--overwrite", help="Replace OUT if it exists (only once the run succeeds)."
        ),
    ) -> None:
        """Ingest logs: every record is accepted or quarantined, and the counts add up."""
        from rich.console import Console

        from antidistill.ingest import ingest, print_report

        report = ingest(sources, out, fmt=fmt, mapping=mapping, overwrite=overwrite,
                        progress=True, console=Console(stderr=True))
        print_report(report, Console())
