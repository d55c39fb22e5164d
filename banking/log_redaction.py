"""Keeps phone numbers and account numbers out of every log line, whoever writes it.

Our own code logs users by a short hash, but Rasa, rasa-sdk and Sanic log conversation
ids (on WhatsApp, a sender id is the customer's phone number) and, at DEBUG, what the
customer typed ("send 5k to 0123456789"). ``install()`` adds a filter to every log
handler that replaces every run of seven or more digits (with the usual
separators: spaces, dots, dashes, brackets) by ``[number]`` before the line is written,
exception texts included. Dates, times and amounts with thousands commas stay readable.

    install()                 on start-up, once logging is configured (idempotent)
    redact_numbers(text)      the same replacement, for text about to be logged
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


def redact_numbers(text: str) -> str:
    return _DATE_OR_NUMBER.sub(_replace, text)


def _replace(match: re.Match[str]) -> str:
    return REPLACEMENT if match.group("number") else match.group(0)


class NumberRedactingFilter(logging.Filter):
    """Rewrites a record's message (and exception text) with the digit runs replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the handler's to report, not ours
            return True
        redacted = redact_numbers(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_numbers(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact_numbers(record.exc_text)
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
