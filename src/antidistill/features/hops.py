"""Identity values logged at a shared hop instead of at the client.

A gateway behind a load balancer or CDN logs the balancer's address, one corporate card pays for
every seat, a wrapper service stamps its own client fingerprint. Such a value tells no account
apart, yet kept it makes every account behind it look as if it shared its address with
thousands (``max_ip_sharers``, a strong hydra signal), so it is blanked before any feature is
built, and the run says so:

- a column whose most common value is carried by >= :data:`COLUMN_SHARE` of its accounts is
  blanked whole: the log is then scored, calibrated and grouped as one without that column;
- an address (:data:`VALUE_COLUMNS`) carried by >= :data:`VALUE_SHARE` of the accounts is
  blanked on its rows: those accounts' address features become unknown (no simulated or real
  carrier NAT comes near: the training worlds' busiest address has 7.1 % of the accounts).

Both need >= :data:`MIN_ACCOUNTS` accounts: in a small log, many accounts on one address is
evidence of a hydra, not of a proxy. ``asn`` is left alone: no feature reads it and linking
ignores blocks that large already. A payment card on many accounts is not blanked value by
value either: an account without a card means "free tier" to the scorer, not "unknown".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

#: identity columns a log can record at the wrong hop
COLUMNS = ("payment_fp", "ip", "client_fp")
#: the columns whose single busy values are blanked (see the module docstring)
VALUE_COLUMNS = ("ip",)
COLUMN_SHARE = 0.9
VALUE_SHARE = 0.2
MIN_ACCOUNTS = 100
#: accounts (hashed order) whose values are the candidates; a value on >= 20 % of the accounts
#: is on at least SAMPLE_MIN of them but with a chance below 1e-9
SAMPLE = 300
SAMPLE_MIN = 6


@dataclass(frozen=True)
class HopValue:
    """One blanked value: which column, the value, how many accounts carried it."""

    column: str
    value: str
    accounts: int
    share: float


@dataclass
class SharedHops:
    """What :func:`find_shared_hops` found: whole columns (-> their top value's share of
    accounts) and single values to blank."""

    columns: dict[str, float] = field(default_factory=dict)
    values: list[HopValue] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.columns or self.values)

    def partly_blanked(self) -> list[str]:
        """Columns blanked on some rows: absent for a large share of the accounts."""
        return sorted({v.column for v in self.values})

    def to_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "values": [asdict(v) for v in self.values]}

    def parts(self, absent: str = "treated as absent") -> list[str]:
        """One phrase per blanked column or value (``absent``: what a blanked column became)."""
        return ([f"{c} (one value for {share:.0%} of accounts: {absent})"
                 for c, share in self.columns.items()]
                + [f"{v.column} {v.value} ({v.accounts:,} accounts, {v.share:.0%}: blanked on "
                   f"its rows)" for v in self.values])

    def note(self) -> str:
        """One line for the terminal."""
        line = ("logged at a shared hop (proxy, load balancer, one payer?): "
                + "; ".join(self.parts()))
        if "ip" in self.columns or self.values:
            line += (" — a gateway behind a load balancer logs the client's address with "
                     "`antidistill enforce --trust-forwarded`")
        return line


def find_shared_hops(con: duckdb.DuckDBPyConnection, table: str = "ex") -> SharedHops:
    """The shared-hop columns and values of ``table`` (see the module docstring).

    Counting distinct accounts for every address of a 16M-exchange log takes seconds; only the
    values seen on >= :data:`SAMPLE_MIN` of :data:`SAMPLE` hashed accounts are counted exactly.
    """
    have = {str(r[0]) for r in con.execute(f"DESCRIBE {table}").fetchall()}
    columns = [c for c in COLUMNS if c in have]
    found = SharedHops()
    if not columns:
        return found
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _has AS SELECT account_id, hash(account_id) AS h,
                    {", ".join(f"count({c}) > 0 AS {c}" for c in columns)}
                    FROM {table} GROUP BY account_id""")
    for c in columns:
        row = con.execute(f"SELECT count(*) FROM _has WHERE {c}").fetchone()
        total = int(row[0]) if row else 0
        if total < MIN_ACCOUNTS:
            continue
        counted = con.execute(f"""
            WITH sample AS (SELECT account_id FROM _has WHERE {c} ORDER BY h, account_id
                            LIMIT {SAMPLE}),
            cand AS (SELECT {c} AS v FROM {table}
                     WHERE account_id IN (SELECT account_id FROM sample) AND {c} IS NOT NULL
                     GROUP BY 1 HAVING count(DISTINCT account_id) >= {SAMPLE_MIN})
            SELECT {c}, count(DISTINCT account_id) AS n FROM {table}
            WHERE {c} IN (SELECT v FROM cand) GROUP BY 1 ORDER BY n DESC, 1
            """).fetchall()
        if counted and counted[0][1] >= COLUMN_SHARE * total:
            found.columns[c] = counted[0][1] / total
        elif c in VALUE_COLUMNS:
            found.values += [HopValue(c, str(v), int(n), int(n) / total)
                             for v, n in counted if n >= VALUE_SHARE * total]
    con.execute("DROP TABLE _has")
    return found


def blank_shared_hops(con: duckdb.DuckDBPyConnection, hops: SharedHops,
                      table: str = "ex") -> None:
    """Set the shared-hop columns and values of ``table`` to null."""
    for c in hops.columns:
        con.execute(f"UPDATE {table} SET {c} = NULL")
    for v in hops.values:
        con.execute(f"UPDATE {table} SET {v.column} = NULL WHERE {v.column} = ?", [v.value])
