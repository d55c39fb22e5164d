"""The voice note the chat page "records": a short WAV made in code, so the sandbox ships
no binary files and needs no microphone."""

from __future__ import annotations

import functools
import io
import math
import struct
import wave

VOICE_NOTE_MIME_TYPE = "audio/wav"
SAMPLE_RATE = 16_000
DURATION_SECONDS = 1.6


@functools.lru_cache(maxsize=1)
def sample_voice_note() -> bytes:
    """16 kHz mono 16-bit PCM: a soft, syllable-like warble (deterministic bytes)."""
    frames = bytearray()
    total = int(SAMPLE_RATE * DURATION_SECONDS)
    for n in range(total):
        t = n / SAMPLE_RATE
        pitch = 140 + 40 * math.sin(2 * math.pi * 1.3 * t)  # a voice's fundamental, gliding
        syllables = 0.5 * (1 - math.cos(2 * math.pi * 3 * t))  # three "syllables" a second
        fade = min(1.0, t / 0.05, (DURATION_SECONDS - t) / 0.05)
        sample = (
            syllables * fade * (0.6 * math.sin(2 * math.pi * pitch * t) + 0.25 * math.sin(2 * math.pi * 2 * pitch * t))
        )
        frames += struct.pack("<h", int(max(-1.0, min(1.0, sample)) * 12_000))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(bytes(frames))
    return buffer.getvalue()
