"""One request id per customer message, in every log line of both processes.

The channel gives each incoming message an id (``connectors.request_ids``); Rasa's calls to
the action server carry it in the ``X-Request-ID`` header, and the action server takes it
from there (``actions.request_ids``). Here, with no Rasa imports: the context variable,
a log filter that stamps every record with it, and the JSON log format
(``LOG_FORMAT=json``; the default in production).

A JSON line: ``{"time", "level", "logger", "process", "request_id", "message"}`` plus
``exception`` when there is one. The number redaction (``banking.log_redaction``) is a
handler filter and applies to these lines as to any other.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone

from banking.config import environment_from_env

HEADER = "X-Request-ID"
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
VALID_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")  # whole value only (fullmatch: no trailing newline)
_LOGGERS = ("", "rasa", "rasa_sdk", "sanic.root", "sanic.error", "sanic.access")


def new_request_id() -> str:
    return secrets.token_hex(8)


def accept_request_id(value: str | None) -> str:
    """The caller's id when it looks like one (never trusted as more than a label), else a new one."""
    return value if isinstance(value, str) and VALID_ID.fullmatch(value) else new_request_id()


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or "-") on every record, as ``record.request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def __init__(self, process_name: str) -> None:
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": self.process_name,
            "request_id": getattr(record, "request_id", None) or REQUEST_ID.get() or "-",
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def wants_json(environ: Mapping[str, str] = os.environ) -> bool:
    chosen = environ.get("LOG_FORMAT", "").strip().lower()
    if chosen:
        return chosen == "json"
    return environment_from_env(environ) == "production"


def install_logging(process_name: str, environ: Mapping[str, str] = os.environ) -> int:
    """Request ids on every handler of the process (and JSON lines if asked); how many handlers. Idempotent."""
    as_json = wants_json(environ)
    count = 0
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(existing, RequestIdFilter) for existing in handler.filters):
                handler.addFilter(RequestIdFilter())
            if as_json and not isinstance(handler.formatter, JsonFormatter):
                handler.setFormatter(JsonFormatter(process_name))
            count += 1
    return count
