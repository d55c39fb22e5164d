"""The model's read-only tools over the banking core, for one customer at a time.

Nothing here can move money, change a limit, freeze, connect or disconnect:
the tools call only the reading methods of ``BankingService`` and the customer
is bound when the toolbox is made, so no argument can name anyone else (an
argument the schema does not list is refused). What the model sees carries
no account numbers and no names of people: person-to-person transfers read
"transfer to a person", salary credits read "salary".

Every number a tool returns is kept as evidence for the grounding check. Amounts are in
the currency of the customer's accounts, named in each result (``currency``: NGN for a
Nigerian bank, USD, EUR or GBP for one linked through Plaid).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from assistant_llm.grounding import Evidence
from banking.errors import BankingError
from banking.models import Transaction
from banking.periods import LAGOS, Period, previous_period
from banking.service import CATEGORIES, BankingService

T = TypeVar("T")

MAX_ROWS = 20
_MAX_TEXT = 40
_PERIOD_HELP = 'a period as the customer says it: "this month", "last month", "last 7 days", "march", "this year"'
_PEOPLE_CATEGORIES = {"transfers"}
_SUBSCRIPTION_CATEGORIES = {"bills", "entertainment", "airtime"}

TOOL_SPECS: tuple[dict[str, Any], ...] = (
    {
        "type": "function",
        "function": {
            "name": "list_transactions",
            "description": "The customer's transactions in a period, newest first, optionally filtered; "
                           "with the count and total of all matches.",
            "parameters": {
                "type": "object",
                "properties": {
                    "period": {"type": "string", "description": _PERIOD_HELP},
                    "category": {"type": "string", "enum": list(CATEGORIES)},
                    "merchant": {"type": "string", "description": "merchant name, e.g. Uber, Shoprite"},
                    "direction": {"type": "string", "enum": ["debit", "credit"]},
                    "min_amount": {"type": "number", "description": "in the accounts' currency"},
                    "max_amount": {"type": "number", "description": "in the accounts' currency"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_ROWS},
                },
                "required": ["period"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "spending_by_category",
            "description": "Money out per category in a period (largest first), total money out and money in.",
            "parameters": {
                "type": "object",
                "properties": {"period": {"type": "string", "description": _PERIOD_HELP}},
                "required": ["period"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "spending_by_merchant",
            "description": "Money out per merchant in a period (largest first), optionally within one category.",
            "parameters": {
                "type": "object",
                "properties": {
                    "period": {"type": "string", "description": _PERIOD_HELP},
                    "category": {"type": "string", "enum": list(CATEGORIES)},
                },
                "required": ["period"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "compare_periods",
            "description": "Money out per category in a period and in the period right before it "
                           "(or another period), with the differences.",
            "parameters": {
                "type": "object",
                "properties": {
                    "period": {"type": "string", "description": _PERIOD_HELP},
                    "compare_to": {"type": "string", "description": "optional other period; default: the one before"},
                    "category": {"type": "string", "enum": list(CATEGORIES)},
                },
                "required": ["period"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "recurring_payments",
            "description": "Payments that repeat (subscriptions, bills, regular top-ups) over the last 90 days.",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
        },
    },
)

READ_ONLY_TOOLS = frozenset(spec["function"]["name"] for spec in TOOL_SPECS)


class ToolArgumentError(ValueError):
    """The model's arguments do not fit the tool: told back to the model, never run."""


