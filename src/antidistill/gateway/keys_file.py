"""The keys file: API key -> account and the account metadata the policy looks at.

```yaml
accounts:
  acct_42: {account_type: edu, verified: true, verification: basic, org_id: uni-x,
            pathway: direct, payment_fp: pf_9a.., created_at: 2026-10-01T00:00:00Z}
keys:
  sk-live-abc: acct_42              # plain key -> account
  sha256:5e88...: acct_42          # or the SHA-256 of the key, so the file holds no secrets
```
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from antidistill.errors import ConfigError
from antidistill.schema import ACCOUNT_TYPES, valid_pathway

ACCOUNT_FIELDS = {
    "account_type",
    "verified",
    "verification",
    "org_id",
    "pathway",
    "payment_fp",
    "created_at",
}


@dataclass(frozen=True)
class Account:
    account_id: str
    account_type: str | None = None
    verified: bool | None = None
    verification: str = "none"  # none | basic | strong
    org_id: str | None = None
    pathway: str | None = None
    payment_fp: str | None = None
    created_at: datetime | None = None


class KeysFile:
    def __init__(self, keys: dict[str, str], accounts: dict[str, Account], source: str = "<keys>"):
        self._plain = {k: v for k, v in keys.items() if not k.startswith("sha256:")}
        self._hashed = {k[7:].lower(): v for k, v in keys.items() if k.startswith("sha256:")}
        self.accounts = accounts
        self.source = source

    def resolve(self, api_key: str | None) -> Account | None:
        if not api_key:
            return None
        acc = self._plain.get(api_key)
        if acc is None and self._hashed:
            acc = self._hashed.get(hashlib.sha256(api_key.encode()).hexdigest())
        if acc is None:
            return None
        return self.accounts.get(acc) or Account(acc)

    def account(self, account_id: str) -> Account:
        return self.accounts.get(account_id) or Account(account_id)

    @classmethod
    def load(cls, path: str | Path) -> KeysFile:
        p = Path(path)
        try:
            root = yaml.compose(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read keys file: {exc.strerror}", where=str(p)) from exc
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(
                f"invalid YAML: {getattr(exc, 'problem', exc)}",
                where=f"{p}:{mark.line + 1}" if mark else str(p),
            ) from exc
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}

        lines: dict[tuple[str, ...], int] = {}  # (section, key) -> line, built once
        if isinstance(root, yaml.MappingNode):
            for k, v in root.value:
                lines[(str(k.value),)] = k.start_mark.line + 1
                if isinstance(v, yaml.MappingNode):
                    for k2, _ in v.value:
                        lines[(str(k.value), str(k2.value))] = k2.start_mark.line + 1

        def line_of(*path_: str) -> str:
            n = lines.get(tuple(path_)) or lines.get(tuple(path_[:1]))
            return f"{p}:{n}" if n else str(p)

        if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
            raise ConfigError(
                "expected a mapping with a 'keys' mapping", where=str(p), field="keys"
            )
        accounts: dict[str, Account] = {}
        for acc, meta in (data.get("accounts") or {}).items():
            accounts[str(acc)] = _account(str(acc), meta, line_of("accounts", str(acc)))
        keys: dict[str, str] = {}
        for key, val in data["keys"].items():
            where = line_of("keys", str(key))
            if isinstance(val, dict):  # inline account: key: {account_id: .., account_type: ..}
                acc = val.get("account_id")
                if not acc:
                    raise ConfigError("missing account_id", where=where, field=f"keys.{key}")
                accounts.setdefault(
                    str(acc),
                    _account(str(acc), {k: v for k, v in val.items() if k != "account_id"}, where),
                )
                val = acc
            if not isinstance(val, str | int) or not str(val):
                raise ConfigError("expected an account id", where=where, field="keys")
            keys[str(key)] = str(val)
        return cls(keys, accounts, str(p))


def _account(acc: str, meta: Any, where: str) -> Account:
    if meta is None:
        return Account(acc)
    if not isinstance(meta, dict):
        raise ConfigError("expected a mapping of account metadata", where=where, field=acc)
    unknown = set(meta) - ACCOUNT_FIELDS
    if unknown:
        raise ConfigError(
            f"unknown field; expected one of {', '.join(sorted(ACCOUNT_FIELDS))}",
            where=where,
            field=sorted(unknown)[0],
        )
    at = meta.get("account_type")
    if at is not None and at not in ACCOUNT_TYPES:
        raise ConfigError(f"unknown account type {at!r}", where=where, field="account_type")
    pw = meta.get("pathway")
    if pw is not None and not valid_pathway(str(pw)):
        raise ConfigError(
            f"bad pathway {pw!r} (direct, cloud:<name>, reseller:<name>)",
            where=where,
            field="pathway",
        )
    ver = meta.get("verification")
    verified = meta.get("verified")
    if ver is None:
        ver = "basic" if verified else "none"
    if ver not in ("none", "basic", "strong"):
        raise ConfigError("expected none, basic or strong", where=where, field="verification")
    created = meta.get("created_at")
    if isinstance(created, str):
        try:
            created = datetime.fromisoformat(created.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError("not an ISO timestamp", where=where, field="created_at") from exc
    if isinstance(created, datetime) and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return Account(
        acc,
        at,
        None if verified is None else bool(verified) or ver != "none",
        ver,
        meta.get("org_id"),
        pw,
        meta.get("payment_fp"),
        created if isinstance(created, datetime) else None,
    )
