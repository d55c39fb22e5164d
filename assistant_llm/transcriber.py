"""WhatsApp voice notes to text with Groq Whisper (``whisper-large-v3-turbo``).

Plugs into the channel's ``Transcriber`` protocol (``connectors.whatsapp``) by
dotted path in credentials.yml::

    connectors.whatsapp.WhatsAppInput:
      transcriber: assistant_llm.transcriber.GroqTranscriber

``transcribe`` returns a ``Transcript`` (the same ``text``/``language`` fields
as the channel's, plus ``confidence`` and ``low_confidence``) whose text the
channel hands to Rasa like a typed message, or None when nothing could be made
out, no key is configured or Groq failed; the channel then asks the customer
to type. Confidence comes from Whisper's verbose JSON: segments Whisper itself
marks as silence (high ``no_speech_prob`` and low ``avg_logprob``) are dropped,
and the rest give ``confidence = exp(mean avg_logprob)``, weighted by duration.
When it is low, the channel's reply says what was heard (``connectors/whatsapp/texts.py``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistant_llm.budget import Limits, RequestBudget
from assistant_llm.client import GroqChat
from assistant_llm.config import LLMConfig
from assistant_llm.errors import LLMError

logger = logging.getLogger(__name__)

MAX_AUDIO_BYTES = 25 * 1024 * 1024  # Groq's upload limit on the free tier
LOW_CONFIDENCE = 0.55  # exp(avg_logprob) below this: say what was heard
SILENCE_NO_SPEECH = 0.6
SILENCE_LOGPROB = -1.0
_EXTENSIONS = {
    "audio/ogg": "ogg", "audio/opus": "ogg", "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mp4": "m4a",
    "audio/m4a": "m4a", "audio/x-m4a": "m4a", "audio/aac": "m4a", "audio/wav": "wav", "audio/x-wav": "wav",
    "audio/webm": "webm", "audio/flac": "flac",
}


@dataclass(frozen=True)
class Transcript:
    """What a voice note said (the channel's type too); ``low_confidence`` makes the reply say what was heard."""

    text: str
    language: str | None = None
    confidence: float | None = None
    low_confidence: bool = False


def transcript_from_verbose(body: Mapping[str, Any], low_confidence: float = LOW_CONFIDENCE) -> Transcript | None:
    """A Transcript from Whisper's verbose JSON, or None when it heard only silence."""
    segments = [s for s in body.get("segments") or [] if isinstance(s, Mapping)]
    spoken = [s for s in segments if not _is_silence(s)]
    if segments:
        text = " ".join(str(s.get("text") or "").strip() for s in spoken).strip()
    else:
        text = str(body.get("text") or "").strip()
    if not text:
        return None
    confidence = _confidence(spoken) if spoken else None
    language = body.get("language") if isinstance(body.get("language"), str) else None
    return Transcript(
        text=text,
        language=language,
        confidence=confidence,
        low_confidence=confidence is not None and confidence < low_confidence,
    )


class GroqTranscriber:
    """The channel's Transcriber with Groq Whisper; returns None without GROQ_API_KEY."""

    def __init__(self, config: LLMConfig, chat: GroqChat | None = None,
                 low_confidence: float = LOW_CONFIDENCE) -> None:
        self.config = config
        # voice notes arrive without the customer's key here: one budget for all of them
        budget = RequestBudget(Limits(config.global_per_minute, config.global_per_day,
                                      config.global_per_minute, config.global_per_day))
        self.chat = chat or GroqChat(config, budget=budget)
        self.low_confidence = low_confidence
        if not config.enabled:
            logger.info("GROQ_API_KEY is not set: voice notes get the 'please type' answer")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> GroqTranscriber:
        return cls(LLMConfig.from_env(environ))

    async def transcribe(self, audio: bytes, mime_type: str) -> Transcript | None:
        if not self.config.enabled or not audio:
            return None
        if len(audio) > MAX_AUDIO_BYTES:
            logger.info("a voice note of %d bytes is over Groq's limit; not transcribed", len(audio))
            return None
        base = (mime_type or "").split(";", 1)[0].strip().lower()
        extension = _EXTENSIONS.get(base)
        if extension is None:
            logger.info("voice notes of type %s cannot be transcribed", base or "unknown")
            return None
        try:
            body = await self.chat.transcribe(audio, f"voice-note.{extension}", base, user="voice-notes")
        except LLMError as error:
            logger.warning("a voice note was not transcribed (%s)", error.code)
            return None
        transcript = transcript_from_verbose(body, self.low_confidence)
        if transcript is not None:
            logger.info("voice note transcribed: %d characters, confidence %s%s", len(transcript.text),
                        "unknown" if transcript.confidence is None else f"{transcript.confidence:.2f}",
                        " (low)" if transcript.low_confidence else "")
        return transcript

    async def aclose(self) -> None:
        await self.chat.aclose()


def _is_silence(segment: Mapping[str, Any]) -> bool:
    no_speech = _number(segment.get("no_speech_prob"), 0.0)
    logprob = _number(segment.get("avg_logprob"), 0.0)
    return no_speech > SILENCE_NO_SPEECH and logprob < SILENCE_LOGPROB


def _confidence(segments: list[Mapping[str, Any]]) -> float:
    weights = [max(_number(s.get("end"), 0.0) - _number(s.get("start"), 0.0), 0.01) for s in segments]
    weighted = zip(segments, weights, strict=True)
    logprob = sum(_number(s.get("avg_logprob"), 0.0) * w for s, w in weighted) / sum(weights)
    return round(math.exp(min(logprob, 0.0)), 3)


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default