@dataclass
class ToolBox:
    """The read-only tools bound to one customer, recording what ran and every number returned."""

    service: BankingService
    user: str
    runner: Callable[..., Any] | None = None  # how blocking core calls run; default: a worker thread
    evidence: Evidence = field(default_factory=Evidence)
    calls: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    currency: str | None = None  # of the amounts the tools returned (ISO 4217); None before any ran

    async def run(self, name: str, arguments: str) -> dict[str, Any]:
        """Run one tool; an unknown name is the caller's to refuse (see ``READ_ONLY_TOOLS``)."""
        if name not in READ_ONLY_TOOLS:
            self.refused.append(name)
            raise KeyError(name)
        try:
            parsed = _arguments(arguments)
            result = await self._blocking(getattr(self, f"_{name}"), **parsed)
        except ToolArgumentError as error:
            return {"error": f"bad arguments: {error}"}
        except TypeError:
            return {"error": "bad arguments: unexpected or missing argument"}
        except BankingError as error:
            return {"error": error.code}
        self.calls.append(name)
        if isinstance(result, dict) and isinstance(result.get("currency"), str):
            self.currency = result["currency"]
        _collect(self.evidence, result)
        return result

    async def _blocking(self, function: Callable[..., T], **kwargs: Any) -> T:
        if self.runner is not None:
            return await self.runner(function, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(function, **kwargs))

    # ------------------------------------------------------------------ the tools (blocking)

    def _list_transactions(self, period: str, category: str | None = None, merchant: str | None = None,
                           direction: str | None = None, min_amount: float | None = None,
                           max_amount: float | None = None, limit: int = 10) -> dict[str, Any]:
        page = self.service.search_transactions(
            self.user, period_text=_text(period), merchant=_merchant(merchant), direction=_choice(direction),
            category=_category(category), min_kobo=_kobo(min_amount), max_kobo=_kobo(max_amount),
            limit=_limit(limit),
        )
        return {
            "period": page.period_label,
            "currency": page.currency,
            "count": page.total_count,
            "total": _naira(page.total_kobo),
            "transactions": [_row(t) for t in page.items],
        }

    def _spending_by_category(self, period: str) -> dict[str, Any]:
        summary = self.service.spending_summary(self.user, _text(period))
        return {
            "period": summary.period_label,
            "currency": summary.currency,
            "money_out": _naira(summary.total_debit_kobo),
            "money_in": _naira(summary.total_credit_kobo),
            "categories": [{"category": name, "amount": _naira(kobo)} for name, kobo in summary.by_category],
        }

    def _spending_by_merchant(self, period: str, category: str | None = None) -> dict[str, Any]:
        wanted = _category(category)
        debits, label, complete = self._debits(_text(period), wanted)
        totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for transaction in debits:
            if transaction.category == "savings" and wanted != "savings":
                continue
            row = totals[_counterparty(transaction)]
            row[0] += transaction.amount_kobo
            row[1] += 1
        ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))[:MAX_ROWS]
        result: dict[str, Any] = {
            "period": label,
            "currency": self.currency,
            "merchants": [{"merchant": name, "amount": _naira(kobo), "count": count}
                          for name, (kobo, count) in ranked],
        }
        if not complete:
            result["note"] = "only the latest 100 payments per category were counted"
        return result

    def _compare_periods(self, period: str, compare_to: str | None = None,
                         category: str | None = None) -> dict[str, Any]:
        wanted = _category(category)
        current = self.service.spending_summary(self.user, _text(period))
        if compare_to:
            other = self.service.spending_summary(self.user, _text(compare_to))
            other_label, other_totals = other.period_label, dict(other.by_category)
        else:
            other_label, other_totals = self._previous_totals(current.period)
        now_totals = dict(current.by_category)
        names = [wanted] if wanted else sorted(set(now_totals) | set(other_totals),
                                                key=lambda n: -now_totals.get(n, 0))
        rows = [{
            "category": name,
            "this_period": _naira(now_totals.get(name, 0)),
            "other_period": _naira(other_totals.get(name, 0)),
            "difference": _naira(now_totals.get(name, 0) - other_totals.get(name, 0)),
        } for name in names]
        return {
            "period": current.period_label,
            "currency": current.currency,
            "other_period": other_label,
            "money_out_this_period": _naira(sum(now_totals.get(name, 0) for name in names)),
            "money_out_other_period": _naira(sum(other_totals.get(name, 0) for name in names)),
            "categories": rows,
        }

    def _recurring_payments(self) -> dict[str, Any]:
        debits, _, _ = self._debits("last 90 days", None)
        groups: dict[str, list[Transaction]] = defaultdict(list)
        for transaction in debits:
            if transaction.category not in _PEOPLE_CATEGORIES | {"savings"}:
                groups[_counterparty(transaction)].append(transaction)
        found: list[dict[str, Any]] = []
        for merchant, items in groups.items():
            months = {t.posted_at.astimezone(LAGOS).strftime("%Y-%m") for t in items}
            amounts = sorted(t.amount_kobo for t in items)
            if _repeats(items[0].category, len(months), amounts):
                found.append({
                    "merchant": merchant,
                    "category": items[0].category,
                    "times": len(items),
                    "typical_amount": _naira(amounts[len(amounts) // 2]),
                    "total": _naira(sum(amounts)),
                    "last_paid": max(t.posted_at for t in items).astimezone(LAGOS).strftime("%d %b"),
                })
        found.sort(key=lambda row: (-row["total"], row["merchant"]))
        return {"period": "in the last 90 days", "currency": self.currency, "recurring": found[:MAX_ROWS]}

    # ------------------------------------------------------------------ helpers

    def _debits(self, period: str | None, category: str | None) -> tuple[list[Transaction], str, bool]:
        """Every debit in the accounts' currency in the period (per category when one page cannot hold them all)."""
        page = self.service.search_transactions(self.user, period_text=period, direction="debit",
                                                category=category, limit=100)
        self.currency = page.currency
        if page.total_count <= len(page.items):
            return [t for t in page.items if t.currency == page.currency], page.period_label, True
        items: list[Transaction] = []
        complete = True
        for name in ([category] if category else CATEGORIES):
            part = self.service.search_transactions(self.user, period_text=period, direction="debit",
                                                    category=name, limit=100)
            items.extend(t for t in part.items if t.currency == page.currency)
            complete = complete and part.total_count <= len(part.items)
        return items, page.period_label, complete

    def _previous_totals(self, period: Period) -> tuple[str, dict[str, int]]:
        """Category totals of the window right before ``period``, as the difference of two rolling windows.

        The core reads periods as the customer says them; "last N days" always ends
        tonight, so [start, end) = last K days minus last K' days.
        """
        before = previous_period(period)
        tonight = self.service.spending_summary(self.user, "today").period.end
        days_to_start = (tonight - before.start).days
        days_to_end = (tonight - before.end).days
        wide = self.service.spending_summary(self.user, f"last {days_to_start} days")
        totals = dict(wide.by_category)
        if days_to_end > 0:
            for name, kobo in self.service.spending_summary(self.user, f"last {days_to_end} days").by_category:
                totals[name] = totals.get(name, 0) - kobo
        return before.label, {name: kobo for name, kobo in totals.items() if kobo}


def _repeats(category: str, months: int, amounts: list[int]) -> bool:
    """Bills, subscriptions and top-ups seen in two months or more; anything else must be
    paid at least monthly for three months at a near-constant amount (no one-off shopping)."""
    if category in _SUBSCRIPTION_CATEGORIES:
        return months >= 2
    return months >= 3 and len(amounts) <= 2 * months and amounts[-1] * 10 <= amounts[0] * 11


def _arguments(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw or "{}")
    except ValueError:
        raise ToolArgumentError("not JSON") from None
    if not isinstance(parsed, dict):
        raise ToolArgumentError("not an object")
    return parsed


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise ToolArgumentError("period must be a short text")
    return value.strip()


def _merchant(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > _MAX_TEXT or not re.fullmatch(r"[\w .&'-]+", value):
        raise ToolArgumentError("merchant must be a short name")
    return value


def _choice(value: Any) -> str | None:
    if value is None:
        return None
    if value not in ("debit", "credit"):
        raise ToolArgumentError("direction must be debit or credit")
    return str(value)


def _category(value: Any) -> str | None:
    if value is None:
        return None
    if value not in CATEGORIES:
        raise ToolArgumentError(f"category must be one of {', '.join(CATEGORIES)}")
    return str(value)


def _kobo(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value > 1e11:
        raise ToolArgumentError("amounts are naira numbers")
    return int(Decimal(str(value)) * 100)


def _limit(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ROWS:
        raise ToolArgumentError(f"limit must be 1 to {MAX_ROWS}")
    return value


def _naira(kobo: int) -> float | int:
    """Naira as a JSON number: 12345 or 12345.5 (exact in a float at these sizes)."""
    naira = Decimal(kobo) / 100
    return int(naira) if naira == naira.to_integral_value() else float(naira)


def _counterparty(transaction: Transaction) -> str:
    """The other side as the model may see it: merchants by name, people never."""
    if transaction.category in _PEOPLE_CATEGORIES:
        return "transfer to a person" if transaction.direction == "debit" else "transfer from a person"
    if transaction.category == "salary":
        return "salary"
    if transaction.category == "savings":
        return "own account move"
    name = transaction.merchant
    return name if len(name) <= 4 else name.title()


def _row(transaction: Transaction) -> dict[str, Any]:
    local: datetime = transaction.posted_at.astimezone(LAGOS)
    return {
        "date": local.strftime("%d %b %Y"),
        "amount": _naira(transaction.amount_kobo),
        "currency": transaction.currency,
        "direction": transaction.direction,
        "category": transaction.category,
        "merchant": _counterparty(transaction),
        "account": transaction.account,
    }


_MONEY_KEYS = frozenset({"total", "money_out", "money_in", "amount", "this_period", "other_period", "difference",
                         "money_out_this_period", "money_out_other_period", "typical_amount"})
_COUNT_KEYS = frozenset({"count", "times"})


def _collect(evidence: Evidence, result: Any) -> None:
    """Amounts, counts and the percentages a result implies (shares of its totals, changes between periods)."""
    evidence.add_result_amounts(_values(result, _MONEY_KEYS))
    evidence.counts.extend(int(n) for n in _values(result, _COUNT_KEYS))
    if not isinstance(result, dict):
        return
    if "money_out" in result:
        money_out = Decimal(str(result["money_out"]))
        evidence.add_share(money_out, Decimal(str(result.get("money_in", 0))))
        for row in result.get("categories", []):
            evidence.add_share(Decimal(str(row["amount"])), money_out)
    if "money_out_this_period" in result:
        now, before = (Decimal(str(result[k])) for k in ("money_out_this_period", "money_out_other_period"))
        evidence.add_change(now, before)
        for row in result.get("categories", []):
            this, other = Decimal(str(row["this_period"])), Decimal(str(row["other_period"]))
            evidence.add_share(this, now)
            evidence.add_share(other, before)
            evidence.add_change(this, other)


def _values(value: Any, keys: frozenset[str], key: str | None = None) -> Iterable[Decimal]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _values(item, keys, name)
    elif isinstance(value, list):
        for item in value:
            yield from _values(item, keys, key)
    elif key in keys and isinstance(value, (int, float)) and not isinstance(value, bool):
        yield Decimal(str(value))
