"""What may go into a prompt and what may come back out to a customer.

In: the customer's words are passed as quoted data in a user message, with
digit runs that could be a phone, account, card or meter number replaced by
placeholders (``<number-1>``) the model can refer to but never read. E-mail
addresses and anything that looks like a secret token go the same way.

Out: an answer is refused when it carries a link, a long digit run, a request
for a PIN/OTP/password, or a claim that money moved or a setting changed
(the model cannot do either, so such a claim is false), or when it is too long.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 700

_LONG_DIGITS = re.compile(r"\+?\d(?:[\s-]?\d){6,}")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_SECRET = re.compile(r"\b(?:gsk_|sk-|EAA|Bearer\s)[\w.-]{8,}|\b[A-Za-z0-9_-]{32,}\b")
_PLACEHOLDER = re.compile(r"<(number|email|secret)-(\d+)>")

_LINK = re.compile(r"https?://|www\.|\b[\w-]+\.(?:com|ng|net|org|io|ly|me|app|xyz|link)\b", re.IGNORECASE)
_ASKS_SECRET = re.compile(
    r"\b(?:send|share|give|enter|type|provide|tell|reply with|drop|confirm)\b(?:\s+[\w']+){0,3}?\s+"
    r"(?:pin|otp|password|passcode|cvv|bvn|card number|card details|login)\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(r"\b(?:never|not|don't|dont|do not|no go|no dey|no)\b", re.IGNORECASE)
_FIRST_PERSON_ACTION = re.compile(
    r"\b(?:i|i've|i have|i don|i go|we|we've|we have|i'll|i will|we'll|we will)\s+(?:just\s+|already\s+)?"
    r"(?:sent|send|transferred|transfer|moved|move|paid|pay|debited|debit|credited|credit|frozen|freeze|froze|"
    r"unfrozen|unfreeze|blocked|block|unblocked|unblock|connected|connect|disconnected|disconnect|changed|change|"
    r"increased|increase|raised|raise|removed|remove|set|reset|approved|approve|reversed|reverse|refunded|refund)\b",
    re.IGNORECASE,
)
_STATE_CLAIM = re.compile(
    r"\b(?:has|have) been\s+(?:frozen|unfrozen|blocked|unblocked|connected|disconnected|changed|increased|"
    r"raised|reset|approved|reversed|refunded|cancelled|canceled)\b",
    re.IGNORECASE,
)
_INTERNALS = re.compile(r"\b(?:system prompt|tool_call|function call|developer message|as an ai)\b", re.IGNORECASE)


@dataclass
class Redacted:
    """The customer's text with sensitive runs swapped for placeholders, and the way back."""

    text: str
    originals: dict[str, str] = field(default_factory=dict)

    def restore(self, value: str) -> str:
        """Put the customer's own digits back into a value the model returned (e.g. an entity)."""
        return _PLACEHOLDER.sub(lambda m: self.originals.get(m.group(0), m.group(0)), value)


def redact(text: str) -> Redacted:
    """Placeholders for numbers of seven or more digits, e-mail addresses and token-like strings."""
    originals: dict[str, str] = {}
    counters = {"number": 0, "email": 0, "secret": 0}

    def swap(kind: str) -> Callable[[re.Match[str]], str]:
        def replace(match: re.Match[str]) -> str:
            counters[kind] += 1
            placeholder = f"<{kind}-{counters[kind]}>"
            originals[placeholder] = match.group(0)
            return placeholder

        return replace

    cleaned = _SECRET.sub(swap("secret"), text[:MAX_QUESTION_CHARS])
    cleaned = _EMAIL.sub(swap("email"), cleaned)
    cleaned = _LONG_DIGITS.sub(swap("number"), cleaned)
    return Redacted(cleaned, originals)


def quoted(text: str) -> str:
    """The customer's words as data: fenced, with the fence characters taken out of the words."""
    return '"""\n' + text.replace('"""', "''") + '\n"""'


def answer_problem(answer: str) -> str | None:
    """Why an answer must not reach the customer, or None when it may."""
    if not answer.strip():
        return "empty"
    if len(answer) > MAX_ANSWER_CHARS:
        return "too_long"
    if _LINK.search(answer):
        return "link"
    if _LONG_DIGITS.search(answer) or _EMAIL.search(answer):
        return "identifier"
    if _PLACEHOLDER.search(answer):
        return "placeholder"
    if _asks_for_secret(answer):
        return "secret"
    if _FIRST_PERSON_ACTION.search(answer) or _STATE_CLAIM.search(answer):
        return "claims_action"
    if _INTERNALS.search(answer):
        return "internals"
    return None


def _asks_for_secret(answer: str) -> bool:
    """"Send me your PIN" is refused; "never share your PIN" is good advice."""
    for match in _ASKS_SECRET.finditer(answer):
        sentence_start = max(answer.rfind(".", 0, match.start()), answer.rfind("\n", 0, match.start())) + 1
        if not _NEGATED.search(answer[sentence_start:match.end()]):
            return True
    return False
