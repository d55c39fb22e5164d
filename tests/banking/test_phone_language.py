"""Mobile numbers and reply language."""

from __future__ import annotations

import pytest

from banking.language import detect_language
from banking.phone import mask_phone_number, normalise_phone_number


@pytest.mark.parametrize(
    ("text", "number"),
    [("08031234567", "08031234567"), ("0803 123 4567", "08031234567"), ("+2348031234567", "08031234567"),
     ("2348031234567", "08031234567"), ("+234 803-123-4567", "08031234567"), ("8031234567", "08031234567"),
     ("whatsapp:+2349051234567", "09051234567"), ("07011234567", "07011234567"), ("0811 000 0000", "08110000000")],
)
def test_normalise_phone_number(text: str, number: str) -> None:
    assert normalise_phone_number(text) == number


@pytest.mark.parametrize(
    "text", ["", "0803123456", "080312345678", "06031234567", "08231234567", "+448031234567", "call me", "0123456789"])
def test_normalise_phone_number_rejects_non_nigerian_mobiles(text: str) -> None:
    assert normalise_phone_number(text) is None


def test_mask_phone_number() -> None:
    assert mask_phone_number("08031234567") == "0803****567"


@pytest.mark.parametrize(
    ("text", "current", "expected"),
    [("abeg wetin be my balance", "english", "pidgin"),
     ("how far, I wan send money", "english", "pidgin"),
     ("make I see my account", "english", "pidgin"),
     ("na small money o", "english", "pidgin"),
     ("What is my balance please?", "pidgin", "english"),
     ("I am going to go to the bank", "english", "english"),
     ("yes", "pidgin", "pidgin"),
     ("5000", "pidgin", "pidgin"),
     ("ok thanks", "english", "english"),
     ("", "pidgin", "pidgin")],
)
def test_detect_language(text: str, current: str, expected: str) -> None:
    assert detect_language(text, current) == expected
