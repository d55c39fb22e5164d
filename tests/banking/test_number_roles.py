"""Each number of a money message gets its role by shape and context: the messages real
customers sent that were misread, and the untidy ways amounts and numbers are written."""

from __future__ import annotations

import pytest

from banking.number_roles import read_numbers


def roles(text: str, **context: bool) -> list[tuple[str, str]]:
    return [(found.role, found.value) for found in read_numbers(text, **context).found]


@pytest.mark.parametrize(("text", "context", "expected"), [
    ("transfer 1000 to savings", {}, [("amount", "1000")]),
    ("send 2500 to 0123456789 access bank", {}, [("amount", "2500"), ("account_number", "0123456789")]),
    ("buy 500 airtime for 08031234567", {}, [("amount", "500"), ("phone_number", "08031234567")]),
    ("pay my dstv 19000 smartcard 7023456789", {"about_bills": True},
     [("amount", "19000"), ("customer_ref", "7023456789")]),
    ("transfer two thousand naira to savings", {}, [("amount", "2000")]),
    ("transfer twenty five thousand to my savings", {}, [("amount", "25000")]),
    ("pay water bill 3500", {"about_bills": True}, [("amount", "3500")]),
    ("recharge my 9mobile with 1500", {}, [("amount", "1500")]),
])
def test_the_messages_customers_sent(text: str, context: dict, expected: list) -> None:
    assert roles(text, **context) == expected


@pytest.mark.parametrize(("written", "naira"), [
    ("5000", "5000"), ("5,000", "5000"), ("5000.50", "5000.5"), ("₦5,000", "5000"), ("N5000", "5000"),
    ("NGN 5000", "5000"), ("5k", "5000"), ("5K", "5000"), ("2.5k", "2500"), ("1.5m", "1500000"),
    ("2 million", "2000000"), ("two thousand", "2000"), ("twenty five thousand naira", "25000"),
    ("one point five million", "1500000"), ("5 thousand", "5000"), ("5000 naira", "5000"),
    ("ten k", "10000"), ("one hundred and fifty thousand", "150000"), ("#5000", "5000"),
])
def test_amounts_as_people_write_them(written: str, naira: str) -> None:
    assert roles(f"abeg send {written} give my sister") == [("amount", naira)]


@pytest.mark.parametrize(("written", "local"), [
    ("08031234567", "08031234567"), ("0803 123 4567", "08031234567"), ("0803-123-4567", "08031234567"),
    ("2348031234567", "08031234567"), ("+2348031234567", "08031234567"), ("+234 803 123 4567", "08031234567"),
    ("07061234567", "07061234567"), ("09012345678", "09012345678"),
])
def test_nigerian_phone_numbers_in_every_format(written: str, local: str) -> None:
    assert roles(f"buy 1k mtn airtime for {written}") == [("amount", "1000"), ("phone_number", local)]


def test_a_meter_number_in_a_bill_message_is_the_reference_even_when_it_looks_like_a_phone() -> None:
    assert roles("pay ikeja electric 5000 meter 08031234567", about_bills=True) == [
        ("amount", "5000"), ("customer_ref", "08031234567")]
    assert roles("pay 7k light bill, meter 45012345678901", about_bills=True) == [
        ("amount", "7000"), ("customer_ref", "45012345678901")]


def test_a_customer_id_after_its_cue_is_the_reference() -> None:
    assert roles("pay spectranet 15000 customer id SPEC-12345", about_bills=True) == [
        ("amount", "15000"), ("customer_ref", "SPEC12345")]


def test_an_internet_user_id_after_id_is_the_reference_and_the_amount_in_words_stays() -> None:
    assert roles("renew my smile data, sixteen thousand naira, user id 20458812", about_bills=True) == [
        ("amount", "16000"), ("customer_ref", "20458812")]
    assert roles("spectranet 12k abeg my id na 40913377", about_bills=True) == [
        ("amount", "12000"), ("customer_ref", "40913377")]


def test_a_naira_sign_in_letters_is_an_amount_not_a_code() -> None:
    assert roles("pay spectranet N12000", about_bills=True) == [("amount", "12000")]
    assert roles("gotv NGN4500 abeg", about_bills=True) == [("amount", "4500")]


def test_a_long_number_no_amount_can_be_is_a_reference_even_alone() -> None:
    # A 13-digit meter number, or one with a leading 0, is never naira.
    assert roles("0451234567123") == [("customer_ref", "0451234567123")]
    assert roles("045123456") == [("customer_ref", "045123456")]
    assert roles("WB-0093321", codes=True) == [("customer_ref", "WB0093321")]
    assert roles("WB-0093321") == []


def test_a_postpaid_account_number_in_an_electricity_bill_is_the_reference() -> None:
    assert roles("pay ikedc postpaid 8k account number 4501234567", about_bills=True) == [
        ("amount", "8000"), ("customer_ref", "4501234567")]


def test_ten_digits_outside_cable_tv_are_an_account_number() -> None:
    assert roles("send 10k to 7023456789") == [("amount", "10000"), ("account_number", "7023456789")]


@pytest.mark.parametrize("text", [
    "which one", "send it by 5pm", "for the past 3 months", "in 2 weeks",
    "open 24/7?", "on the 3rd of march", "at 10:30", "send am to the two of them",
])
def test_what_is_no_amount(text: str) -> None:
    assert read_numbers(text).amounts == []


def test_two_different_amounts_are_both_seen_so_the_caller_can_ask() -> None:
    found = read_numbers("send 5k or maybe 3k to savings")
    assert found.distinct_amounts == {"5000", "3000"}


def test_the_same_amount_written_twice_is_one() -> None:
    assert read_numbers("send 5k (5,000 naira) to savings").distinct_amounts == {"5000"}


def test_positions_point_at_the_text() -> None:
    text = "pls send N2,500 to 0123456789"
    assert [text[f.start:f.end] for f in read_numbers(text).found] == ["N2,500", "0123456789"]
