"""``antidistill stats``: what is in a world or an exchange log, as rich tables.

Queries run in DuckDB straight over the Parquet files, so a log of any size is summarised in
bounded memory without loading it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from antidistill.errors import InputError

if TYPE_CHECKING:
    import duckdb


def _sources(path: Path) -> tuple[str, Path | None, Path | None, Path | None]:
    """(exchanges glob, labels, exchange labels, models.csv) for a world dir or a Parquet path."""
    if not path.exists():
        raise InputError("no such file or directory", where=str(path))
    if path.is_file():
        if path.suffix != ".parquet":
            raise InputError("expected a world directory or a Parquet file/directory",
                             where=str(path))
        return str(path), None, None, None
    world = path / "exchanges.parquet"
    if world.exists():
        labels = path / "labels.parquet"
        xl = path / "exchange_labels.parquet"
        models = path / "models.csv"
        return (str(world), labels if labels.exists() else None, xl if xl.exists() else None,
                models if models.exists() else None)
    if any(path.rglob("*.parquet")):
        models = path / "models.csv"
        return str(path / "**" / "*.parquet"), None, None, models if models.exists() else None
    raise InputError("no exchanges.parquet or *.parquet files found", where=str(path))


def _table(title: str, headers: list[str], rows: list[tuple[object, ...]]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, h in enumerate(headers):
        t.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        t.add_row(*[f"{v:,}" if isinstance(v, int) else
                    v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else
                    (f"{v:.2f}" if isinstance(v, float) else ("" if v is None else str(v)))
                    for v in row])
    return t


def print_stats(path: Path, *, console: Console | None = None) -> None:
    """Print accounts, exchanges, per-day volume, models and (when labelled) populations."""
    import duckdb

    console = console or Console()
    sources = _sources(Path(path))
    con = duckdb.connect()
    try:
        _print(con, Path(path), *sources, console)
    except duckdb.Error as exc:
        raise InputError(f"cannot read: {str(exc).splitlines()[0]}", where=str(path)) from exc
    finally:
        con.close()


def _print(con: duckdb.DuckDBPyConnection, path: Path, ex: str, labels: Path | None,
           xlabels: Path | None, models: Path | None, console: Console) -> None:
    con.execute(f"CREATE VIEW e AS SELECT * FROM read_parquet('{_q(ex)}', union_by_name=true)")
    n, accounts, first, last = con.execute(
        "SELECT count(*), count(DISTINCT account_id), min(ts), max(ts) FROM e").fetchone() or (
        0, 0, None, None)
    console.print(_table(f"Exchange log: {path}", ["what", "value"], [
        ("exchanges", n), ("accounts", accounts), ("first", first), ("last", last)]))
    per_day = con.execute(
        "SELECT strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d %a') AS day, count(*), "
        "count(DISTINCT account_id) FROM e GROUP BY 1 ORDER BY 1").fetchall()
    console.print(_table("Per day (UTC)", ["day", "exchanges", "active accounts"], per_day))
    released: dict[str, str] = {}
    if models is not None:
        for name, when in con.execute(
                f"SELECT model, released_at FROM read_csv('{_q(str(models))}', header=true, "
                "all_varchar=true)").fetchall():
            released[name] = when or ""
    rows = con.execute(
        "SELECT model, count(*), count(DISTINCT account_id), min(ts) FROM e GROUP BY 1 "
        "ORDER BY 2 DESC").fetchall()
    console.print(_table("Models", ["model", "exchanges", "accounts", "first seen",
                                    "released_at"],
                         [(m, c, a, f, released.get(m, "")) for m, c, a, f in rows]))
    paths = con.execute(
        "SELECT coalesce(pathway, '(unknown)'), count(*), count(DISTINCT account_id) FROM e "
        "GROUP BY 1 ORDER BY 2 DESC").fetchall()
    console.print(_table("Pathways", ["pathway", "exchanges", "accounts"], paths))
    if labels is None:
        return
    con.execute(f"CREATE VIEW l AS SELECT * FROM read_parquet('{_q(str(labels))}')")
    if xlabels is not None:
        con.execute(f"CREATE VIEW x AS SELECT * FROM read_parquet('{_q(str(xlabels))}')")
    pops = con.execute(
        "WITH per AS (SELECT account_id, count(*) AS n FROM e GROUP BY 1) "
        "SELECT l.population, coalesce(l.campaign, ''), count(*), sum(per.n)::BIGINT "
        "FROM l LEFT JOIN per USING (account_id) GROUP BY 1, 2 ORDER BY 2, 1").fetchall()
    hits: dict[str, int] = {}
    if xlabels is not None:
        hits = dict(con.execute(
            "SELECT l.population, count(*) FROM x JOIN e USING (request_id) "
            "JOIN l USING (account_id) WHERE x.is_attack GROUP BY 1").fetchall())
    console.print(_table("Populations (from labels)",
                         ["population", "campaign", "accounts", "exchanges", "attack exchanges"],
                         [(p, c, a, int(e or 0), hits.get(p, 0)) for p, c, a, e in pops]))


def _q(text: str) -> str:
    return text.replace("'", "''")
