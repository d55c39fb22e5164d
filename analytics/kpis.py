"""Conversation KPIs from analytics records (``analytics.records``), for a period.

Definitions (the report page and `make kpis` print the same):

- **message**: a customer's message (a typed text, a voice note or a tapped button). The
  copy the LLM fallback replays after naming an intent (a ``rewind`` then a new ``user``
  record) is the same message, not a second one.
- **conversation**: a customer's messages with no silence longer than 30 minutes
  (``CONVERSATION_GAP_SECONDS``); **session**: one of Rasa's sessions (``session_started``);
  **active customer**: a hashed user with at least one message. Days and months are
  Lagos time (WAT, UTC+1).
- **containment**: conversations in which nobody asked for, or was handed to, a person
  (``action_human_handoff`` never ran); **handoff rate** is the rest.
- **fallback rate**: messages classified ``nlu_fallback``; **LLM-fallback rate**: messages the
  Groq fallback handled (it named an intent, replayed as a rewind, or answered in free text).
- **forms**: each activation is a run that ends *completed* (the form itself closed it after
  its last question), *refused* (closed at once with a refusal: no bank, frozen),
  *cancelled* (closed by ``action_cancel_flow``) or *abandoned* (still open when the customer
  went quiet or started something else). Drop-off counts the cancelled and abandoned runs
  by the last question asked (``-`` when none was).
- **confirmations**: asked (a confirmation was shown), accepted (done or scheduled),
  declined (No / cancel while it was open), expired, closed (the customer moved on).
- **money movements** (transfers, bills, airtime): executed, failed (YES given, refused by
  the bank or the core); **bank links** made.
- **response time**: from the customer's message as Rasa logged it to the first reply.
- **satisfaction**: 👍 share of the ratings counted (one per completed task, never in a form).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, TypeGuard

LAGOS = timezone(timedelta(hours=1), "WAT")
CONVERSATION_GAP_SECONDS = 30 * 60

FALLBACK_INTENT = "nlu_fallback"
FALLBACK_ACTION = "action_fallback"
HANDOFF_ACTION = "action_human_handoff"
CANCEL_FLOW_ACTION = "action_cancel_flow"
CANCEL_PENDING_ACTION = "action_cancel_pending"
CONFIRM_ACTION = "action_confirm_pending"
LISTEN_ACTION = "action_listen"

CONFIRMATIONS = {
    "utter_confirm_transfer": "transfer",
    "utter_confirm_bill": "bill",
    "utter_confirm_airtime": "airtime",
    "utter_confirm_freeze": "freeze",
    "utter_confirm_unfreeze": "unfreeze",
    "utter_confirm_disconnect": "disconnect",
    "utter_confirm_set_limit": "set_limit",
    "utter_confirm_raise_limit": "set_limit",
}
DONE = {
    "utter_transfer_done": "transfer",
    "utter_bill_paid": "bill",
    "utter_airtime_done": "airtime",
    "utter_frozen_done": "freeze",
    "utter_unfrozen_done": "unfreeze",
    "utter_unfreeze_scheduled": "unfreeze",
    "utter_disconnected": "disconnect",
    "utter_limit_changed": "set_limit",
    "utter_limit_raise_scheduled": "set_limit",
}
MONEY = ("transfer", "bill", "airtime")
EXPIRED = "utter_confirmation_expired"
CLOSED = "utter_confirmation_closed"
REFUSALS = frozenset({
    "utter_not_connected", "utter_refuse_frozen", "utter_refuse_insufficient_funds",
    "utter_refuse_limit_exceeded", "utter_refuse_unknown_account", "utter_refuse_invalid_amount",
    "utter_refuse_invalid_details", "utter_provider_unavailable", "utter_outcome_unknown",
})
FORM_REFUSALS = frozenset({"utter_not_connected", "utter_refuse_frozen", "utter_already_connected"})
BANK_LINKED = "utter_bank_connected"
FEEDBACK_ASKED = "utter_ask_feedback"
FEEDBACK_COUNTED = "utter_feedback_thanks"
FEEDBACK_INTENT = "rate_experience"

Record = Mapping[str, Any]


@dataclass
class _FormRun:
    form: str
    steps: list[str] = field(default_factory=list)


@dataclass
class _User:
    """What a pass over one customer's records needs to remember."""

    last_message_at: float | None = None
    conversation: int = -1
    replay_next: bool = False
    last_action: str | None = None
    responses: list[str] = field(default_factory=list)  # since the last action
    form: _FormRun | None = None
    pending: str | None = None  # the kind of the confirmation shown and not yet answered
    message_at: float | None = None  # the message still waiting for its first reply
    rating: str | None = None  # a rating given this turn, counted if it is thanked


