"""Watermark keys per account and epoch, over :func:`antidistill.keys.derive_key`.

The 64-bit ``seed`` (the first 8 bytes of the derived key) is what the green-list hash uses; the
public ``key_id`` is what gateways and logs may carry. Rotation bumps the epoch; attribution
checks the current and previous epochs so text leaked before a rotation is still traced.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from antidistill.keys import derive_key, key_id

PURPOSE = "watermark"


@dataclass(frozen=True)
class WatermarkKey:
    """One account's watermark key for one epoch."""

    account_id: str
    epoch: int
    seed: int  # uint64 value used by the green-list hash
    key_id: str  # public identifier (safe to log and forward)


def watermark_key(secret: bytes | str, account_id: str, epoch: int = 0) -> WatermarkKey:
    """The watermark key of ``account_id`` in ``epoch`` (purpose ``"watermark"``)."""
    raw = derive_key(secret, account_id, purpose=PURPOSE, epoch=epoch)
    return WatermarkKey(account_id, int(epoch), int.from_bytes(raw[:8], "little"), key_id(raw))


def epoch_at(when: datetime, period_days: int = 30) -> int:
    """The rotation epoch containing ``when``: whole ``period_days`` periods since 1970-01-01."""
    if period_days < 1:
        raise ValueError("period_days must be >= 1")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() // (period_days * 86400))


@dataclass(frozen=True)
class KeyRing:
    """Many keys as parallel arrays, so scoring them all is one vectorised operation."""

    account_ids: tuple[str, ...]
    epochs: NDArray[np.int64]
    seeds: NDArray[np.uint64]
    key_ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.account_ids)

    @classmethod
    def build(cls, secret: bytes | str, account_ids: Iterable[str],
              epochs: Sequence[int] = (0,)) -> KeyRing:
        """Keys of every account in every epoch in ``epochs`` (e.g. current and previous)."""
        accounts = list(account_ids)
        eps = [int(e) for e in dict.fromkeys(epochs)]
        if not eps:
            raise ValueError("at least one epoch is needed")
        ids: list[str] = []
        ep: list[int] = []
        seeds: list[int] = []
        kids: list[str] = []
        for e in eps:
            for acct in accounts:
                k = watermark_key(secret, acct, e)
                ids.append(acct)
                ep.append(e)
                seeds.append(k.seed)
                kids.append(k.key_id)
        return cls(tuple(ids), np.asarray(ep, dtype=np.int64),
                   np.asarray(seeds, dtype=np.uint64), tuple(kids))
