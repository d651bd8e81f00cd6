"""Turn one extracted record (column name -> loose Python value) into schema-v1 values.

Every rule here is documented in ``docs/formats.md``; a value that cannot be made to fit raises
:class:`RowProblem`, which the pipeline turns into a quarantine row (never a silent drop).
Timestamps become integer microseconds since the epoch (UTC), the cheapest form to hand to Arrow.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from antidistill import schema

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

#: Accepted instants: anything outside is a unit/format mistake, not real traffic.
TS_MIN_US = int((datetime(2000, 1, 1, tzinfo=UTC) - _EPOCH) / _US)
TS_MAX_US = int((datetime(2100, 1, 1, tzinfo=UTC) - _EPOCH) / _US)

#: Prompts/system prompts longer than this are cut to head + marker + tail (see formats.md).
TEXT_MAX_CHARS = 200_000
TEXT_HEAD_CHARS = 150_000
TEXT_TAIL_CHARS = 50_000

INT32_MAX = 2**31 - 1

#: Quarantine reason codes (stable: users filter on them).
MISSING = "missing_required"
WRONG_TYPE = "wrong_type"
BAD_TIMESTAMP = "bad_timestamp"
TS_RANGE = "timestamp_out_of_range"
BAD_ENUM = "bad_enum"
OUT_OF_RANGE = "out_of_range"
BAD_VALUE = "bad_value"

STATUS_SYNONYMS: dict[str, str] = {
    "ok": "ok", "success": "ok", "succeeded": "ok", "successful": "ok", "completed": "ok",
    "error": "error", "failure": "error", "failed": "error", "fail": "error",
    "timeout": "error", "exception": "error",
    "refused": "refused", "refusal": "refused",
    "blocked": "blocked", "guardrail_intervened": "blocked", "content_filter": "blocked",
    "moderated": "blocked", "flagged": "blocked",
}
ACCOUNT_TYPE_SYNONYMS: dict[str, str] = {
    **{t: t for t in schema.ACCOUNT_TYPES},
    "personal": "individual", "education": "edu", "academic": "edu",
}


class RowProblem(Exception):
    """Why one record cannot be accepted: a stable ``reason`` code, the ``field`` and a detail."""

    def __init__(self, reason: str, field: str | None, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.field = field
        self.detail = detail


@dataclass
class TimestampRule:
    """How to read one timestamp column: strptime ``fmt``, zone for naive values, epoch unit."""

    fmt: str | None = None
    tz: tzinfo = UTC
    unit: str = "auto"  # auto | s | ms | us | ns


@dataclass
class Flags:
    """What normalisation changed in an accepted row (counted in the report)."""

    truncated: bool = False
    utf8_repaired: bool = False


@dataclass
class Normalizer:
    """Converts records column by column; ``timestamps`` overrides per-column parsing rules."""

    timestamps: dict[str, TimestampRule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._conv: dict[str, Callable[[Any, str, Flags], Any]] = {}
        for name, typ, _, _ in schema.COLUMNS:
            self._conv[name] = _converter(name, typ, self.timestamps.get(name, TimestampRule()))

    def row(self, rec: dict[str, Any], flags: Flags) -> list[Any]:
        """Values in :data:`schema.COLUMNS` order (``request_id`` may be None: caller fills it)."""
        out: list[Any] = [None] * len(_INDEX)
        conv = self._conv
        for name, value in rec.items():
            i = _INDEX.get(name)
            if i is None or value is None or (value == "" and name != "prompt"
                                              and isinstance(value, str)):
                continue
            out[i] = conv[name](value, name, flags)
        for name, i in _REQUIRED_INDEX:
            if out[i] is None:
                raise RowProblem(MISSING, name, "required value is missing or empty")
        return out


_INDEX = {name: i for i, name in enumerate(schema.COLUMN_NAMES)}
_REQUIRED_INDEX = tuple((name, _INDEX[name]) for name in schema.REQUIRED)


def _converter(name: str, typ: Any, rule: TimestampRule) -> Callable[[Any, str, Flags], Any]:
    import pyarrow as pa

    if pa.types.is_timestamp(typ):
        return lambda v, f, fl: to_timestamp_us(v, f, rule)
    if pa.types.is_integer(typ):
        return to_asn if name == "asn" else to_count
    if pa.types.is_floating(typ):
        return to_temperature
    if pa.types.is_boolean(typ):
        return to_bool
    special: dict[str, Callable[[Any, str, Flags], Any]] = {
        "status": to_status, "account_type": to_account_type, "pathway": to_pathway,
        "ip": to_ip, "prompt": to_text, "system_prompt": to_text,
    }
    if name in special:
        return special[name]
    return to_identifier


# --- strings -------------------------------------------------------------------------------

_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_str(value: str, flags: Flags) -> str:
    """Replace lone surrogates (undecodable bytes, bad JSON escapes) with U+FFFD, noting it."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        flags.utf8_repaired = True
        return _SURROGATES.sub("\ufffd", value)
    return value


