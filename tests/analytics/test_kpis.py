"""KPIs from scripted conversations (tests/analytics/scripted.py) against figures counted by hand."""

from __future__ import annotations

from analytics.kpis import compute, format_text, parse_when
from tests.analytics.privacy import leaks
from tests.analytics.scripted import SECRETS, at, recorded


def test_the_kpis_match_the_hand_counted_figures() -> None:
    report = compute(recorded().read())

    assert report.totals == {
        "messages": 36, "conversations": 7, "sessions": 7, "active_customers": 4,
        "messages_per_customer": 9.0, "fallbacks": 2, "llm_fallbacks": 2, "handoffs": 1, "bank_links": 1,
    }
    assert report.rates == {"containment": 0.8571, "handoff": 0.1429, "fallback": 0.0556, "llm_fallback": 0.0556}
    assert report.per_day == [
        {"day": "2026-03-02", "conversations": 3, "sessions": 3, "active_customers": 2, "messages": 19,
         "messages_per_customer": 9.5},
        {"day": "2026-03-03", "conversations": 4, "sessions": 4, "active_customers": 4, "messages": 17,
         "messages_per_customer": 4.25},
    ]
    assert report.per_month == [{"month": "2026-03", "conversations": 7, "sessions": 7, "active_customers": 4,
                                 "messages": 36, "messages_per_customer": 9.0}]
    assert report.confirmations == {"asked": 5, "accepted": 2, "declined": 1, "expired": 1, "closed": 0}
    assert report.money_movements == {"transfer": {"executed": 2, "failed": 0}, "bill": {"executed": 0, "failed": 1},
                                      "airtime": {"executed": 0, "failed": 0}}
    assert report.response_ms == {"count": 36, "p50": 300.0, "p95": 1000.0}
    assert report.satisfaction == {"asked": 2, "good": 1, "bad": 1, "rate": 0.5}


def test_form_completion_and_drop_off_per_step() -> None:
    forms = compute(recorded().read()).forms

    transfer = forms["transfer_form"]
    assert (transfer["started"], transfer["completed"], transfer["refused"], transfer["cancelled"],
            transfer["abandoned"], transfer["completion_rate"]) == (5, 3, 1, 0, 1, 0.6)
    assert transfer["steps"] == [
        {"step": "source_account", "asked": 2, "dropped": 1, "drop_rate": 0.5},
        {"step": "amount", "asked": 1, "dropped": 0, "drop_rate": 0.0},
    ]
    bill = forms["bill_form"]
    assert (bill["started"], bill["completed"], bill["cancelled"], bill["completion_rate"]) == (2, 1, 1, 0.5)
    assert {s["step"]: (s["asked"], s["dropped"]) for s in bill["steps"]} == {
        "biller": (2, 0), "customer_ref": (2, 1), "amount": (1, 0), "source_account": (1, 0)}
    assert forms["airtime_form"]["completed"] == 1 and forms["airtime_form"]["completion_rate"] == 1.0
    assert [s["step"] for s in forms["airtime_form"]["steps"]] == ["network", "phone_number", "amount",
                                                                   "source_account"]
    assert forms["connect_bank_form"]["completed"] == 1


def test_a_period_keeps_only_its_own_days() -> None:
    records = recorded().read()

    second_day = compute(records, since=parse_when("2026-03-03"), until=parse_when("2026-03-03", end=True))

    assert second_day.totals["messages"] == 17 and second_day.totals["conversations"] == 4
    assert second_day.totals["bank_links"] == 0
    assert [row["day"] for row in second_day.per_day] == ["2026-03-03"]
    assert parse_when("2026-03-03") == at(3, 0)


def test_the_analytics_store_holds_no_text_phone_or_account_number() -> None:
    records = recorded().read()

    assert len(records) > 150
    assert leaks(records, SECRETS + ["Sent", "₦", "hi"]) == []


def test_the_text_summary_names_every_kpi() -> None:
    text = format_text(compute(recorded().read()))

    for phrase in ("Conversations 7", "sessions 7", "active customers 4", "Containment 85.7 %", "handoff 14.3 %",
                   "fallback 5.6 %", "LLM fallback 5.6 %", "accepted 2", "declined 1", "expired 1",
                   "transfer 2 executed", "bill 0 executed / 1 failed", "Bank links made 1", "p50 300 ms",
                   "p95 1000 ms", "Satisfaction 50.0 %", "Form transfer_form: 5 started, 3 completed (60.0 %)",
                   "drop-off by step: source_account 1"):
        assert phrase in text, (phrase, text)