@dataclass
class KpiReport:
    """Every figure of the period, JSON-ready via ``as_dict``."""

    since: float | None
    until: float | None
    totals: dict[str, Any]
    rates: dict[str, float | None]
    per_day: list[dict[str, Any]]
    per_month: list[dict[str, Any]]
    forms: dict[str, dict[str, Any]]
    confirmations: dict[str, int]
    money_movements: dict[str, dict[str, int]]
    response_ms: dict[str, float | None]
    satisfaction: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": _iso(self.since), "until": _iso(self.until), "totals": self.totals, "rates": self.rates,
            "per_day": self.per_day, "per_month": self.per_month, "forms": self.forms,
            "confirmations": self.confirmations, "money_movements": self.money_movements,
            "response_ms": self.response_ms, "satisfaction": self.satisfaction,
        }


def compute(records: Iterable[Record], since: float | None = None, until: float | None = None) -> KpiReport:
    """The KPIs of the records whose time falls in [since, until); records in time order per user."""
    users: dict[str, _User] = defaultdict(_User)
    messages = fallbacks = llm = 0
    days: dict[str, dict[str, Any]] = defaultdict(_period)
    months: dict[str, dict[str, Any]] = defaultdict(_period)
    conversations: dict[tuple[str, int], dict[str, Any]] = {}
    forms: dict[str, dict[str, Any]] = defaultdict(_form_stats)
    confirmations: Counter[str] = Counter()
    money = {kind: {"executed": 0, "failed": 0} for kind in MONEY}
    bank_links = 0
    latencies: list[float] = []
    ratings: Counter[str] = Counter()
    feedback_asked = 0

    def end_form(state: _User, outcome: str) -> None:
        run = state.form
        if run is None:
            return
        stats = forms[run.form]
        stats[outcome] += 1
        if outcome in ("cancelled", "abandoned"):
            stats["dropped_at"][run.steps[-1] if run.steps else "-"] += 1
        state.form = None

    def first_reply(state: _User, at: float | None) -> None:
        if state.message_at is not None and at is not None:
            latencies.append(max(0.0, at - state.message_at) * 1000)
        state.message_at = None

    for record in records:
        at = record.get("at")
        if not _inside(at, since, until):
            continue
        user = str(record.get("user"))
        state = users[user]
        kind = record.get("kind")
        if kind == "user":
            if state.replay_next:  # the LLM fallback's replay of the message just counted
                state.replay_next = False
                continue
            first_reply(state, None)
            messages += 1
            day, month = _day(at), _day(at)[:7]
            if state.last_message_at is None or at - state.last_message_at > CONVERSATION_GAP_SECONDS:
                state.conversation += 1
                conversations[(user, state.conversation)] = {"handoff": False}
                days[day]["conversations"] += 1
                months[month]["conversations"] += 1
            state.last_message_at = at
            state.message_at = at
            for bucket in (days[day], months[month]):
                bucket["messages"] += 1
                bucket["customers"].add(user)
            if record.get("intent") == FALLBACK_INTENT:
                fallbacks += 1
            state.rating = record.get("rating") if record.get("intent") == FEEDBACK_INTENT else None
        elif kind == "session":
            days[_day(at)]["sessions"] += 1
            months[_day(at)[:7]]["sessions"] += 1
        elif kind == "rewind":
            state.replay_next = True
            if state.last_action == FALLBACK_ACTION:  # the LLM named an intent; the message is replayed
                llm += 1
        elif kind == "action":
            name = record.get("action")
            if name == LISTEN_ACTION:
                state.last_action, state.responses = name, []
                continue
            if state.form is not None and name == CANCEL_FLOW_ACTION:
                end_form(state, "cancelled")
            if name == HANDOFF_ACTION and (user, state.conversation) in conversations:
                conversations[(user, state.conversation)]["handoff"] = True
            if name == CANCEL_PENDING_ACTION and state.pending is not None:
                confirmations["declined"] += 1
                state.pending = None
            state.last_action, state.responses = name, []
        elif kind == "bot":
            first_reply(state, at)
            response = record.get("response")
            state.responses.append(response or "")
            if response is None and state.last_action == FALLBACK_ACTION:
                llm += 1  # the LLM answered in its own words
            if response in CONFIRMATIONS:
                state.pending = CONFIRMATIONS[response]
                confirmations["asked"] += 1
            elif response in DONE:
                confirmations["accepted"] += 1
                if DONE[response] in money:
                    money[DONE[response]]["executed"] += 1
                state.pending = None
            elif response == EXPIRED and state.pending is not None:
                confirmations["expired"] += 1
                state.pending = None
            elif response == CLOSED and state.pending is not None:
                confirmations["closed"] += 1
                state.pending = None
            elif response in REFUSALS and state.last_action == CONFIRM_ACTION and state.pending is not None:
                if state.pending in money:
                    money[state.pending]["failed"] += 1
                state.pending = None
            elif response == BANK_LINKED:
                bank_links += 1
            elif response == FEEDBACK_ASKED:
                feedback_asked += 1
            elif response == FEEDBACK_COUNTED and state.rating:
                ratings[state.rating] += 1
                state.rating = None
        elif kind == "form":
            name = record.get("form")
            if name:
                if state.form is not None and state.form.form != name:
                    end_form(state, "abandoned")
                if state.form is None:
                    state.form = _FormRun(name)
                    forms[name]["started"] += 1
            elif state.form is not None:
                if state.last_action == state.form.form:
                    refused = bool(FORM_REFUSALS.intersection(state.responses))
                    end_form(state, "refused" if refused else "completed")
                else:
                    end_form(state, "cancelled")
        elif kind == "form_step":
            slot = record.get("slot")
            if slot and state.form is not None:
                if not state.form.steps or state.form.steps[-1] != slot:
                    state.form.steps.append(slot)
                    forms[state.form.form]["asked"][slot] += 1

    for state in users.values():
        end_form(state, "abandoned")

    total_conversations = len(conversations)
    handoffs = sum(1 for item in conversations.values() if item["handoff"])
    customers = {user for bucket in days.values() for user in bucket["customers"]}
    counted = ratings["good"] + ratings["bad"]
    totals = {
        "messages": messages,
        "conversations": total_conversations,
        "sessions": sum(bucket["sessions"] for bucket in days.values()),
        "active_customers": len(customers),
        "messages_per_customer": _ratio(messages, len(customers), digits=2),
        "fallbacks": fallbacks,
        "llm_fallbacks": llm,
        "handoffs": handoffs,
        "bank_links": bank_links,
    }
    rates = {
        "containment": _ratio(total_conversations - handoffs, total_conversations),
        "handoff": _ratio(handoffs, total_conversations),
        "fallback": _ratio(fallbacks, messages),
        "llm_fallback": _ratio(llm, messages),
    }
    return KpiReport(
        since=since,
        until=until,
        totals=totals,
        rates=rates,
        per_day=_table(days, "day"),
        per_month=_table(months, "month"),
        forms={name: _finish_form(stats) for name, stats in sorted(forms.items())},
        confirmations={key: confirmations[key] for key in ("asked", "accepted", "declined", "expired", "closed")},
        money_movements=money,
        response_ms={"count": len(latencies), "p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
        satisfaction={"asked": feedback_asked, "good": ratings["good"], "bad": ratings["bad"],
                      "rate": _ratio(ratings["good"], counted)},
    )


def _inside(at: Any, since: float | None, until: float | None) -> TypeGuard[float]:
    """A record's time (a number) within [since, until); a record without one is outside."""
    if not isinstance(at, (int, float)):
        return False
    return (since is None or at >= since) and (until is None or at < until)


def _period() -> dict[str, Any]:
    return {"conversations": 0, "sessions": 0, "messages": 0, "customers": set()}


def _form_stats() -> dict[str, Any]:
    return {"started": 0, "completed": 0, "refused": 0, "cancelled": 0, "abandoned": 0,
            "asked": Counter(), "dropped_at": Counter()}


def _finish_form(stats: dict[str, Any]) -> dict[str, Any]:
    steps = []
    for slot, asked in stats["asked"].items():
        dropped = stats["dropped_at"].get(slot, 0)
        steps.append({"step": slot, "asked": asked, "dropped": dropped, "drop_rate": _ratio(dropped, asked)})
    if stats["dropped_at"].get("-"):
        steps.insert(0, {"step": "-", "asked": None, "dropped": stats["dropped_at"]["-"], "drop_rate": None})
    return {
        "started": stats["started"], "completed": stats["completed"], "refused": stats["refused"],
        "cancelled": stats["cancelled"], "abandoned": stats["abandoned"],
        "completion_rate": _ratio(stats["completed"], stats["started"]),
        "steps": steps,
    }


def _table(buckets: Mapping[str, dict[str, Any]], key: str) -> list[dict[str, Any]]:
    rows = []
    for name in sorted(buckets):
        bucket = buckets[name]
        customers = len(bucket["customers"])
        rows.append({key: name, "conversations": bucket["conversations"], "sessions": bucket["sessions"],
                     "active_customers": customers, "messages": bucket["messages"],
                     "messages_per_customer": _ratio(bucket["messages"], customers, digits=2)})
    return rows


def _day(at: float) -> str:
    return datetime.fromtimestamp(at, LAGOS).strftime("%Y-%m-%d")


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, LAGOS).isoformat()


