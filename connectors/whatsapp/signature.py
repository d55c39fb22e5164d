"""Is this request from Meta? The webhook's two checks, pure functions over what arrived.

A POST carries ``X-Hub-Signature-256``: HMAC-SHA256 of the raw body under the app
secret (``is_valid_signature``). Meta's subscription GET carries our verify token
(``verification_challenge``). Both compare in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

__all__ = ["SIGNATURE_HEADER", "is_valid_signature", "verification_challenge"]

SIGNATURE_HEADER = "X-Hub-Signature-256"


def is_valid_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=<hex HMAC-SHA256 of the raw body under the app secret>``."""
    if not secret or not header:
        return False
    scheme, separator, signature = header.strip().partition("=")
    if not separator or scheme.strip().lower() != "sha256" or not signature.strip():
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode("ascii"), given)


def verification_challenge(query: Mapping[str, Any], verify_token: str) -> str | None:
    """The ``hub.challenge`` to echo when Meta's subscription request carries our token, else None."""
    mode = _first(query.get("hub.mode"))
    token = _first(query.get("hub.verify_token"))
    challenge = _first(query.get("hub.challenge"))
    if mode != "subscribe" or token is None or not challenge or not verify_token:
        return None
    if not hmac.compare_digest(token.encode("utf-8"), verify_token.encode("utf-8")):
        return None
    return challenge


def _first(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value if isinstance(value, str) else None
