"""One Groq chat client for the process: lazy AsyncGroq, model fallback, budgets, call logging.

The main model gets one try; if it fails, times out or is rate-limited, the
faster fallback model gets the same request, with the SDK's bounded retries.
Every request first takes one unit of the customer's and the global budget.

Each call is logged with its purpose, model, outcome, token counts and latency,
and kept in a short in-memory record for tests and reports. Prompts, answers,
phone numbers and account numbers are never logged.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from assistant_llm.budget import Limits, RequestBudget
from assistant_llm.config import LLMConfig
from assistant_llm.errors import BudgetExceeded, LLMUnavailable, RateLimited

logger = logging.getLogger(__name__)

_RECORDS = 500


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model wrote it


@dataclass(frozen=True)
class Completion:
    """The parts of a chat completion the assistant uses, as plain values."""

    content: str
    tool_calls: tuple[ToolCall, ...]
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float

    def as_message(self) -> dict[str, Any]:
        """The assistant turn to send back with the tool results."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in self.tool_calls
            ]
        return message


@dataclass(frozen=True)
class CallRecord:
    """What is logged about one request: never its content."""

    purpose: str
    model: str
    outcome: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0


@dataclass
class CallStats:
    records: deque[CallRecord] = field(default_factory=lambda: deque(maxlen=_RECORDS))

    def add(self, record: CallRecord) -> None:
        self.records.append(record)
        logger.info(
            "groq %s model=%s outcome=%s prompt_tokens=%d completion_tokens=%d latency_ms=%.0f",
            record.purpose, record.model, record.outcome, record.prompt_tokens, record.completion_tokens,
            record.latency_ms,
        )


