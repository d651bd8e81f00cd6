"""One exception hierarchy, so callers (and the CLI) can catch antidistill's own failures.

Every message is one line that names the file, line/row and field where that is known.
"""

from __future__ import annotations


class AntidistillError(Exception):
    """Base of every error antidistill raises on purpose."""


class InputError(AntidistillError):
    """A file or value supplied by the user cannot be used.

    ``where`` is e.g. ``"logs/a.jsonl:17"`` and ``field`` the column concerned.
    """

    def __init__(self, message: str, *, where: str | None = None, field: str | None = None):
        self.where = where
        self.field = field
        parts = [p for p in (where, f"field '{field}'" if field else None) if p]
        super().__init__(f"{': '.join(parts)}: {message}" if parts else message)


class SchemaError(InputError):
    """Data does not conform to the exchange-log schema (missing required column, bad type)."""


class ConfigError(InputError):
    """A configuration file (mapping, policy, keys) is invalid."""


class PolicyError(ConfigError):
    """A policy file is invalid; raised at load time, naming line and field."""


class StateStoreError(AntidistillError):
    """The online guard's state store (SQLite/Redis) cannot be reached or is corrupt."""


class DependencyError(AntidistillError):
    """An optional dependency (an extra such as ``antidistill[watermark]``) is not installed."""
