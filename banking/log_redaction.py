"""Keeps phone numbers and account numbers out of every log line, whoever writes it.

Our own code logs users by a short hash, but Rasa, rasa-sdk and Sanic log conversation
ids (on WhatsApp, a sender id is the customer's phone number) and, at DEBUG, what the
customer typed ("send 5k to 0123456789"). ``install()`` adds a filter to every log
handler that replaces every run of seven or more digits (with the usual
separators: spaces, dots, dashes, brackets) by ``[number]`` before the line is written,
exception texts included. Dates, times and amounts with thousands commas stay readable.

Provider ids go too: httpx logs every request's URL (at INFO), and Mono's URLs carry the
customer's Mono account id (``GET /v2/accounts/<id>/transactions``). Every opaque path
segment (16 or more letters, digits, ``-`` or ``_``, with a digit in it) and every 24-hex id
(Mono's form) becomes ``[id]``, at any level, whoever logs it.

    install()                 on start-up, once logging is configured (idempotent)
    redact_numbers(text)      the number replacement, for text about to be logged
    redact(text)              numbers and provider ids
"""

from __future__ import annotations

import logging
import re

# A date (kept) is tried before a number (replaced) at each position.
_DATE_OR_NUMBER = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?|\d{1,2}[./-]\d{1,2}[./-]\d{4})"
    r"|(?P<number>(?<![0-9A-Za-z])\+?\d(?:[ ().-]{0,2}\d){6,}(?![0-9A-Za-z]))"
)
REPLACEMENT = "[number]"
# A URL path segment that names a thing by an opaque id (a Mono account, a payment), or a bare
# 24-hex id anywhere. Route words (/v2/accounts/transactions, /webhooks/whatsapp) have no digit.
_PROVIDER_ID = re.compile(
    r"(?<=/)(?=[A-Za-z_-]*\d)(?=[0-9_-]*[A-Za-z])[A-Za-z0-9_-]{16,}(?![A-Za-z0-9_-])"
    r"|(?<![0-9A-Za-z])[0-9a-fA-F]{24}(?![0-9A-Za-z])"
)
ID_REPLACEMENT = "[id]"


def redact_numbers(text: str) -> str:
    return _DATE_OR_NUMBER.sub(_replace, text)


def redact(text: str) -> str:
    """Provider ids in URLs (and Mono's 24-hex ids) and runs of digits, replaced."""
    return redact_numbers(_PROVIDER_ID.sub(ID_REPLACEMENT, text))


def _replace(match: re.Match[str]) -> str:
    return REPLACEMENT if match.group("number") else match.group(0)


class NumberRedactingFilter(logging.Filter):
    """Rewrites a record's message (and exception text) with digit runs and provider ids replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the handler's to report, not ours
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = NumberRedactingFilter()


def install() -> int:
    """Add the filter to every handler there is now (the root logger's, and those Rasa,
    rasa-sdk or Sanic put on their own loggers); how many handlers got it. Idempotent."""
    loggers = [logging.getLogger()] + [
        candidate for candidate in list(logging.root.manager.loggerDict.values())
        if isinstance(candidate, logging.Logger)
    ]
    added = 0
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(existing, NumberRedactingFilter) for existing in handler.filters):
                handler.addFilter(_FILTER)
                added += 1
    return added
