"""Mapping files: describe any other log shape in YAML instead of writing a reader.

A mapping renames source fields (or JSON paths into nested records) to schema columns, sets
constants, remaps enum values and says how to read timestamps. It is validated when loaded, and
every error names the file, line and field, because a silently wrong mapping would quietly
corrupt every row ingested with it. Format: ``docs/formats.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from antidistill import schema
from antidistill.errors import ConfigError
from antidistill.ingest.normalize import TimestampRule

#: Targets besides schema columns: a messages array / tool list from which fields are derived.
DERIVED_TARGETS = ("messages", "tools")
TARGETS = frozenset(schema.COLUMN_NAMES) | frozenset(DERIVED_TARGETS)
TIMESTAMP_COLUMNS = frozenset(n for n, t, _, _ in schema.COLUMNS if str(t).startswith("timestamp"))
_TOP_KEYS = ("version", "columns", "constants", "timestamps", "values", "csv_delimiter")
_TS_KEYS = ("format", "timezone", "unit")
_UNITS = ("auto", "s", "ms", "us", "ns")

_SEG = re.compile(r"""\.([A-Za-z0-9_\-@$]+)|\[\s*(-?\d+)\s*\]|\[\s*(["'])(.*?)\3\s*\]""")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


@dataclass(frozen=True)
class Accessor:
    """A plain top-level key, or a JSON path (``$.a.b[0]["x.y"]``) compiled to segments."""

    text: str
    segments: tuple[str | int, ...]

    @property
    def top_key(self) -> str | int:
        return self.segments[0]

    def get(self, obj: Any) -> Any:
        for seg in self.segments:
            if isinstance(seg, int):
                if not isinstance(obj, list) or not -len(obj) <= seg < len(obj):
                    return None
                obj = obj[seg]
            else:
                if not isinstance(obj, dict):
                    return None
                obj = obj.get(seg)
            if obj is None:
                return None
        return obj


def parse_accessor(text: str) -> Accessor:
    """Compile a source spec; raises ValueError with the offending position."""
    if not text.startswith("$"):
        if not text:
            raise ValueError("empty source field")
        return Accessor(text, (text,))
    segs: list[str | int] = []
    pos = 1
    while pos < len(text):
        m = _SEG.match(text, pos)
        if m is None:
            raise ValueError(f"bad JSON path {text!r} at character {pos + 1}")
        if m.group(1) is not None:
            segs.append(m.group(1))
        elif m.group(2) is not None:
            segs.append(int(m.group(2)))
        else:
            segs.append(m.group(4))
        pos = m.end()
    if not segs:
        raise ValueError(f"JSON path {text!r} selects nothing")
    return Accessor(text, tuple(segs))


@dataclass
class Mapping:
    """A validated mapping file (see module docstring)."""

    columns: dict[str, Accessor] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    timestamps: dict[str, TimestampRule] = field(default_factory=dict)
    values: dict[str, dict[Any, Any]] = field(default_factory=dict)
    csv_delimiter: str | None = None
    source: str = "<mapping>"

    def apply(self, obj: Any, base: dict[str, Any]) -> dict[str, Any]:
        """Override ``base`` (the reader's own extraction) with mapped fields and constants."""
        from antidistill.ingest.messages import from_messages, n_tools

        rec = base
        for target, acc in self.columns.items():
            rec[target] = acc.get(obj)
        if "messages" in self.columns:
            for k, v in from_messages(rec.pop("messages")).items():
                if k not in self.columns:
                    rec[k] = v
        if "tools" in self.columns:
            n = n_tools(rec.pop("tools"))
            if "n_tools" not in self.columns:
                rec["n_tools"] = n
        rec.update(self.constants)
        for target, table in self.values.items():
            val = rec.get(target)
            if val is not None:
                key = val if _hashable(val) else None
                if key is not None and key in table:
                    rec[target] = table[key]
                elif str(val) in table:
                    rec[target] = table[str(val)]
        return rec

    def provides(self, names: set[str]) -> set[str]:
        """Schema columns obtainable from a source with top-level ``names`` (for early checks)."""
        got = {n for n in names if n in TARGETS and n not in self.columns}
        got |= {t for t, acc in self.columns.items() if acc.top_key in names}
        got |= set(self.constants)
        if "messages" in got:
            got |= {"prompt", "system_prompt", "n_messages", "has_image"}
        if "tools" in got:
            got.add("n_tools")
        return got


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file; ConfigError names ``file:line`` and the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read mapping file: {exc}", where=str(p)) from None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"invalid YAML: {problem}", where=where) from None
    return _build(root, str(p))


def _err(src: str, node: yaml.Node, message: str, fieldname: str | None = None) -> ConfigError:
    return ConfigError(message, where=f"{src}:{node.start_mark.line + 1}", field=fieldname)


def _pairs(src: str, node: yaml.Node, what: str) -> list[tuple[yaml.ScalarNode, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise _err(src, node, f"{what} must be a mapping (key: value)")
    out = []
    seen: set[str] = set()
    for k, v in node.value:
        if not isinstance(k, yaml.ScalarNode):
            raise _err(src, k, f"keys of {what} must be plain names")
        if k.value in seen:
            raise _err(src, k, f"duplicate key in {what}", k.value)
        seen.add(k.value)
        out.append((k, v))
    return out


def _scalar(src: str, node: yaml.Node, fieldname: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise _err(src, node, "expected a single value", fieldname)
    return yaml.safe_load(yaml.serialize(node))


def _target(src: str, key: yaml.ScalarNode, allowed: frozenset[str]) -> str:
    if key.value not in allowed:
        raise _err(src, key, "not a schema v1 column" + (
            "" if allowed is TARGETS else " of this kind"), key.value)
    return str(key.value)


def _tz(src: str, node: yaml.Node, value: Any, fieldname: str) -> tzinfo:
    if not isinstance(value, str):
        raise _err(src, node, "timezone must be an IANA name or +HH:MM", fieldname)
    m = _OFFSET.match(value)
    if m:
        sign = 1 if m.group(1) == "+" else -1
        return timezone(sign * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _err(src, node, f"unknown timezone {value!r}", fieldname) from None


def _build(root: yaml.Node | None, src: str) -> Mapping:
    if root is None:
        raise ConfigError("mapping file is empty", where=src)
    m = Mapping(source=src)
    for key, val in _pairs(src, root, "the mapping file"):
        name = key.value
        if name not in _TOP_KEYS:
            raise _err(src, key, f"unknown section (expected one of {', '.join(_TOP_KEYS)})", name)
        if name == "version":
            if _scalar(src, val, name) != 1:
                raise _err(src, val, "only mapping version 1 exists", name)
        elif name == "csv_delimiter":
            d = _scalar(src, val, name)
            if not isinstance(d, str) or len(d) != 1:
                raise _err(src, val, "must be a single character", name)
            m.csv_delimiter = d
        elif name == "columns":
            for k, v in _pairs(src, val, "columns"):
                target = _target(src, k, TARGETS)
                spec = _scalar(src, v, target)
                if not isinstance(spec, str):
                    raise _err(src, v, "source must be a field name or a $.json.path", target)
                try:
                    m.columns[target] = parse_accessor(spec)
                except ValueError as exc:
                    raise _err(src, v, str(exc), target) from None
        elif name == "constants":
            for k, v in _pairs(src, val, "constants"):
                target = _target(src, k, frozenset(schema.COLUMN_NAMES))
                m.constants[target] = _scalar(src, v, target)
        elif name == "values":
            for k, v in _pairs(src, val, "values"):
                target = _target(src, k, frozenset(schema.COLUMN_NAMES))
                table: dict[Any, Any] = {}
                for vk, vv in _pairs(src, v, f"values.{target}"):
                    table[_scalar(src, vk, target)] = _scalar(src, vv, target)
                    table.setdefault(str(vk.value), table[_scalar(src, vk, target)])
                m.values[target] = table
        elif name == "timestamps":
            for k, v in _pairs(src, val, "timestamps"):
                target = _target(src, k, TIMESTAMP_COLUMNS)
                rule = TimestampRule()
                for rk, rv in _pairs(src, v, f"timestamps.{target}"):
                    opt = _scalar(src, rv, f"{target}.{rk.value}")
                    if rk.value == "format":
                        if not isinstance(opt, str) or "%" not in opt:
                            raise _err(src, rv, "format must be a strptime pattern like "
                                       "'%d/%m/%Y %H:%M'", f"{target}.format")
                        rule.fmt = opt
                    elif rk.value == "timezone":
                        rule.tz = _tz(src, rv, opt, f"{target}.timezone")
                    elif rk.value == "unit":
                        if opt not in _UNITS:
                            raise _err(src, rv, f"unit must be one of {', '.join(_UNITS)}",
                                       f"{target}.unit")
                        rule.unit = str(opt)
                    else:
                        raise _err(src, rk, f"unknown option (expected {', '.join(_TS_KEYS)})",
                                   f"{target}.{rk.value}")
                m.timestamps[target] = rule
    clash = set(m.columns) & set(m.constants)
    if clash:
        raise ConfigError("set both as a column and a constant", where=src, field=sorted(clash)[0])
    return m
