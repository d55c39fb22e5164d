"""Voice notes: GroqTranscriber against the fake Groq's /audio/transcriptions, as the channel loads it."""

from __future__ import annotations

import warnings

import pytest

from assistant_llm.config import LLMConfig
from assistant_llm.transcriber import GroqTranscriber, Transcript, transcript_from_verbose
from checks.llm_support import llm_config
from connectors.whatsapp.texts import heard
from sandbox.fake_groq import API_KEY, error, rate_limited, segment, transcription

OGG = b"OggS\x00\x02" + bytes(2000)  # what WhatsApp sends: Opus in Ogg
VOICE_MIME = "audio/ogg; codecs=opus"


@pytest.fixture
async def transcriber(groq):
    made = GroqTranscriber(llm_config(groq.base_url))
    yield made
    await made.aclose()


async def test_a_clear_voice_note_becomes_text(groq, transcriber):
    groq.queue(transcription("Send five thousand naira to my savings"))
    transcript = await transcriber.transcribe(OGG, VOICE_MIME)
    assert transcript == Transcript("Send five thousand naira to my savings", "English", transcript.confidence, False)
    assert transcript.confidence is not None and transcript.confidence > 0.8
    [upload] = groq.uploads
    assert upload == {"model": "whisper-large-v3-turbo", "response_format": "verbose_json",
                      "filename": "voice-note.ogg", "content_type": "audio/ogg", "size": len(OGG)}


async def test_a_mumbled_voice_note_is_flagged_so_the_reply_says_what_was_heard(groq, transcriber):
    groq.queue(transcription("check my balanced", [segment("check my balanced", avg_logprob=-1.1)]))
    transcript = await transcriber.transcribe(OGG, VOICE_MIME)
    assert transcript is not None and transcript.low_confidence and transcript.confidence < 0.55
    assert heard(transcript.text, "english") == (
        "🎤 I heard: “check my balanced”. If that's not what you said, please type it."
    )
    assert heard("abeg wetin remain for my account").startswith("🎤 Wetin I hear be:")


async def test_silence_is_nothing(groq, transcriber):
    groq.queue(transcription("Thank you.", [segment("Thank you.", avg_logprob=-1.4, no_speech_prob=0.92)]))
    assert await transcriber.transcribe(OGG, VOICE_MIME) is None


def test_silent_segments_are_dropped_and_confidence_is_duration_weighted():
    body = {"text": "ignored", "language": "English", "segments": [
        segment("send 5k", avg_logprob=-0.1, start=0.0, end=3.0),
        segment("hmm", avg_logprob=-1.5, no_speech_prob=0.9, start=3.0, end=5.0),
        segment("to savings", avg_logprob=-0.7, start=5.0, end=6.0),
    ]}
    transcript = transcript_from_verbose(body)
    assert transcript is not None and transcript.text == "send 5k to savings"
    assert transcript.confidence == pytest.approx(0.779, abs=0.001)  # exp((-0.1*3 - 0.7*1) / 4)
    assert transcript_from_verbose({"text": "  "}) is None
    assert transcript_from_verbose({"text": "plain json"}) == Transcript("plain json")


@pytest.mark.parametrize("reply", [error(500), rate_limited(), error(400, "could not decode audio")])
async def test_a_failed_transcription_is_none_so_the_channel_asks_to_type(groq, transcriber, reply):
    groq.queue(reply, reply)
    assert await transcriber.transcribe(OGG, VOICE_MIME) is None


async def test_unsupported_or_oversized_audio_is_not_sent(groq, transcriber):
    assert await transcriber.transcribe(b"#!AMR\n" + bytes(100), "audio/amr") is None
    assert await transcriber.transcribe(bytes(26 * 1024 * 1024), "audio/ogg") is None
    assert await transcriber.transcribe(b"", "audio/ogg") is None
    assert groq.uploads == []


async def test_without_a_key_it_is_none_and_nothing_is_sent(groq):
    transcriber = GroqTranscriber(LLMConfig(api_key=None, base_url=groq.base_url))
    assert await transcriber.transcribe(OGG, VOICE_MIME) is None
    assert groq.uploads == []


async def test_the_channel_loads_it_by_dotted_path(groq, monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", API_KEY)
    monkeypatch.setenv("GROQ_BASE_URL", groq.base_url)
    with warnings.catch_warnings():  # Rasa's own import-time deprecations
        warnings.simplefilter("ignore", DeprecationWarning)
        from connectors.whatsapp import Transcriber, load_transcriber

    loaded = load_transcriber("assistant_llm.transcriber.GroqTranscriber")
    assert isinstance(loaded, GroqTranscriber) and isinstance(loaded, Transcriber)
    groq.queue(transcription("wetin remain for my account"))
    transcript = await loaded.transcribe(OGG, VOICE_MIME)
    assert transcript is not None and transcript.text == "wetin remain for my account"
    await loaded.aclose()
    monkeypatch.delenv("GROQ_API_KEY")
    assert isinstance(load_transcriber("assistant_llm.transcriber.GroqTranscriber"), GroqTranscriber)
