"""The detection contract: the files ``antidistill detect`` writes and other stages read.

``accounts.parquet`` and ``clusters.parquet`` have the fixed leading columns below; detection may
append feature columns after them (the "main feature values behind the score"). Readers must
select by name and ignore unknown columns. ``campaigns.json`` is described in ``docs/detection.md``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from antidistill.errors import SchemaError

#: "2" (2026-12-01): nullable feature columns and ``accounts_created_in_window`` (a log without
#: the columns they are built on), ``meta.absent_columns``, ``meta.shared_hops`` and
#: ``meta.calibrated_for``
CONTRACT_VERSION = "2"

ACCOUNTS_SCHEMA = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("risk", pa.float64(), nullable=False),
        pa.field("flagged", pa.bool_(), nullable=False),
        pa.field("cluster_id", pa.string()),
        pa.field("campaign_id", pa.string()),
        pa.field("reasons", pa.list_(pa.string())),
        pa.field("harvest_share", pa.float64()),
    ],
    metadata={b"antidistill.schema": b"accounts", b"antidistill.schema_version": b"1"},
)

CLUSTERS_SCHEMA = pa.schema(
    [
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("accounts", pa.list_(pa.string()), nullable=False),
        pa.field("n_accounts", pa.int64(), nullable=False),
        pa.field("exchanges", pa.int64(), nullable=False),
        pa.field("risk", pa.float64(), nullable=False),
        pa.field("campaign_id", pa.string()),
        #: evidence kinds -> strength, e.g. {"payment": 0.9, "timing": 0.7}
        pa.field("evidence", pa.map_(pa.string(), pa.float64())),
        pa.field("evidence_text", pa.list_(pa.string())),
        #: capability -> share of the cluster's exchanges
        pa.field("capability_mix", pa.map_(pa.string(), pa.float64())),
    ],
    metadata={b"antidistill.schema": b"clusters", b"antidistill.schema_version": b"1"},
)


def _read(path: str | Path, schema: pa.Schema) -> pa.Table:
    p = Path(path)
    try:
        table = pq.read_table(p)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SchemaError(f"cannot read Parquet: {exc}".splitlines()[0], where=str(p)) from exc
    for field in schema:
        if field.name not in table.schema.names:
            raise SchemaError("required column is missing", where=str(p), field=field.name)
        if not table.schema.field(field.name).type.equals(field.type):
            try:
                table = table.set_column(
                    table.schema.get_field_index(field.name),
                    field.name,
                    table.column(field.name).cast(field.type),
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"has type {table.schema.field(field.name).type}, expected {field.type}",
                    where=str(p),
                    field=field.name,
                ) from exc
    return table


def read_accounts(path: str | Path) -> pa.Table:
    """Read ``accounts.parquet``, checking the contract's leading columns."""
    return _read(path, ACCOUNTS_SCHEMA)


def read_clusters(path: str | Path) -> pa.Table:
    """Read ``clusters.parquet``, checking the contract's leading columns."""
    return _read(path, CLUSTERS_SCHEMA)
