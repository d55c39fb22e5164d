"""Read-only answers: balances, transactions, spending summary, receipts."""

from __future__ import annotations

import functools
import logging
import re
from datetime import datetime
from typing import Any, Callable, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.forms import account_in_text
from actions.runtime import (
    LAGOS,
    account_label,
    banking,
    call,
    customer,
    in_background,
    latest_entity,
    local_time,
    tell_settled,
    utter_refusal,
)
from assistant_llm.charts import ChartStore, render_category_chart
from assistant_llm.errors import LLMError
from assistant_llm.insights import data_fingerprint, is_open_question, wants_breakdown
from assistant_llm.runtime import assistant
from banking import errors
from banking.money import format_money, mask_account_number, parse_amount_kobo

logger = logging.getLogger(__name__)

MAX_LISTED = 10
REFERENCE = re.compile(r"\bSBX-[0-9A-F]{6,}\b", re.IGNORECASE)


def balance_lines(accounts: List[Any]) -> str:
    return "\n".join(
        f"• {account.name} ({mask_account_number(account.number)}): "
        f"{format_money(account.balance_kobo, getattr(account, 'currency', 'NGN'))}"
        for account in accounts
    )


class ActionCheckBalance(Action):
    def name(self) -> str:
        return "action_check_balance"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        user = customer(tracker)
        await tell_settled(dispatcher, user)  # "check your balance" is what an unknown outcome asks for
        try:
            profile = await call(banking().profile, user)
            named = account_in_text(tracker.latest_message.get("text") or "", list(profile.accounts))
            account = named.key if named is not None else latest_entity(tracker, "account_type")
            accounts = await call(banking().balances, user, account)
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
            return []
        dispatcher.utter_message(response="utter_balances", bank=profile.bank, lines=balance_lines(accounts))
        return []


class ActionSearchTransactions(Action):
    def name(self) -> str:
        return "action_search_transactions"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        amount = latest_entity(tracker, "amount")
        text = (tracker.latest_message.get("text") or "").lower()
        profile = await call(banking().find_profile, customer(tracker))
        named = account_in_text(text, list(profile.accounts)) if profile is not None else None
        if named is not None and amount and named.masked_number.endswith(str(amount)):
            amount = None  # "the one ending 2222" names the account, not an amount
        min_kobo = max_kobo = None
        if amount:
            if any(word in text for word in ("below", "under", "less than", "less dan", "pass no")):
                max_kobo = parse_amount_kobo(amount)
            else:
                min_kobo = parse_amount_kobo(amount)
        direction = latest_entity(tracker, "direction")
        try:
            page = await call(
                banking().search_transactions,
                customer(tracker),
                period_text=latest_entity(tracker, "time_period"),
                merchant=latest_entity(tracker, "merchant"),
                direction=direction,
                category=latest_entity(tracker, "category"),
                min_kobo=min_kobo,
                max_kobo=max_kobo,
                limit=MAX_LISTED,
                account=named.key if named is not None else latest_entity(tracker, "account_type"),
            )
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
            return []
        if not page.items:
            dispatcher.utter_message(response="utter_no_transactions", period=page.period_label)
            return []
        lines = "\n".join(
            f"• {local_date(t.posted_at)} {'-' if t.direction == 'debit' else '+'}"
            f"{format_money(t.amount_kobo, t.currency)} {t.merchant or t.narration}"
            for t in page.items
        )
        shown = len(page.items)
        footer = f"Showing the latest {shown} of {page.total_count}." if page.total_count > shown else ""
        title = {"debit": "Money out", "credit": "Money in"}.get(direction or "", "Transactions")
        dispatcher.utter_message(
            response="utter_transactions",
            title=title,
            period=page.period_label,
            count=page.total_count,
            lines=lines,
            footer=f"{footer} Total: {format_money(page.total_kobo, page.currency)}".strip(),
        )
        return []


class ActionSpendingSummary(Action):
    """Spending questions: a grounded Groq answer to an open question when one is configured,
    else (and whenever the model's answer cannot be vouched for) the deterministic breakdown;
    plus a category chart when the question is about a breakdown and charts are served."""

    def name(self) -> str:
        return "action_spending_summary"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        user = customer(tracker)
        period_text = latest_entity(tracker, "time_period")
        try:
            summary = await call(banking().spending_summary, user, period_text)
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
            return []
        if not summary.by_category:
            dispatcher.utter_message(response="utter_no_spending", period=summary.period_label)
            return []
        question = tracker.latest_message.get("text") or ""
        language = tracker.get_slot("language") or "english"
        answer = await grounded_insight(question, language, user, period_text)
        if answer is not None:
            dispatcher.utter_message(text=answer)
        else:
            total = summary.total_debit_kobo or 1
            focus = latest_entity(tracker, "category")
            lines = "\n".join(
                f"{'▶' if name == focus else '•'} {name.capitalize()}: {format_money(kobo, summary.currency)}"
                f" ({round(100 * kobo / total)}%)"
                for name, kobo in summary.by_category
            )
            dispatcher.utter_message(
                response="utter_spending_summary",
                period=summary.period_label,
                lines=lines,
                total_out=format_money(summary.total_debit_kobo, summary.currency),
                total_in=format_money(summary.total_credit_kobo, summary.currency),
            )
        if wants_breakdown(question):
            url = await spending_chart(summary.by_category, summary.period_label, language, summary.currency)
            if url is not None:
                dispatcher.utter_message(image=url)
        return []


