"""Groq settings, read once from the environment and checked before anyone is served."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from banking.errors import ConfigError

DEFAULT_BASE_URL = "https://api.groq.com"
DEFAULT_MODEL = "openai/gpt-oss-120b"
DEFAULT_FALLBACK_MODEL = "openai/gpt-oss-20b"
DEFAULT_TRANSCRIPTION_MODEL = "whisper-large-v3-turbo"


@dataclass(frozen=True)
class LLMConfig:
    """Everything the Groq client needs; ``enabled`` is False without GROQ_API_KEY.

    Retries are bounded twice over: the SDK retries a failed request at most
    ``max_retries`` times (on the fallback model only; the main model gets one
    try, because the fallback model *is* its retry), and the whole answer must
    be ready within ``deadline_seconds`` or the deterministic reply is used.
    """

    api_key: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    model: str = DEFAULT_MODEL
    fallback_model: str | None = DEFAULT_FALLBACK_MODEL
    transcription_model: str = DEFAULT_TRANSCRIPTION_MODEL
    timeout_seconds: float = 4.0
    max_retries: int = 1
    deadline_seconds: float = 10.0
    user_per_minute: int = 10
    user_per_day: int = 150
    global_per_minute: int = 30
    global_per_day: int = 1000
    cache_seconds: float = 300.0

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LLMConfig:
        """GROQ_* variables; empty values count as unset, malformed ones raise ConfigError naming them."""
        defaults = cls()
        base_url = (_text(environ, "GROQ_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError(f"GROQ_BASE_URL must be an http(s) URL, not {base_url!r}")
        fallback = _text(environ, "GROQ_FALLBACK_MODEL")
        return cls(
            api_key=_text(environ, "GROQ_API_KEY"),
            base_url=base_url,
            model=_text(environ, "GROQ_MODEL") or DEFAULT_MODEL,
            fallback_model=None if (fallback or "").lower() == "none" else (fallback or DEFAULT_FALLBACK_MODEL),
            transcription_model=_text(environ, "GROQ_TRANSCRIPTION_MODEL") or DEFAULT_TRANSCRIPTION_MODEL,
            timeout_seconds=_number(environ, "GROQ_TIMEOUT_SECONDS", defaults.timeout_seconds, high=30),
            max_retries=int(_number(environ, "GROQ_MAX_RETRIES", defaults.max_retries, low=0, high=3, whole=True)),
            deadline_seconds=_number(environ, "GROQ_DEADLINE_SECONDS", defaults.deadline_seconds, high=60),
            user_per_minute=_count(environ, "GROQ_USER_REQUESTS_PER_MINUTE", defaults.user_per_minute),
            user_per_day=_count(environ, "GROQ_USER_REQUESTS_PER_DAY", defaults.user_per_day),
            global_per_minute=_count(environ, "GROQ_REQUESTS_PER_MINUTE", defaults.global_per_minute),
            global_per_day=_count(environ, "GROQ_REQUESTS_PER_DAY", defaults.global_per_day),
            cache_seconds=_number(environ, "GROQ_CACHE_SECONDS", defaults.cache_seconds, low=0, high=3600),
        )


def _text(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _number(environ: Mapping[str, str], name: str, default: float, *, low: float = 0.1, high: float,
            whole: bool = False) -> float:
    raw = _text(environ, name)
    if raw is None:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a {'whole ' if whole else ''}number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} must be between {low:g} and {high:g}")
    return value


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    return int(_number(environ, name, default, low=1, high=1_000_000, whole=True))
