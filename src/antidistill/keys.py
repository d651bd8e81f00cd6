"""Per-account keys derived from one master secret, shared by canaries and watermarks.

Both countermeasures must agree on which account a key belongs to, so both derive it here:
``HMAC-SHA256(secret, purpose | account_id | epoch)``. Rotation bumps ``epoch``; old epochs stay
derivable so text leaked before a rotation can still be traced.
"""

from __future__ import annotations

import hashlib
import hmac


def derive_key(secret: bytes | str, account_id: str, *, purpose: str, epoch: int = 0) -> bytes:
    """32-byte key for ``account_id``; ``purpose`` keeps ``"canary"`` and ``"watermark"`` apart."""
    if isinstance(secret, str):
        secret = secret.encode()
    if not secret:
        raise ValueError("the master secret must not be empty")
    msg = b"\x1f".join((purpose.encode(), account_id.encode(), str(int(epoch)).encode()))
    return hmac.new(secret, msg, hashlib.sha256).digest()


def key_id(key: bytes) -> str:
    """Short public identifier of a key (safe to log; does not reveal the key)."""
    return hashlib.sha256(b"antidistill-key-id" + key).hexdigest()[:16]
