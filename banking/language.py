"""Whether a customer is writing Nigerian Pidgin or English, so replies match."""

from __future__ import annotations

import re

# Words that on their own mark a message as Pidgin.
_STRONG = frozenset({
    "abeg", "wetin", "dey", "una", "wey", "oya", "abi", "sef", "comot", "sabi", "wahala",
    "dis", "dat", "wan", "shey", "pikin", "ehn", "naim", "wen", "e don", "how far",
    "no be", "make i", "don do", "e remain",
})
# Words that only count when two of them appear (they also occur in English).
_WEAK = frozenset({"na", "don", "small", "oga", "oo", "o", "sha", "fit", "plenty", "moni"})
_MIN_ENGLISH_WORDS = 3


def detect_language(text: str, current: str = "english") -> str:
    """"pidgin" or "english"; short neutral messages ("yes", "5000") keep the current language."""
    words = re.findall(r"[a-z']+", text.lower())
    if not words:
        return current
    pairs = {" ".join(words[i:i + 2]) for i in range(len(words) - 1)}
    if _STRONG & (set(words) | pairs):
        return "pidgin"
    if len(_WEAK & set(words)) >= 2:
        return "pidgin"
    if len(words) >= _MIN_ENGLISH_WORDS:
        return "english"
    return current
