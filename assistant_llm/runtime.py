"""The process's LLM assistant, built from the environment on first use (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from assistant_llm.client import GroqChat
from assistant_llm.config import LLMConfig
from assistant_llm.fallback import FallbackRouter
from assistant_llm.insights import InsightEngine


@dataclass
class Assistant:
    """One Groq client, one budget and one cache shared by the insight and fallback paths."""

    chat: GroqChat
    insights: InsightEngine
    fallback: FallbackRouter

    @property
    def enabled(self) -> bool:
        return self.chat.enabled

    @classmethod
    def from_config(cls, config: LLMConfig) -> Assistant:
        chat = GroqChat(config)
        return cls(chat=chat, insights=InsightEngine(chat), fallback=FallbackRouter(chat))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Assistant:
        return cls.from_config(LLMConfig.from_env(environ))


_assistant: Assistant | None = None


def assistant() -> Assistant:
    global _assistant
    if _assistant is None:
        _assistant = Assistant.from_env()
    return _assistant


def use_assistant(value: Assistant | None) -> None:
    """Wires a specific assistant (tests, scripts); None makes the next call read the environment again."""
    global _assistant
    _assistant = value
