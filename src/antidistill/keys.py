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


#: Headers a gateway sends a model server when a policy turns watermarking on; the model server
#: derives the key itself from its copy of the secret and checks the key id against it.
HEADER_ACCOUNT = "X-Antidistill-Account"
HEADER_KEY_ID = "X-Antidistill-Watermark-Key-Id"
HEADER_EPOCH = "X-Antidistill-Watermark-Epoch"


def watermark_headers(account_id: str, watermark_key_id: str, *, epoch: int = 0) -> dict[str, str]:
    """The headers that ask a model server to watermark this request for ``account_id``."""
    return {
        HEADER_ACCOUNT: account_id,
        HEADER_KEY_ID: watermark_key_id,
        HEADER_EPOCH: str(int(epoch)),
    }
