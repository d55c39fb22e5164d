"""The Groq LLM behind the assistant: plain Python, no Rasa imports.

What it may do, and nothing more:

- answer open spending questions with read-only tools over the banking core
  (``insights``), and only with figures a tool returned (``grounding``);
- suggest an intent from the domain for a message the NLU was unsure about, or
  answer a general question briefly (``fallback``); a suggestion still runs
  through Rasa's forms and the YES confirmation;
- transcribe WhatsApp voice notes (``transcriber``).

Without ``GROQ_API_KEY`` every entry point answers "not available" and the
actions use their deterministic replies. Nothing connects at import time: the
``AsyncGroq`` client is made on the first call.

    LLMError                      base of everything below
    ├── LLMUnavailable            not configured, timed out, 5xx, no connection
    ├── RateLimited               Groq answered 429 (after the fallback model too)
    ├── BudgetExceeded            our own per-user or global request budget is spent
    ├── ForbiddenTool             the model asked for a tool outside the read-only set
    └── InvalidOutput             malformed JSON, unknown intent, empty or refused answer
        └── Ungrounded            the answer states a figure no tool returned

Modules: ``config`` (GROQ_* settings), ``client`` (the AsyncGroq wrapper: model
fallback, retries, budgets, call logging), ``budget``, ``cache``, ``tools`` (the
read-only tools), ``grounding``, ``guardrails`` (what goes in and out), ``prompts``,
``insights``, ``fallback``, ``charts`` (the spending chart PNG), ``transcriber``
(voice notes), ``runtime`` (the process's assistant). The stand-in for Groq on 127.0.0.1
(tests, ``scripts/llm_report.py``) is ``sandbox/fake_groq.py``, beside the other fakes.
"""

from __future__ import annotations

from assistant_llm.errors import (
    BudgetExceeded,
    ForbiddenTool,
    InvalidOutput,
    LLMError,
    LLMUnavailable,
    RateLimited,
    Ungrounded,
)

__all__ = [
    "BudgetExceeded",
    "ForbiddenTool",
    "InvalidOutput",
    "LLMError",
    "LLMUnavailable",
    "RateLimited",
    "Ungrounded",
]
