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
LANGUAGES = ("english", "pidgin")


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


def reply_language(intent: str | None, asked: str | None, text: str, current: str | None) -> str | None:
    """The `language` slot after a customer's message; None when it stays as it is.

    ``change_language`` switches to the language asked for, or to the other one when none was
    named; any other message follows the language it is written in (``detect_language``).
    The one rule for both processes: Rasa applies it in-process when the project's patches are
    in force (connectors/rasa_patches.py), the action server's action_validate_slot_mappings otherwise.
    """
    if intent == "change_language":
        if asked in LANGUAGES:
            return asked
        return "english" if current == "pidgin" else "pidgin"
    detected = detect_language(text or "", current or "english")
    return detected if detected != current else None
