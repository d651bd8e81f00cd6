"""Manual actions: an operator pins an action on an account (with who/why/until), or lifts it.

Kept in a small JSON file so they survive restarts and the CLI can edit them while no gateway
runs; a running gateway is changed through its admin API, which writes the same file.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from antidistill.errors import ConfigError
from antidistill.policy.model import ACTIONS, Action


@dataclass(frozen=True)
class ManualAction:
    id: str
    account_id: str
    action: Action
    who: str
    reason: str
    ts: float
    expires_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "action": self.action.as_dict(),
            "who": self.who,
            "reason": self.reason,
            "ts": self.ts,
            "expires_at": self.expires_at,
        }


def action_from_dict(d: dict[str, Any], where: str = "action") -> Action:
    """``{"kind": "throttle", "rate_per_min": 5}`` -> :class:`Action` (API and file format)."""
    if not isinstance(d, dict) or "kind" not in d:
        raise ConfigError("expected an object with 'kind'", where=where, field="kind")
    cls = ACTIONS.get(str(d["kind"]))
    if cls is None:
        raise ConfigError(
            f"unknown action {d['kind']!r}; expected one of {', '.join(sorted(ACTIONS))}",
            where=where,
            field="kind",
        )
    params = {k: v for k, v in d.items() if k != "kind"}
    try:
        action = cls(**params)
    except TypeError as exc:
        raise ConfigError(f"bad parameters for {cls.kind}: {exc}", where=where) from exc
    bad = action.validate()
    if bad:
        raise ConfigError(bad[1], where=where, field=bad[0])
    return action


class ManualActions:
    """account -> active manual action; persisted to ``path`` (JSON) on every change."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._by_account: dict[str, ManualAction] = {}
        if self.path and self.path.exists():
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read manual actions: {exc}", where=str(self.path)) from exc
        for i, d in enumerate(data.get("actions", [])):
            m = ManualAction(
                d["id"],
                d["account_id"],
                action_from_dict(d["action"], f"{self.path}:actions[{i}]"),
                d.get("who", "?"),
                d.get("reason", ""),
                float(d["ts"]),
                d.get("expires_at"),
            )
            self._by_account[m.account_id] = m

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(
            json.dumps({"actions": [m.as_dict() for m in self._by_account.values()]}, indent=1),
            encoding="utf-8",
        )
        os.replace(tmp, self.path)

    def get(self, account_id: str, now: float) -> ManualAction | None:
        m = self._by_account.get(account_id)
        if m is not None and m.expires_at is not None and m.expires_at <= now:
            return None
        return m

    def apply(
        self,
        account_id: str,
        action: Action,
        *,
        who: str,
        reason: str = "",
        ttl_s: float | None = None,
    ) -> ManualAction:
        now = time.time()
        m = ManualAction(
            uuid.uuid4().hex[:12],
            account_id,
            action,
            who,
            reason,
            now,
            now + ttl_s if ttl_s else None,
        )
        with self._lock:
            self._by_account[account_id] = m
            self._save()
        return m

    def lift(self, account_id: str) -> ManualAction | None:
        with self._lock:
            m = self._by_account.pop(account_id, None)
            self._save()
        return m

    def active(self, now: float | None = None) -> list[ManualAction]:
        t = time.time() if now is None else now
        return [m for m in self._by_account.values() if m.expires_at is None or m.expires_at > t]