class GroqChat:
    """Chat completions and transcriptions through the official SDK, made on first use."""

    def __init__(
        self,
        config: LLMConfig,
        *,
        budget: RequestBudget | None = None,
        client_factory: Callable[[LLMConfig], Any] | None = None,
    ) -> None:
        self.config = config
        self.budget = budget or RequestBudget(
            Limits(config.user_per_minute, config.user_per_day, config.global_per_minute, config.global_per_day)
        )
        self.stats = CallStats()
        self._factory = client_factory or _sdk_client
        self._client: Any = None

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def client(self) -> Any:
        """The AsyncGroq client, built on first use (never at import or construction)."""
        if not self.config.enabled:
            raise LLMUnavailable("GROQ_API_KEY is not set")
        if self._client is None:
            self._client = self._factory(self.config)
        return self._client

    async def complete(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        user: str,
        purpose: str,
        tools: Sequence[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
        json_output: bool = False,
        max_tokens: int = 1024,
        models: Sequence[str] | None = None,
    ) -> Completion:
        """One completion, from the main model or else the fallback; raises an LLMError when neither answers."""
        import groq

        options: dict[str, Any] = {
            "messages": list(messages),
            "max_completion_tokens": max_tokens,
            "temperature": 0.2,
            "user": user[:16],  # a prefix of the hashed customer key: lets Groq spot abuse, identifies no one
        }
        if tools:
            options["tools"] = list(tools)
            options["tool_choice"] = tool_choice or "auto"
            options["parallel_tool_calls"] = True
        if json_output:
            options["response_format"] = {"type": "json_object"}
        candidates = list(models or self.models())
        last_error: Exception = LLMUnavailable("no model configured")
        for index, model in enumerate(candidates):
            if not self.budget.try_acquire(user):
                self.stats.add(CallRecord(purpose, model, "budget_exceeded"))
                raise BudgetExceeded("request budget spent")
            # the fallback model is the main model's retry; the SDK retries only the last candidate
            retries = self.config.max_retries if index == len(candidates) - 1 else 0
            client = self.client().with_options(max_retries=retries)
            started = time.perf_counter()
            try:
                response = await client.chat.completions.create(model=model, **options, **_reasoning(model))
            except groq.RateLimitError as error:
                last_error = RateLimited("Groq rate limit")
                self._record_failure(purpose, model, "rate_limited", started, error)
            except groq.APITimeoutError as error:
                last_error = LLMUnavailable("Groq timed out")
                self._record_failure(purpose, model, "timeout", started, error)
            except groq.APIConnectionError as error:
                last_error = LLMUnavailable("Groq is unreachable")
                self._record_failure(purpose, model, "connection_error", started, error)
            except (groq.AuthenticationError, groq.PermissionDeniedError) as error:
                self._record_failure(purpose, model, "auth_error", started, error)
                raise LLMUnavailable("Groq refused the API key") from error
            except groq.APIStatusError as error:
                last_error = LLMUnavailable(f"Groq answered {error.status_code}")
                self._record_failure(purpose, model, f"http_{error.status_code}", started, error)
            except (groq.APIError, ValueError) as error:  # e.g. a body that is not JSON
                last_error = LLMUnavailable("Groq's answer could not be read")
                self._record_failure(purpose, model, "bad_response", started, error)
            else:
                try:
                    completion = _completion(response, model, (time.perf_counter() - started) * 1000)
                except (AttributeError, IndexError, TypeError, ValueError) as error:  # not a chat completion
                    last_error = LLMUnavailable("Groq's answer could not be read")
                    self._record_failure(purpose, model, "bad_response", started, error)
                    continue
                self.stats.add(CallRecord(purpose, completion.model, "ok", completion.prompt_tokens,
                                          completion.completion_tokens, completion.latency_ms))
                return completion
        raise last_error

    def models(self) -> list[str]:
        models = [self.config.model]
        if self.config.fallback_model and self.config.fallback_model != self.config.model:
            models.append(self.config.fallback_model)
        return models

    async def transcribe(self, audio: bytes, filename: str, mime_type: str, *, user: str) -> dict[str, Any]:
        """Whisper's verbose JSON (text, language, segments with avg_logprob and no_speech_prob)."""
        import groq

        if not self.budget.try_acquire(user):
            self.stats.add(CallRecord("transcription", self.config.transcription_model, "budget_exceeded"))
            raise BudgetExceeded("request budget spent")
        client = self.client()
        started = time.perf_counter()
        try:
            result = await client.audio.transcriptions.create(
                file=(filename, audio, mime_type),
                model=self.config.transcription_model,
                response_format="verbose_json",
                temperature=0.0,
            )
        except groq.RateLimitError as error:
            self._record_failure("transcription", self.config.transcription_model, "rate_limited", started, error)
            raise RateLimited("Groq rate limit") from error
        except (groq.APIError, ValueError) as error:
            self._record_failure("transcription", self.config.transcription_model, type(error).__name__, started,
                                 error)
            raise LLMUnavailable("transcription failed") from error
        latency = (time.perf_counter() - started) * 1000
        body = result.to_dict() if hasattr(result, "to_dict") else dict(result)
        self.stats.add(CallRecord("transcription", self.config.transcription_model, "ok", latency_ms=latency))
        return body

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _record_failure(self, purpose: str, model: str, outcome: str, started: float, error: Exception) -> None:
        self.stats.add(CallRecord(purpose, model, outcome, latency_ms=(time.perf_counter() - started) * 1000))
        logger.debug("groq %s failure detail: %s", purpose, type(error).__name__)


def _reasoning(model: str) -> dict[str, Any]:
    """gpt-oss models reason before answering: keep that short (latency, tokens) and out of the reply."""
    if "gpt-oss" in model:
        return {"reasoning_effort": "low", "include_reasoning": False}
    return {}


def _sdk_client(config: LLMConfig) -> Any:
    import httpx
    from groq import AsyncGroq

    return AsyncGroq(
        api_key=config.api_key,
        base_url=config.base_url,
        timeout=httpx.Timeout(config.timeout_seconds, connect=min(2.0, config.timeout_seconds)),
        max_retries=config.max_retries,
    )


def _completion(response: Any, model: str, latency_ms: float) -> Completion:
    choice = response.choices[0] if response.choices else None
    message = choice.message if choice is not None else None
    calls = tuple(
        ToolCall(id=call.id or f"call_{index}", name=call.function.name or "", arguments=call.function.arguments or "")
        for index, call in enumerate((message.tool_calls if message is not None else None) or [])
    )
    usage = response.usage
    return Completion(
        content=(message.content if message is not None else None) or "",
        tool_calls=calls,
        model=model,  # the model asked for: the one to stay with if it was the fallback
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        latency_ms=latency_ms,
    )
