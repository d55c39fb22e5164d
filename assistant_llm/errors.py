"""Why the LLM gave no usable answer; every one of them means "use the deterministic reply"."""

from __future__ import annotations


class LLMError(Exception):
    """Base: the LLM path gave up; the caller answers deterministically."""

    code = "llm_error"


class LLMUnavailable(LLMError):
    """No key configured, or Groq timed out, failed (5xx) or could not be reached."""

    code = "unavailable"


class RateLimited(LLMError):
    """Groq answered 429 for the main and the fallback model."""

    code = "rate_limited"


class BudgetExceeded(LLMError):
    """Our own per-user or global request budget is spent (no request was sent)."""

    code = "budget_exceeded"


class ForbiddenTool(LLMError):
    """The model asked for a tool outside the read-only set: treated as an attack, never run."""

    code = "forbidden_tool"


class InvalidOutput(LLMError):
    """The model's output is unusable: malformed JSON, an unknown intent, an empty answer."""

    code = "invalid_output"


class Ungrounded(InvalidOutput):
    """The answer states a figure no tool returned (see ``grounding``)."""

    code = "ungrounded"
