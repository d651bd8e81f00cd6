"""Exchange-log schema v1: the spine every stage, the gateway's logs and every test speak.

One row per API exchange (a request and its response). ``ts``, ``account_id``, ``model`` and
``prompt`` are required; every other column is optional and null when unknown. Documented in
``docs/schema.md``; change only deliberately, with a version bump.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from antidistill.errors import SchemaError

SCHEMA_VERSION = "1"

UTC_US = pa.timestamp("us", tz="UTC")

#: (name, type, required, meaning) in the documented column order.
COLUMNS: tuple[tuple[str, pa.DataType, bool, str], ...] = (
    ("request_id", pa.string(), False, "unique id (generated when absent)"),
    ("ts", UTC_US, True, "when the request arrived"),
    ("account_id", pa.string(), True, "the provider's account (billing entity)"),
    ("org_id", pa.string(), False, "organisation the account belongs to, if declared"),
    ("account_type", pa.string(), False, "individual, team, enterprise, edu, research, ..."),
    ("account_created_at", UTC_US, False, "when the account was opened"),
    ("verified", pa.bool_(), False, "identity/organisation verification passed"),
    ("pathway", pa.string(), False, "direct, cloud:<name>, reseller:<name>"),
    ("payment_fp", pa.string(), False, "fingerprint of the payment instrument (hashed)"),
    ("ip", pa.string(), False, "client IP (v4 or v6)"),
    ("asn", pa.int32(), False, "autonomous system of the IP"),
    ("client_fp", pa.string(), False, "client fingerprint (SDK/user agent/TLS)"),
    ("model", pa.string(), True, "model requested"),
    ("system_prompt", pa.string(), False, "system message text"),
    ("prompt", pa.string(), True, "text of the last user message (content parts joined)"),
    ("n_messages", pa.int32(), False, "messages in the request"),
    ("n_tools", pa.int32(), False, "tool definitions in the request"),
    ("has_image", pa.bool_(), False, "an image was attached"),
    ("input_tokens", pa.int32(), False, "prompt tokens used"),
    ("output_tokens", pa.int32(), False, "completion tokens used"),
    ("reasoning_tokens", pa.int32(), False, "reasoning tokens used"),
    ("max_tokens", pa.int32(), False, "requested cap"),
    ("temperature", pa.float32(), False, "sampling temperature"),
    ("status", pa.string(), False, "ok, error, refused, blocked"),
)

REQUIRED: tuple[str, ...] = tuple(name for name, _, req, _ in COLUMNS if req)
OPTIONAL: tuple[str, ...] = tuple(name for name, _, req, _ in COLUMNS if not req)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, *_ in COLUMNS)

#: Optional columns that providers' logs often lack together (a reseller sees no payment, an
#: open-model host no reasoning tokens, a proxy log no account metadata). Detection treats the
#: features built on a column that is absent from the whole log as unknown, not as zero, and the
#: shipped scorer is trained on copies of its worlds with each group removed.
COLUMN_GROUPS: dict[str, tuple[str, ...]] = {
    "identity": ("payment_fp", "ip", "asn", "client_fp"),
    "usage": ("input_tokens", "output_tokens", "reasoning_tokens", "max_tokens", "temperature",
              "status"),
    "account": ("org_id", "account_type", "account_created_at", "verified", "pathway"),
    "shape": ("system_prompt", "n_messages", "n_tools", "has_image"),
}
#: The reduced logs the scorer is trained and calibrated on, by name: each group missing alone,
#: and ``all`` (every group missing: only the required columns and ids left).
BLIND_VARIANTS: dict[str, tuple[str, ...]] = {
    **{group: (group,) for group in COLUMN_GROUPS}, "all": tuple(COLUMN_GROUPS)}

ACCOUNT_TYPES = frozenset(
    {"individual", "team", "enterprise", "edu", "research", "startup", "reseller"}
)
STATUSES = frozenset({"ok", "error", "refused", "blocked"})

EXCHANGE_SCHEMA = pa.schema(
    [pa.field(name, typ, nullable=not req) for name, typ, req, _ in COLUMNS],
    metadata={b"antidistill.schema": b"exchange", b"antidistill.schema_version": b"1"},
)

#: labels.parquet written by the simulator: campaign is null for legitimate accounts.
LABELS_SCHEMA = pa.schema(
    [
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("population", pa.string(), nullable=False),
        pa.field("campaign", pa.string()),
    ],
    metadata={b"antidistill.schema": b"labels", b"antidistill.schema_version": b"1"},
)

#: exchange_labels.parquet: is_attack is false for the ordinary traffic a proxy account carries.
EXCHANGE_LABELS_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("is_attack", pa.bool_(), nullable=False),
    ],
    metadata={b"antidistill.schema": b"exchange_labels", b"antidistill.schema_version": b"1"},
)

#: models.csv companion table.
MODELS_SCHEMA = pa.schema(
    [pa.field("model", pa.string(), nullable=False), pa.field("released_at", UTC_US)]
)


def valid_pathway(value: str) -> bool:
    """``direct``, ``cloud:<name>`` or ``reseller:<name>`` with a non-empty name."""
    if value == "direct":
        return True
    for prefix in ("cloud:", "reseller:"):
        if value.startswith(prefix) and len(value) > len(prefix):
            return True
    return False


@dataclass(frozen=True)
class Problem:
    """One reason a table does not conform, naming the column."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"field '{self.field}': {self.message}"


