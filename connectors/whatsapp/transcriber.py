"""Speech to text for voice notes: the protocol a transcriber meets, and loading the one
credentials.yml names (``transcriber: assistant_llm.transcriber.GroqTranscriber``)."""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

from assistant_llm.transcriber import Transcript
from connectors.whatsapp.config import WhatsAppConfigError

__all__ = ["NoTranscriber", "Transcriber", "Transcript", "load_transcriber"]


@runtime_checkable
class Transcriber(Protocol):
    """Speech to text for voice notes (a Groq Whisper one plugs in here later)."""

    async def transcribe(self, audio: bytes, mime_type: str) -> Transcript | None:
        """The words in ``audio``, or None when they cannot be made out."""
        ...


class NoTranscriber:
    """The default: voice notes are not understood, and the user is asked to type."""

    async def transcribe(self, audio: bytes, mime_type: str) -> Transcript | None:
        return None


def load_transcriber(path: Any) -> Transcriber | None:
    """An instance of the class at dotted ``path`` (built with ``from_env()`` if it has one)."""
    if not path:
        return None
    if not isinstance(path, str):
        raise WhatsAppConfigError("credentials.yml 'transcriber' must be a dotted class path")
    from rasa.shared.utils.common import class_from_module_path

    try:
        transcriber_class = class_from_module_path(path)
    except (ImportError, AttributeError) as exc:
        raise WhatsAppConfigError(f"transcriber {path!r} cannot be imported") from exc
    factory = getattr(transcriber_class, "from_env", None)
    instance = factory() if callable(factory) else transcriber_class()
    if not isinstance(instance, Transcriber) or not inspect.iscoroutinefunction(instance.transcribe):
        raise WhatsAppConfigError(f"transcriber {path!r} has no async transcribe(audio, mime_type) method")
    return instance
