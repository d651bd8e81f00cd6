"""The account registry: one row per simulated account, with the attributes logs carry.

Populations register accounts in batches; identifiers (account, org, payment) are keyed
hashes of the world seed, so they reveal nothing about population and are stable per seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

#: how an account's IP is chosen per request
IP_HOME, IP_STICKY_DAY, IP_PER_REQUEST, IP_OFFICE = range(4)

_STR_FIELDS = ("org", "account_type", "pathway", "payment", "client", "population", "campaign")
_NUM_FIELDS: dict[str, type] = {
    "created_at": np.int64, "verified": np.bool_, "tz": np.float64, "ip_mode": np.int8,
    "ip_base": np.int64, "ip_k": np.int64, "office_ip": np.int64,
}


def _hash(seed: int, kind: str, key: str, n: int = 14) -> str:
    return hashlib.blake2b(f"{seed}|{kind}|{key}".encode(), digest_size=16).hexdigest()[:n]


@dataclass
class Accounts:
    """Columns of all accounts; index = position of registration."""

    seed: int
    cols: dict[str, list[Any]] = field(default_factory=lambda: {
        k: [] for k in (*_STR_FIELDS, *_NUM_FIELDS)})
    n: int = 0
    frozen: dict[str, Any] = field(default_factory=dict)

    def add(self, n: int, **values: Any) -> np.ndarray:
        """Register ``n`` accounts; each value is a scalar or a length-``n`` sequence.

        ``org`` and ``payment`` are keys: accounts given the same key share the hashed id.
        Returns the new accounts' indices.
        """
        defaults: dict[str, Any] = {"org": None, "campaign": None, "verified": False,
                                    "tz": 0.0, "ip_k": 1, "office_ip": -1}
        for k in self.cols:
            v = values.get(k, defaults.get(k))
            if k not in values and k not in defaults:
                raise KeyError(f"account field {k!r} is required")
            if isinstance(v, np.ndarray | list | tuple):
                if len(v) != n:
                    raise ValueError(f"{k}: {len(v)} values for {n} accounts")
                self.cols[k].extend(v.tolist() if isinstance(v, np.ndarray) else v)
            else:
                self.cols[k].extend([v] * n)
        idx = np.arange(self.n, self.n + n)
        self.n += n
        return idx

    def freeze(self) -> None:
        """Build numpy/Arrow columns once all accounts are registered."""
        f = self.frozen
        for k, t in _NUM_FIELDS.items():
            f[k] = np.asarray(self.cols[k], dtype=t)
        f["account_id"] = pa.array(
            [f"acct_{_hash(self.seed, 'acct', str(i))}" for i in range(self.n)], pa.string())
        f["org_id"] = pa.array(
            [None if o is None else f"org_{_hash(self.seed, 'org', str(o), 12)}"
             for o in self.cols["org"]], pa.string())
        f["payment_fp"] = pa.array(
            [None if p is None else f"pm_{_hash(self.seed, 'pay', str(p), 16)}"
             for p in self.cols["payment"]], pa.string())
        for k in ("account_type", "pathway", "client", "population", "campaign"):
            f[k] = pa.array(self.cols[k], pa.string())
        f["created_at_arrow"] = pa.array(f["created_at"], pa.timestamp("us", tz="UTC"))
        f["verified_arrow"] = pa.array(f["verified"], pa.bool_())
