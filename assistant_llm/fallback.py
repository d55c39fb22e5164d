"""Messages the NLU was unsure about: the model may name an intent, answer briefly, or give up.

The model's JSON is checked against the domain before anything happens:

- the intent must be one of the domain's, and never ``affirm`` (a YES only ever
  comes from the customer) or ``nlu_fallback``;
- a money-moving intent may only *start* a form: while a form is open it is
  refused, so the model can never complete or confirm a payment;
- entities must be domain entities whose values are in the customer's own
  message (digits the model saw as placeholders are put back from the message);
- an answer must pass the output guardrails and state no figures at all.

A suggested intent goes back into Rasa as the user's message (see
``actions.support.ActionFallback``), so forms, validation and the YES
confirmation apply exactly as if the NLU had understood it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assistant_llm.client import GroqChat
from assistant_llm.errors import LLMError
from assistant_llm.grounding import extract_figures
from assistant_llm.guardrails import Redacted, answer_problem, redact
from assistant_llm.prompts import fallback_message, fallback_system
from banking.catalog import canonical_account_type, canonical_bank, canonical_biller, canonical_network
from banking.money import amount_entity_value, parse_amount_kobo

logger = logging.getLogger(__name__)

# EXTERNAL_ intents come only from the providers' verified webhooks, never from a customer's words.
NEVER_SUGGESTED = frozenset({"affirm", "nlu_fallback", "EXTERNAL_bank_linked", "EXTERNAL_bank_updated"})
MONEY_INTENTS = frozenset({"transfer_money", "pay_bill", "buy_airtime"})
MAX_ENTITIES = 6
_MAX_VALUE = 64
_NUMBERS = frozenset({"account_number", "phone_number", "customer_ref"})
_DIGIT_RUN = re.compile(r"\+?\d[\d\s-]*\d|[A-Za-z0-9-]+")
_CANONICAL = {
    "bank": canonical_bank,
    "biller": canonical_biller,
    "network": canonical_network,
    "account_type": canonical_account_type,
}


@dataclass(frozen=True)
class Decision:
    """What to do with an unclear message: "intent", "answer" or "menu"."""

    action: str
    intent: str | None = None
    entities: tuple[dict[str, Any], ...] = ()
    answer: str | None = None
    reason: str = ""


class FallbackRouter:
    def __init__(self, chat: GroqChat) -> None:
        self.chat = chat
        self.decisions: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.chat.enabled

    async def route(
        self,
        *,
        text: str,
        language: str,
        intents: Iterable[str],
        entities: Iterable[str],
        user: str,
        active_form: str | None = None,
    ) -> Decision:
        """Never raises: any failure is the menu."""
        if not self.enabled or not text.strip() or text.strip().startswith("/"):
            return self._count(Decision("menu", reason="not_asked"))
        allowed_intents = [name for name in intents if name not in NEVER_SUGGESTED and not _external(name)]
        allowed_entities = list(entities)
        redacted = redact(text)
        messages = [
            {"role": "system", "content": fallback_system(language, allowed_intents, allowed_entities)},
            {"role": "user", "content": fallback_message(redacted.text, active_form)},
        ]
        try:
            completion = await self.chat.complete(
                messages, user=user, purpose="fallback", json_output=True, max_tokens=512
            )
        except LLMError as error:
            return self._count(Decision("menu", reason=error.code))
        return self._count(
            parse_decision(completion.content, redacted, text, allowed_intents, allowed_entities, active_form)
        )

    def _count(self, decision: Decision) -> Decision:
        key = f"{decision.action}:{decision.reason}" if decision.action == "menu" else decision.action
        self.decisions[key] = self.decisions.get(key, 0) + 1
        return decision


def parse_decision(
    content: str,
    redacted: Redacted,
    text: str,
    intents: Sequence[str],
    entities: Sequence[str],
    active_form: str | None = None,
) -> Decision:
    """The model's JSON, validated against the domain; the menu for anything that does not fit."""
    try:
        raw = json.loads(_json_text(content))
    except ValueError:
        return Decision("menu", reason="malformed_json")
    if not isinstance(raw, Mapping):
        return Decision("menu", reason="not_an_object")
    action = raw.get("action")
    if action == "intent":
        return _intent_decision(raw, redacted, text, intents, entities, active_form)
    if action == "answer":
        answer = raw.get("answer")
        if not isinstance(answer, str):
            return Decision("menu", reason="no_answer")
        answer = answer.strip()
        problem = answer_problem(answer) or ("figures" if extract_figures(answer) else None)
        if problem is not None:
            return Decision("menu", reason=f"answer_{problem}")
        return Decision("answer", answer=answer)
    if action == "menu":
        return Decision("menu", reason="model_chose_menu")
    return Decision("menu", reason="unknown_action")


