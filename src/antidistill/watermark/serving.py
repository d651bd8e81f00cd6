"""What a model server needs to watermark one request: the account's key, from gateway headers.

When a policy turns watermarking on for an account or tier, the gateway forwards
``X-Antidistill-Account`` (and ``X-Antidistill-Watermark-Key-Id``, the public id of the key it
expects, plus optionally ``X-Antidistill-Watermark-Epoch``). The model server holds the same
master secret, derives the key itself and checks the key id, so a gateway and a model server
whose secrets or epochs disagree fail loudly instead of watermarking with a key nobody can trace.
Torch-free, so it is shared by the transformers and vLLM adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from antidistill.errors import ConfigError, InputError
from antidistill.keys import HEADER_ACCOUNT, HEADER_EPOCH, HEADER_KEY_ID
from antidistill.watermark.keys import WatermarkKey, epoch_at, watermark_key

__all__ = ["HEADER_ACCOUNT", "HEADER_EPOCH", "HEADER_KEY_ID", "current_epoch", "key_from_headers"]


def current_epoch(period_days: int = 30, now: datetime | None = None) -> int:
    """The calendar rotation epoch in force now (see :func:`epoch_at`), for operators who rotate
    keys every ``period_days``; gateway, model server and ``trace --epoch`` must agree on it."""
    return epoch_at(now or datetime.now(UTC), period_days)


def key_from_headers(headers: Mapping[str, str], secret: bytes | str, *,
                     default_epoch: int = 0) -> WatermarkKey | None:
    """The key to watermark this request with, or ``None`` when the gateway did not ask.

    Without an epoch header the key of ``default_epoch`` is used (0, as the gateway derives it
    when no rotation is configured; operators rotating by calendar pass :func:`current_epoch`).
    Header names are matched case-insensitively. A key id that does not match the derived key
    raises :class:`ConfigError` (secret or epoch mismatch between gateway and model server).
    """
    low = {k.lower(): v for k, v in headers.items()}
    account = low.get(HEADER_ACCOUNT.lower())
    expected = low.get(HEADER_KEY_ID.lower())
    if not account:
        if expected:
            raise InputError("watermark key id sent without an account", field=HEADER_ACCOUNT)
        return None
    raw_epoch = low.get(HEADER_EPOCH.lower())
    try:
        epoch = int(raw_epoch) if raw_epoch is not None else int(default_epoch)
    except ValueError as exc:
        raise InputError(f"not an integer: {raw_epoch!r}", field=HEADER_EPOCH) from exc
    key = watermark_key(secret, account, epoch)
    if expected and expected != key.key_id:
        raise ConfigError(
            f"key id {expected} does not match this server's key for account {account!r} "
            f"epoch {epoch} ({key.key_id}): gateway and model server disagree on secret or epoch",
            field=HEADER_KEY_ID)
    return key