def to_identifier(value: Any, name: str, flags: Flags) -> str | None:
    """Ids, model names, fingerprints: strings (stripped) or integers rendered as text."""
    if isinstance(value, str):
        value = clean_str(value.strip(), flags)
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise RowProblem(WRONG_TYPE, name, f"expected text, got {type(value).__name__}")


def to_text(value: Any, name: str, flags: Flags) -> str:
    """Prompt text: a string, or content parts joined; over-long text is cut head + tail."""
    if isinstance(value, list):
        from antidistill.ingest.messages import content_text

        value = content_text(value)
    if not isinstance(value, str):
        raise RowProblem(WRONG_TYPE, name, f"expected text, got {type(value).__name__}")
    value = clean_str(value, flags)
    if len(value) > TEXT_MAX_CHARS:
        flags.truncated = True
        cut = len(value) - TEXT_HEAD_CHARS - TEXT_TAIL_CHARS
        value = (value[:TEXT_HEAD_CHARS] + f"\n[antidistill: {cut} characters truncated]\n"
                 + value[-TEXT_TAIL_CHARS:])
    return value


# --- numbers -------------------------------------------------------------------------------

_INT_RE = re.compile(r"^[+-]?\d+$")


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise RowProblem(WRONG_TYPE, name, "expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        if not math.isfinite(value) or value != int(value):
            raise RowProblem(WRONG_TYPE, name, f"expected an integer, got {value!r}")
        return int(value)
    if isinstance(value, str):
        s = value.strip()
        if _INT_RE.match(s):
            return int(s)
        try:
            f = float(s)
        except ValueError:
            raise RowProblem(WRONG_TYPE, name,
                             f"expected an integer, got {_short(value)}") from None
        return _as_int(f, name)
    raise RowProblem(WRONG_TYPE, name, f"expected an integer, got {type(value).__name__}")


def to_count(value: Any, name: str, flags: Flags) -> int:
    """Token counts and sizes: integers in [0, 2^31-1]; integral floats/strings accepted."""
    n = _as_int(value, name)
    if not 0 <= n <= INT32_MAX:
        raise RowProblem(OUT_OF_RANGE, name, f"{n} is outside [0, {INT32_MAX}]")
    return n


def to_asn(value: Any, name: str, flags: Flags) -> int:
    """ASNs as integers or ``AS13335`` strings."""
    if isinstance(value, str) and value.strip()[:2].upper() == "AS":
        value = value.strip()[2:]
    return to_count(value, name, flags)


def to_temperature(value: Any, name: str, flags: Flags) -> float:
    """A finite, non-negative number (upper bounds differ by provider, so none is imposed)."""
    if isinstance(value, bool):
        raise RowProblem(WRONG_TYPE, name, "expected a number, got a boolean")
    try:
        f = float(value.strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise RowProblem(WRONG_TYPE, name, f"expected a number, got {_short(value)}") from None
    if not math.isfinite(f) or f < 0 or f > 3.4e38:
        raise RowProblem(OUT_OF_RANGE, name, f"{f!r} is not a finite non-negative number")
    return f


_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def to_bool(value: Any, name: str, flags: Flags) -> bool:
    """Booleans, 0/1, and true/false/yes/no/t/f/y/n strings (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        s = value.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    raise RowProblem(WRONG_TYPE, name, f"expected a boolean, got {_short(value)}")


# --- enums ---------------------------------------------------------------------------------

def to_status(value: Any, name: str, flags: Flags) -> str:
    """ok/error/refused/blocked, with synonyms; HTTP codes: 2xx ok, 4xx/5xx error."""
    if isinstance(value, int | str) and not isinstance(value, bool):
        s = str(value).strip().lower()
        if s in STATUS_SYNONYMS:
            return STATUS_SYNONYMS[s]
        if _INT_RE.match(s) and 100 <= int(s) <= 599:
            return "ok" if 200 <= int(s) < 300 else "error"
    raise RowProblem(BAD_ENUM, name, f"unknown status {_short(value)}")


def to_account_type(value: Any, name: str, flags: Flags) -> str:
    """One of schema.ACCOUNT_TYPES (case-insensitive) or a documented synonym."""
    if isinstance(value, str):
        s = value.strip().lower()
        if s in ACCOUNT_TYPE_SYNONYMS:
            return ACCOUNT_TYPE_SYNONYMS[s]
    raise RowProblem(BAD_ENUM, name, f"unknown account type {_short(value)}")


def to_pathway(value: Any, name: str, flags: Flags) -> str:
    """``direct``, ``cloud:<name>`` or ``reseller:<name>``: kind lower-cased, name kept."""
    if isinstance(value, str):
        s = value.strip()
        kind, sep, rest = s.partition(":")
        kind = kind.strip().lower()
        out = kind if not sep else f"{kind}:{rest.strip()}"
        if schema.valid_pathway(out):
            return clean_str(out, flags)
    raise RowProblem(BAD_ENUM, name,
                     f"not direct, cloud:<name> or reseller:<name>: {_short(value)}")


_IPV4_RE = re.compile(
    r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")


def to_ip(value: Any, name: str, flags: Flags) -> str:
    """Canonical IP text: first of a comma list, port/brackets removed, v4-mapped v6 -> v4."""
    if not isinstance(value, str):
        raise RowProblem(WRONG_TYPE, name, f"expected an IP address, got {type(value).__name__}")
    if _IPV4_RE.fullmatch(value):
        return value
    s = value.split(",", 1)[0].strip()
    if s.startswith("["):
        s = s[1:].split("]", 1)[0]
    elif s.count(":") == 1:
        s = s.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(s.split("%", 1)[0])
    except ValueError:
        raise RowProblem(BAD_VALUE, name, f"not an IP address: {_short(value)}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


# --- timestamps ----------------------------------------------------------------------------

_NUMERIC_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_UNIT_DIV = {"s": 1e-6, "ms": 1e-3, "us": 1.0, "ns": 1e3}


def epoch_unit(x: float) -> str:
    """Unit of an epoch number by magnitude: <1e11 s, <1e14 ms, <1e17 us, else ns."""
    a = abs(x)
    if a < 1e11:
        return "s"
    if a < 1e14:
        return "ms"
    if a < 1e17:
        return "us"
    return "ns"


def to_timestamp_us(value: Any, name: str, rule: TimestampRule) -> int:
    """Microseconds since the epoch, UTC, within [2000-01-01, 2100-01-01)."""
    us: int
    if isinstance(value, datetime):
        us = _dt_us(value, rule.tz)
    elif isinstance(value, date):
        us = _dt_us(datetime(value.year, value.month, value.day), rule.tz)
    elif isinstance(value, bool):
        raise RowProblem(BAD_TIMESTAMP, name, "expected a timestamp, got a boolean")
    elif isinstance(value, int | float | Decimal):
        us = _epoch_us(value, name, rule.unit)
    elif isinstance(value, str):
        s = value.strip()
        if rule.fmt is not None:
            try:
                dt = datetime.strptime(s, rule.fmt)
            except ValueError:
                raise RowProblem(BAD_TIMESTAMP, name,
                                 f"does not match format {rule.fmt!r}: {_short(value)}") from None
            us = _dt_us(dt, rule.tz)
        elif _NUMERIC_RE.match(s):
            us = _epoch_us(int(s) if _INT_RE.match(s) else float(s), name, rule.unit)
        else:
            try:
                dt = datetime.fromisoformat(s)
            except ValueError:
                raise RowProblem(BAD_TIMESTAMP, name,
                                 f"not an ISO 8601 timestamp or epoch number: {_short(value)}"
                                 ) from None
            us = _dt_us(dt, rule.tz)
    else:
        raise RowProblem(BAD_TIMESTAMP, name, f"expected a timestamp, got {type(value).__name__}")
    if not TS_MIN_US <= us < TS_MAX_US:
        raise RowProblem(TS_RANGE, name, f"{_short(value)} is outside 2000-01-01..2100-01-01 UTC")
    return us


def _dt_us(dt: datetime, tz: tzinfo) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return (dt - _EPOCH) // _US


def _epoch_us(x: int | float | Decimal, name: str, unit: str) -> int:
    if isinstance(x, float | Decimal) and not math.isfinite(x):
        raise RowProblem(BAD_TIMESTAMP, name, f"not a finite epoch number: {x!r}")
    u = epoch_unit(float(x)) if unit == "auto" else unit
    if isinstance(x, int):
        return {"s": x * 1_000_000, "ms": x * 1000, "us": x, "ns": x // 1000}[u]
    return round(float(x) / _UNIT_DIV[u])


def generated_request_id(source_name: str, position: str, raw: bytes) -> str:
    """Deterministic id for a record without one: hash of its source name, position and content."""
    h = hashlib.blake2b(digest_size=12)
    h.update(source_name.encode("utf-8", "surrogatepass"))
    h.update(b"\0" + position.encode() + b"\0")
    h.update(raw)
    return "gen-" + h.hexdigest()


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