def _intent_decision(raw: Mapping[str, Any], redacted: Redacted, text: str, intents: Sequence[str],
                     entities: Sequence[str], active_form: str | None) -> Decision:
    intent = raw.get("intent")
    if not isinstance(intent, str) or intent in NEVER_SUGGESTED or _external(intent) or intent not in intents:
        return Decision("menu", reason="intent_not_allowed")
    if intent in MONEY_INTENTS and active_form:
        return Decision("menu", reason="money_intent_in_form")
    found: list[dict[str, Any]] = []
    given = raw.get("entities") or []
    if not isinstance(given, list):
        given = []
    for item in given[:MAX_ENTITIES]:
        entity = _entity(item, redacted, text, entities)
        if entity is not None and all(e["entity"] != entity["entity"] for e in found):
            found.append(entity)
    return Decision("intent", intent=intent, entities=tuple(found))


def _entity(item: Any, redacted: Redacted, text: str, entities: Sequence[str]) -> dict[str, Any] | None:
    if not isinstance(item, Mapping):
        return None
    name, value = item.get("entity"), item.get("value")
    if not isinstance(name, str) or name not in entities or not isinstance(value, (str, int, float)):
        return None
    value = redacted.restore(str(value)).strip()
    if not value or len(value) > _MAX_VALUE or not _in_message(name, value, text):
        return None
    if name == "amount":
        value = amount_entity_value(value) or value
    entity: dict[str, Any] = {"entity": name, "value": value, "extractor": "LLMFallback"}
    start = text.lower().find(value.lower())
    if start >= 0:
        entity.update(start=start, end=start + len(value))
    return entity


def _in_message(name: str, value: str, text: str) -> bool:
    """The value is the customer's own: written in the message, or a spelling of something written there."""
    if name == "amount":
        wanted = parse_amount_kobo(value)
        return wanted is not None and wanted in _amounts(text)
    if name in _NUMBERS:
        return _squash(value) in {_squash(run) for run in _DIGIT_RUN.findall(text)}
    if _squash(value) and _squash(value) in _squash(text):
        return True
    canonical = _CANONICAL.get(name)
    if canonical is not None:
        target = canonical(value)
        return target is not None and any(canonical(gram) == target for gram in _ngrams(text, 3))
    return False


def _external(intent: str) -> bool:
    return intent.upper().startswith("EXTERNAL_")


def merge_entities(nlu: Iterable[Mapping[str, Any]], suggested: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The NLU's own entities first; the model's only for entity types the NLU did not find."""
    merged = [dict(entity) for entity in nlu if isinstance(entity, Mapping) and entity.get("entity")]
    seen = {entity["entity"] for entity in merged}
    merged += [dict(entity) for entity in suggested if entity["entity"] not in seen]
    return merged


def _json_text(content: str) -> str:
    """The JSON object in the reply, also when the model wrapped it in a code fence."""
    stripped = content.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", stripped, re.DOTALL)
    return fenced.group(1) if fenced else stripped


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _ngrams(text: str, longest: int) -> list[str]:
    words = re.findall(r"[\w']+", text.lower())
    return [" ".join(words[i:i + n]) for n in range(1, longest + 1) for i in range(len(words) - n + 1)]


def _amounts(text: str) -> set[int]:
    found = set()
    for gram in _ngrams(re.sub(r"(?<=\d),(?=\d{3})", "", text.replace("₦", " ₦")), 4):
        kobo = parse_amount_kobo(gram)
        if kobo is not None:
            found.add(kobo)
    for token in re.findall(r"[₦#]?\d[\d,]*(?:\.\d+)?[kKmM]?", text):
        kobo = parse_amount_kobo(token)
        if kobo is not None:
            found.add(kobo)
    return found