def _ratio(part: float, whole: float, digits: int = 4) -> float | None:
    return None if not whole else round(part / whole, digits)


def _percentile(values: list[float], percent: float) -> float | None:
    """Nearest-rank percentile (the value at rank ceil(p/100 * n)), in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return round(ordered[rank - 1], 1)


def parse_when(text: str | None, *, end: bool = False) -> float | None:
    """``YYYY-MM-DD`` (Lagos midnight; the next midnight with ``end``) or an ISO time, as epoch seconds."""
    if not text:
        return None
    if len(text) == 10:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=LAGOS)
        return (day + timedelta(days=1) if end else day).timestamp()
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=LAGOS)).timestamp()


def format_text(report: KpiReport) -> str:
    """The KPIs as a short plain-text summary (what `make kpis` prints)."""
    t, r = report.totals, report.rates
    lines = [
        f"Period: {_iso(report.since) or 'start'} .. {_iso(report.until) or 'now'}",
        f"Conversations {t['conversations']}, sessions {t['sessions']}, active customers {t['active_customers']}, "
        f"messages {t['messages']} ({_num(t['messages_per_customer'])} per customer)",
        f"Containment {_pct(r['containment'])}, handoff {_pct(r['handoff'])}, fallback {_pct(r['fallback'])}, "
        f"LLM fallback {_pct(r['llm_fallback'])}",
        "Confirmations: " + ", ".join(f"{k} {v}" for k, v in report.confirmations.items()),
        "Money movements: " + ", ".join(
            f"{kind} {v['executed']} executed / {v['failed']} failed" for kind, v in report.money_movements.items()),
        f"Bank links made {t['bank_links']}",
        f"Response time p50 {_num(report.response_ms['p50'])} ms, p95 {_num(report.response_ms['p95'])} ms "
        f"({report.response_ms['count']} replies)",
        f"Satisfaction {_pct(report.satisfaction['rate'])} "
        f"({report.satisfaction['good']} 👍 / {report.satisfaction['bad']} 👎 of {report.satisfaction['asked']} asked)",
    ]
    for name, form in report.forms.items():
        drops = ", ".join(f"{s['step']} {s['dropped']}" for s in form["steps"] if s["dropped"]) or "none"
        lines.append(f"Form {name}: {form['started']} started, {form['completed']} completed "
                     f"({_pct(form['completion_rate'])}), {form['refused']} refused, "
                     f"{form['cancelled']} cancelled, {form['abandoned']} abandoned; drop-off by step: {drops}")
    lines.append("Per day:")
    lines.extend(f"  {row['day']}: {row['conversations']} conversations, {row['sessions']} sessions, "
                 f"{row['active_customers']} customers, {row['messages']} messages" for row in report.per_day)
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"
