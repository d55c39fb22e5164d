"""No log line carries a phone or account number, whoever logs it (Rasa's DEBUG lines too)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from banking.log_redaction import NumberRedactingFilter, install, redact_numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("New session for conversation ID '2348031234567'.", "New session for conversation ID '[number]'."),
        ("Received user message 'send 5k to 0123456789 gtb'", "Received user message 'send 5k to [number] gtb'"),
        ("call +234 803 123 4567 or (0803) 123-4567", "call [number] or ([number]"),
        ("sender_id=2348031234567&x", "sender_id=[number]&x"),
    ],
)
def test_phone_and_account_numbers_are_replaced(text: str, expected: str) -> None:
    assert redact_numbers(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "at 2026-11-29 12:00:16,123 the model loaded",
        "due 29/11/2026",
        "₦45,320.50 moved; 5000 naira; 42 events",
        "user e7343d8f693d, ref SBX-A19184F69B944973",
    ],
)
def test_dates_amounts_and_hashes_stay_readable(text: str) -> None:
    assert redact_numbers(text) == text


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of a library's, writing through a handler of its own, as Rasa's do."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.a_library")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_installed_on_every_handler_it_redacts_arguments_and_tracebacks(captured) -> None:
    logger, stream = captured
    assert install() >= 1
    assert install() == 0  # once is enough

    logger.debug("Logged UserUtterance for %s: %r", "2348031234567", "pay 0123456789")
    try:
        raise ValueError("no account 0123456789")
    except ValueError:
        logger.exception("failed for conversation %s", "2348031234567")

    written = stream.getvalue()
    assert "2348031234567" not in written and "0123456789" not in written
    assert "DEBUG Logged UserUtterance for [number]: 'pay [number]'" in written
    assert "ValueError: no account [number]" in written


def test_a_record_that_cannot_be_formatted_still_passes() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d apples", ("not a number",), None)
    assert NumberRedactingFilter().filter(record) is True
