"""Nigerian mobile numbers as customers type them, and how they may be shown."""

from __future__ import annotations

import re

_MOBILE = re.compile(r"0[789][01]\d{8}")
_CHANNEL_PREFIX = re.compile(r"^(?:whatsapp|wa|tel):", re.IGNORECASE)


def normalise_phone_number(text: str) -> str | None:
    """Local 11-digit form ("08031234567") for +234/234/0-prefixed or bare 10-digit input, else None.

    Prefixes are 070, 080, 081, 090 and 091; the network is not checked because
    numbers are portable between networks.
    """
    if not isinstance(text, str):
        return None
    digits = re.sub(r"[\s\-().]", "", _CHANNEL_PREFIX.sub("", text.strip()))
    digits = digits.removeprefix("+")
    if digits.startswith("234") and len(digits) == 13:
        digits = "0" + digits[3:]
    elif len(digits) == 10 and digits[0] in "789":
        digits = "0" + digits
    return digits if _MOBILE.fullmatch(digits) else None


def mask_phone_number(phone: str) -> str:
    """What may be shown or logged: "0803****567"."""
    return f"{phone[:4]}****{phone[-3:]}" if len(phone) >= 8 else "****"
