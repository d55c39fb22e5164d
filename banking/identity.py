"""Pseudonymous user keys, so stored records never carry a phone number."""

from __future__ import annotations

import hashlib
import hmac
import re

_CHANNEL_PREFIX = re.compile(r"^(?:whatsapp|wa|tel):", re.IGNORECASE)


def user_key(sender_id: str, salt: str) -> str:
    """HMAC-SHA256 hex of the sender id, keyed by a deployment secret.

    "whatsapp:+234 803…", "+234803…" and "234803…" are the same person on
    different channels, so the prefix, "+" and spaces are dropped first.
    """
    if not salt:
        raise ValueError("a non-empty salt is required")
    normalised = _normalise_sender(sender_id)
    if not normalised:
        raise ValueError("sender id is empty")
    return hmac.new(salt.encode(), normalised.encode(), hashlib.sha256).hexdigest()


def keyed_hash(value: str, salt: str) -> str:
    """HMAC-SHA256 hex of any identifier as it is (no sender normalisation)."""
    if not salt:
        raise ValueError("a non-empty salt is required")
    return hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()


def _normalise_sender(sender_id: str) -> str:
    without_channel = _CHANNEL_PREFIX.sub("", sender_id.strip())
    return re.sub(r"[\s+\-()]", "", without_channel)
