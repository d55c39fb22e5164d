"""The privacy check the analytics tests share: what an analytics record must never contain."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

DIGITS = re.compile(r"\d{4,}")
ALLOWED_NUMBERS = {"at", "confidence", "top_confidence", "buttons", "seq"}


def leaks(records: Iterable[Mapping[str, Any]], forbidden: Iterable[str]) -> list[str]:
    """Every place a record carries a run of four digits, a forbidden text, or an unexpected number."""
    found: list[str] = []
    words = [word.casefold() for word in forbidden]
    for index, record in enumerate(records):
        for field, value in record.items():
            if field == "user":
                if not re.fullmatch(r"[0-9a-f]{64}", str(value)):
                    found.append(f"{index}.user is not a keyed hash: {value!r}")
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if field not in ALLOWED_NUMBERS:
                    found.append(f"{index}.{field} is a number: {value!r}")
                continue
            text = str(value)
            if DIGITS.search(text):
                found.append(f"{index}.{field} carries digits: {text!r}")
            found.extend(f"{index}.{field} carries {word!r}" for word in words if word in text.casefold())
    return found
