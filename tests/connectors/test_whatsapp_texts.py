"""The channel's own words (connectors/whatsapp/texts.py): every one in English and Pidgin, and a
Pidgin conversation gets them in Pidgin (from its `language` slot, or from the response they frame)."""

from __future__ import annotations

import logging
import string
from typing import Any

import pytest

from checks.whatsapp_fakes import ADA, FakeGraphApi, RecordingAgent, WebhookServer, load_payload, text_webhook
from connectors.whatsapp.outbound import Choice, choice_messages
from connectors.whatsapp.texts import ENGLISH, LANGUAGES, PIDGIN, TEXTS, heard, rate_limited, say, unsupported


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(TEXTS))
def test_every_text_is_in_both_languages_with_the_same_fields(key: str) -> None:
    entry = TEXTS[key]
    assert set(entry) == set(LANGUAGES)
    assert all(entry[language].strip() for language in LANGUAGES)
    assert fields(entry[ENGLISH]) == fields(entry[PIDGIN])


def test_an_unknown_language_gets_english() -> None:
    assert say("something_went_wrong", "yoruba") == say("something_went_wrong", None) == say("something_went_wrong")
    assert say("something_went_wrong", PIDGIN) != say("something_went_wrong")


def test_filled_texts_in_pidgin() -> None:
    assert unsupported("image", PIDGIN) == TEXTS["unsupported"][PIDGIN].format(what="picture")
    assert unsupported("hologram") == TEXTS["unsupported"][ENGLISH].format(what="this kind of message")
    assert "abeg wait one minute" in rate_limited(60, PIDGIN)
    assert "please wait 5 minutes" in rate_limited(300)
    assert heard("abeg wetin remain for my account").startswith("🎤 Wetin I hear be:")  # the words' language
    assert heard("check my balance", "english").startswith("🎤 I heard:")


def test_the_words_around_buttons_follow_the_response() -> None:
    choices = [Choice(f"Bank {n}", f"/choose{{\"n\":{n}}}") for n in range(5)]
    (pidgin,) = choice_messages(ADA, "Which bank you wan connect? Pick am or type the name:", choices)
    (english,) = choice_messages(ADA, "Which bank do you want to connect?", choices)
    assert pidgin["interactive"]["action"]["button"] == say("list_button", PIDGIN)
    assert english["interactive"]["action"]["button"] == say("list_button", ENGLISH)


class TrackerStore:
    """The one thing the channel asks of Rasa's tracker store: a conversation's slots."""

    def __init__(self, slots: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.slots, self.error = slots, error
        self.asked: list[str] = []

    async def retrieve(self, sender_id: str) -> Any:
        self.asked.append(sender_id)
        if self.error is not None:
            raise self.error
        slots = self.slots

        class Tracker:
            def get_slot(self, name: str) -> Any:
                return (slots or {}).get(name)

        return Tracker() if slots is not None else None


async def test_a_pidgin_conversation_is_answered_in_pidgin_when_the_channel_speaks(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    store = TrackerStore({"language": "pidgin"})
    agent.tracker_store = store  # type: ignore[attr-defined]
    await server.post(load_payload("image"))
    await server.settle()
    assert graph.delivered_texts() == [unsupported("image", PIDGIN)]
    assert store.asked == [ADA]


async def test_rasa_failing_is_apologised_for_in_the_conversations_language(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    async def failing(message: Any) -> None:
        raise RuntimeError("tracker store down")

    agent.responder = failing
    agent.tracker_store = TrackerStore({"language": "pidgin"})  # type: ignore[attr-defined]
    await server.post(text_webhook(ADA, "wamid.boom", "wetin dey happen"))
    await server.settle()
    assert graph.delivered_texts() == [say("something_went_wrong", PIDGIN)]


@pytest.mark.parametrize("store", [None, TrackerStore(None), TrackerStore({"language": "klingon"}),
                                   TrackerStore(error=ConnectionError("mongo down"))],
                         ids=["no tracker store", "new conversation", "unknown language", "store down"])
async def test_english_when_the_language_cannot_be_known(
    store: TrackerStore | None, server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if store is not None:
        agent.tracker_store = store  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger="connectors.whatsapp"):
        await server.post(load_payload("image"))
        await server.settle()
    assert graph.delivered_texts() == [unsupported("image", ENGLISH)]
    assert ("could not be read" in caplog.text) == (store is not None and store.error is not None)
    assert ADA not in caplog.text