def problems(schema: pa.Schema) -> list[Problem]:
    """What stops ``schema`` from being cast to :data:`EXCHANGE_SCHEMA` (empty when it conforms).

    Extra columns are not a problem (they are dropped by :func:`conform`); missing optional
    columns are filled with nulls.
    """
    found: list[Problem] = []
    for name, typ, required, _ in COLUMNS:
        if name not in schema.names:
            if required:
                found.append(Problem(name, "required column is missing"))
            continue
        have = schema.field(name).type
        if have != typ and not _castable(have, typ):
            found.append(Problem(name, f"has type {have}, expected {typ}"))
    return found


def _castable(have: pa.DataType, want: pa.DataType) -> bool:
    if pa.types.is_null(have):
        return True
    if pa.types.is_timestamp(want):
        return pa.types.is_timestamp(have)
    if pa.types.is_integer(want):
        return pa.types.is_integer(have)
    if pa.types.is_floating(want):
        return pa.types.is_floating(have) or pa.types.is_integer(have)
    if pa.types.is_string(want):
        return (
            pa.types.is_string(have)
            or pa.types.is_large_string(have)
            or pa.types.is_dictionary(have)
        )
    if pa.types.is_boolean(want):
        return pa.types.is_boolean(have)
    return False


def conform(table: pa.Table, *, source: str = "<table>") -> pa.Table:
    """Cast an already-typed table to :data:`EXCHANGE_SCHEMA`.

    Adds missing optional columns as nulls, drops unknown columns, converts timestamps to UTC
    microseconds. Raises :class:`SchemaError` naming ``source`` and the first bad column. Row-level
    problems (nulls in required columns, bad values) are the ingest stage's business.
    """
    bad = problems(table.schema)
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise SchemaError(bad[0].message + more, where=source, field=bad[0].field)
    arrays = []
    for name, typ, _, _ in COLUMNS:
        if name in table.schema.names:
            col = table.column(name)
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            if pa.types.is_timestamp(col.type) and col.type.tz is None:
                col = col.cast(pa.timestamp(col.type.unit, tz="UTC"))
            arrays.append(col.cast(typ) if col.type != typ else col)
        else:
            arrays.append(pa.nulls(table.num_rows, typ))
    return pa.Table.from_arrays(arrays, schema=EXCHANGE_SCHEMA)


def group_columns(groups: Iterable[str]) -> tuple[str, ...]:
    """The columns of the named :data:`COLUMN_GROUPS`, in group order."""
    out: list[str] = []
    for group in groups:
        if group not in COLUMN_GROUPS:
            raise ValueError(f"unknown column group {group!r} (known: {', '.join(COLUMN_GROUPS)})")
        out += [c for c in COLUMN_GROUPS[group] if c not in out]
    return tuple(out)


def without_groups(table: pa.Table, groups: Iterable[str]) -> pa.Table:
    """``table`` without the columns of the named :data:`COLUMN_GROUPS`: a log as a provider
    that does not record them would write it."""
    drop = set(group_columns(groups))
    return table.drop_columns([c for c in table.schema.names if c in drop])


def require_columns(names: Iterable[str], *, source: str) -> None:
    """Raise a one-line :class:`SchemaError` if a required column is absent from ``names``."""
    have = set(names)
    for name in REQUIRED:
        if name not in have:
            raise SchemaError("required column is missing", where=source, field=name)
