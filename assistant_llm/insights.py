"""Open spending questions answered by the model with read-only tools, grounded, or not at all.

``InsightEngine.answer`` runs the function-calling loop (at most a few rounds),
refuses a request for any tool outside the read-only set, checks every figure
of the final answer against the tool results, and raises an ``LLMError`` for
anything it cannot vouch for; the action then sends the deterministic summary.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from assistant_llm.cache import TTLCache, cache_key, normalise_question
from assistant_llm.client import GroqChat
from assistant_llm.errors import ForbiddenTool, InvalidOutput, LLMError, LLMUnavailable, Ungrounded
from assistant_llm.grounding import check, money_formatted, other_currencies
from assistant_llm.guardrails import answer_problem, redact
from assistant_llm.prompts import insight_question, insight_system
from assistant_llm.tools import READ_ONLY_TOOLS, TOOL_SPECS, ToolBox
from banking.service import BankingService

logger = logging.getLogger(__name__)

MAX_ROUNDS = 4  # tool rounds plus the final answer
MAX_CALLS_PER_ROUND = 6
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")

_OPEN_CUES = re.compile(
    r"\?|\b(?:how much|how many|how|what|why|which|where|when|did i|do i|am i|have i|compare|compared|versus|vs|"
    r"more|less|than|most|least|biggest|highest|top|average|trend|advice|tip|tips|save|saving more|reduce|cut|"
    r"budget|recurring|subscriptions?|regular|habit|breakdown|chart|graph|pie|split|analy[sz]e|insights?|"
    r"wetin|how far|abeg|shey|abi|na wetin|which one|pass)\b",
    re.IGNORECASE,
)
_BREAKDOWN_CUES = re.compile(
    r"\b(?:breakdown|break down|break it down|by category|per category|categories|category|chart|graph|pie|"
    r"split|where (?:does|did|do|is|has) (?:all )?my money (?:go|goes|going|gone|went)|"
    r"where (?:all )?my money (?:dey )?(?:go|waka go|dey go)|wetin i (?:dey )?spend (?:money )?on|"
    r"what do i spend (?:money )?on|what did i spend (?:money )?on|spending summary|summary)\b",
    re.IGNORECASE,
)


def is_open_question(text: str) -> bool:
    """Typed questions go to the model; a button payload or "spending summary" gets the fixed summary."""
    stripped = text.strip()
    if not stripped or stripped.startswith("/"):
        return False
    return bool(_OPEN_CUES.search(stripped)) and len(stripped.split()) >= 2


def wants_breakdown(text: str) -> bool:
    """Whether a category chart belongs with the answer."""
    stripped = text.strip()
    return stripped.startswith("/spending_insights") or bool(_BREAKDOWN_CUES.search(stripped))


@dataclass(frozen=True)
class InsightAnswer:
    text: str
    model: str
    cached: bool
    tools: tuple[str, ...]


@dataclass
class InsightStats:
    """Counters for reports: no question text, only outcomes and timings."""

    answered: int = 0
    cached: int = 0
    ungrounded: int = 0
    forbidden_tools: int = 0
    failed: int = 0
    grounding_us: deque[float] = field(default_factory=lambda: deque(maxlen=2000))


class InsightEngine:
    def __init__(self, chat: GroqChat, cache: TTLCache[InsightAnswer] | None = None) -> None:
        self.chat = chat
        self.cache: TTLCache[InsightAnswer] = cache if cache is not None else TTLCache(chat.config.cache_seconds)
        self.stats = InsightStats()

    @property
    def enabled(self) -> bool:
        return self.chat.enabled

    async def answer(
        self,
        *,
        question: str,
        language: str,
        service: BankingService,
        user: str,
        today: date,
        fingerprint: str,
        period_hint: str | None = None,
        runner: Callable[..., Any] | None = None,
    ) -> InsightAnswer:
        """A grounded, short answer in the customer's language; raises an LLMError otherwise."""
        if not self.enabled:
            raise LLMUnavailable("GROQ_API_KEY is not set")
        key = cache_key(user, normalise_question(question), language, period_hint or "", fingerprint)
        hit = self.cache.get(key)
        if hit is not None:
            self.stats.cached += 1
            return InsightAnswer(hit.text, hit.model, True, hit.tools)
        try:
            found = await asyncio.wait_for(
                self._answer(question, language, service, user, today, period_hint, runner),
                timeout=self.chat.config.deadline_seconds,
            )
        except asyncio.TimeoutError:
            self.stats.failed += 1
            raise LLMUnavailable("no answer within the deadline") from None
        except Ungrounded:
            self.stats.ungrounded += 1
            raise
        except ForbiddenTool:
            self.stats.forbidden_tools += 1
            raise
        except LLMError:
            self.stats.failed += 1
            raise
        self.stats.answered += 1
        self.cache.put(key, found)
        return found

    async def _answer(self, question: str, language: str, service: BankingService, user: str, today: date,
                      period_hint: str | None, runner: Callable[..., Any] | None) -> InsightAnswer:
        toolbox = ToolBox(service, user, runner=runner)
        hint = redact(period_hint).text if period_hint else None
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": insight_system(language, today)},
            {"role": "user", "content": insight_question(redact(question).text, hint)},
        ]
        models = self.chat.models()
        for round_number in range(MAX_ROUNDS):
            last = round_number == MAX_ROUNDS - 1
            completion = await self.chat.complete(
                messages, user=user, purpose="insight", tools=TOOL_SPECS,
                tool_choice="none" if last else "auto", models=models,
            )
            models = [completion.model]  # once the fallback model answered, stay with it
            if not completion.tool_calls:
                return self._final(completion.content, completion.model, toolbox)
            if last or len(completion.tool_calls) > MAX_CALLS_PER_ROUND:
                raise InvalidOutput("too many tool calls")
            forbidden = [call.name for call in completion.tool_calls if call.name not in READ_ONLY_TOOLS]
            if forbidden:
                logger.warning("the model asked for %d tool(s) outside the read-only set; answer dropped",
                               len(forbidden))
                toolbox.refused.extend(forbidden)
                raise ForbiddenTool("tool outside the read-only set")
            messages.append(completion.as_message())
            for call in completion.tool_calls:
                result = await toolbox.run(call.name, call.arguments)
                messages.append({"role": "tool", "tool_call_id": call.id, "name": call.name,
                                 "content": json.dumps(result, ensure_ascii=False)})
        raise InvalidOutput("no final answer")  # pragma: no cover - the last round forbids tools

    def _final(self, content: str, model: str, toolbox: ToolBox) -> InsightAnswer:
        text = content.strip()
        if not text:
            raise InvalidOutput("empty answer")
        started = time.perf_counter()
        result = check(text, toolbox.evidence)
        self.stats.grounding_us.append((time.perf_counter() - started) * 1e6)
        if not result.grounded:
            logger.info("an insight answer stated %d figure(s) no tool returned; deterministic answer used",
                        len(result.invented))
            raise Ungrounded("figures not from the tools")
        currency = toolbox.currency or "NGN"
        if other_currencies(text, currency):
            logger.info("an insight answer stated amounts in another currency than the accounts'; "
                        "deterministic answer used")
            raise Ungrounded("figures in another currency than the customer's")
        text = shorten(money_formatted(text, currency))
        problem = answer_problem(text)
        if problem is not None:
            logger.info("an insight answer was refused (%s); deterministic answer used", problem)
            raise InvalidOutput(problem)
        return InsightAnswer(text, model, False, tuple(toolbox.calls))


def shorten(text: str, limit: int = 600) -> str:
    """Whole sentences up to ``limit`` characters (answers on WhatsApp should be short)."""
    text = re.sub(r"\n{3,}", "\n\n", text.strip())
    if len(text) <= limit:
        return text
    cut = [m.start() for m in _SENTENCE_END.finditer(text) if m.start() <= limit]
    return text[:cut[-1]].strip() if cut else text


def data_fingerprint(service: BankingService, user: str, today: date) -> str:
    """What an answer depends on: balances (any money movement changes them), the link, and the day."""
    profile = service.profile(user)
    return json.dumps([today.isoformat(), profile.bank, profile.connected_at.isoformat(), profile.frozen,
                       [(account.key, account.balance_kobo) for account in profile.accounts]])