async def grounded_insight(question: str, language: str, user: str, period_text: str | None) -> str | None:
    """The model's answer when Groq is configured and the answer is grounded; None means "use the summary"."""
    engine = assistant().insights
    if not engine.enabled or not is_open_question(question):
        return None
    service = banking()
    today = datetime.now(LAGOS).date()
    try:
        fingerprint = await call(data_fingerprint, service, user, today)
        found = await engine.answer(
            question=question, language=language, service=service, user=user, today=today,
            fingerprint=fingerprint, period_hint=period_text, runner=call,
        )
    except (LLMError, errors.BankingError) as error:
        logger.info("spending question answered deterministically (%s)", getattr(error, "code", "error"))
        return None
    return found.text


async def spending_chart(by_category: Any, period_label: str, language: str, currency: str = "NGN") -> str | None:
    """The chart's URL at once; the chart is drawn after the answer has gone (the channel waits for
    it, so the text comes first). None when charts are off or no name could be reserved."""
    store = ChartStore.from_env()
    if not store.enabled:
        return None
    try:
        url = await call(store.reserve)
    except (OSError, ValueError, RuntimeError) as error:
        logger.warning("spending chart not made (%s)", type(error).__name__)
        return None
    in_background(draw_chart(store, url, functools.partial(render_category_chart, by_category, period_label,
                                                           language, currency)))
    return url


async def draw_chart(store: ChartStore, url: str, render: Callable[[], bytes]) -> None:
    """Draw a reserved chart and write it; on failure say so to the channel (it stops waiting)."""
    try:
        await call(store.fill, url, await call(render))
    except (OSError, ValueError, RuntimeError) as error:
        logger.warning("spending chart not made (%s)", type(error).__name__)
        try:
            await call(store.abandon, url)
        except (OSError, ValueError) as cleanup:
            logger.warning("spending chart mark not removed (%s)", type(cleanup).__name__)


class ActionShowReceipt(Action):
    """Receipt of a past transaction: by reference, by merchant ("my uber receipt"), else the latest."""

    def name(self) -> str:
        return "action_show_receipt"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        user = customer(tracker)
        await tell_settled(dispatcher, user)  # "did my transfer go through?": a payment at Mono is verified first
        reference = REFERENCE.search(tracker.latest_message.get("text") or "")
        merchant = latest_entity(tracker, "merchant")
        try:
            if reference:
                transaction = await call(banking().receipt, user, reference.group(0))
            elif merchant:
                page = await call(
                    banking().search_transactions, user,
                    period_text=latest_entity(tracker, "time_period") or "past 3 months", merchant=merchant, limit=1,
                )
                if not page.items:
                    raise errors.UnknownAccount("no transaction with that merchant")
                transaction = page.items[0]
            else:
                transaction = await call(banking().receipt, user, None)
        except errors.UnknownAccount:
            dispatcher.utter_message(response="utter_no_receipt")
            return []
        except errors.BankingError as error:
            utter_refusal(dispatcher, error)
            return []
        dispatcher.utter_message(
            response="utter_receipt",
            reference=transaction.reference,
            date=f"{local_date(transaction.posted_at)} {local_time(transaction.posted_at)}",
            amount=format_money(transaction.amount_kobo, transaction.currency),
            direction=transaction.direction,
            counterparty=transaction.merchant or "-",
            account=await own_account_label(user, transaction.account),
            narration=transaction.narration,
        )
        return []


async def own_account_label(user: str, key: str) -> str:
    """How the customer knows the account a transaction is on ("Savings", "Plaid Checking (******0000)");
    an account no longer linked by its type."""
    profile = await call(banking().find_profile, user)
    account = next((a for a in (profile.accounts if profile else ()) if a.key == key), None)
    return account.label if account is not None else account_label(key.partition("_")[0])


def local_date(moment: Any) -> str:
    from actions.runtime import LAGOS

    return moment.astimezone(LAGOS).strftime("%d %b") if moment.tzinfo else moment.strftime("%d %b")
