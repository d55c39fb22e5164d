"""Rasa responses as WhatsApp messages: the pure mapping, then what Meta receives when the
bot answers through the channel (Rasa's send_response path, real HTTP)."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rasa.core.channels.channel import UserMessage

from checks.whatsapp_fakes import (
    ADA,
    PHONE_NUMBER_ID,
    TOKEN,
    FakeGraphApi,
    RecordingAgent,
    WebhookServer,
    load_payload,
)
from connectors.whatsapp.outbound import (
    BUTTON_TITLE_LIMIT,
    INTERACTIVE_BODY_LIMIT,
    LIST_ROW_TITLE_LIMIT,
    TEXT_LIMIT,
    choices_from_buttons,
    split_text,
    truncate,
)
from connectors.whatsapp.texts import say

# -- pure helpers -------------------------------------------------------------------------

words = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=30)
separators = st.sampled_from([" ", "\n", "\n\n", "  "])


@given(st.lists(st.tuples(words, separators), min_size=1, max_size=400), st.integers(min_value=40, max_value=300))
def test_split_text_keeps_every_word_whole_and_in_order(parts: list[tuple[str, str]], limit: int) -> None:
    text = "".join(word + separator for word, separator in parts)
    pieces = split_text(text, limit)
    assert all(0 < len(piece) <= limit for piece in pieces)
    assert [word for piece in pieces for word in piece.split()] == text.split()


@given(st.text(min_size=0, max_size=2000), st.integers(min_value=2, max_value=500))
def test_split_text_never_exceeds_the_limit_or_loses_text(text: str, limit: int) -> None:
    pieces = split_text(text, limit)
    assert all(0 < len(piece) <= limit for piece in pieces)
    assert "".join("".join(pieces).split()) == "".join(text.split())  # only whitespace at cuts is dropped


def test_split_prefers_line_breaks_over_spaces() -> None:
    paragraph = "word " * 700  # 3500 characters
    pieces = split_text(paragraph.strip() + "\n" + paragraph.strip())
    assert len(pieces) == 2 and pieces[0] == paragraph.strip()


def test_truncate_marks_the_cut() -> None:
    assert truncate("Transfer to savings account", 20) == "Transfer to savings…"
    assert len(truncate("x" * 50, 20)) == 20
    assert truncate("Short", 20) == "Short"


def test_buttons_without_payload_or_title_fall_back_to_the_other() -> None:
    choices = choices_from_buttons([{"title": "Yes"}, {"payload": "/deny"}, {}, "junk", {"title": " ", "payload": ""}])
    assert [(choice.title, choice.payload) for choice in choices] == [("Yes", "Yes"), ("/deny", "/deny")]


# -- through the channel ---------------------------------------------------------------------


async def bot_says(server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi,
                   response: dict[str, Any]) -> list[dict[str, Any]]:
    """Have the bot answer one incoming message with ``response``; what Meta received."""

    async def respond(message: UserMessage) -> None:
        await message.output_channel.send_response(message.sender_id, copy.deepcopy(response))

    agent.responder = respond
    assert (await server.post(load_payload("text")))[0] == 200
    await server.settle()
    return graph.delivered()


def interactive(message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "interactive"
    return message["interactive"]


async def test_text(server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi) -> None:
    (message,) = await bot_says(server, agent, graph, {"text": "Your Checking balance is ₦45,320.50"})
    assert message == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": ADA,
        "type": "text",
        "text": {"preview_url": False, "body": "Your Checking balance is ₦45,320.50"},
    }
    sent = graph.of_kind("message")[0]
    assert sent.path == f"/v25.0/{PHONE_NUMBER_ID}/messages"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_long_text_is_split_at_4096_on_line_boundaries(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    lines = [f"{day:02d} Nov  POS purchase at Shoprite Lekki  -₦{day * 1234:,}.00  balance ok" for day in range(150)]
    statement = "\n".join(lines)
    assert len(statement) > 2 * TEXT_LIMIT
    messages = await bot_says(server, agent, graph, {"text": statement})
    bodies = [message["text"]["body"] for message in messages]
    assert len(bodies) == 3
    assert all(len(body) <= TEXT_LIMIT for body in bodies)
    assert "\n".join(bodies) == statement  # cut only between lines, nothing lost or reordered


async def test_three_buttons_become_reply_buttons(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    buttons = [
        {"title": "Yes, send it", "payload": "/affirm"},
        {"title": "No", "payload": "/deny"},
        {"title": "Change the amount please", "payload": '/inform{"amount":"5000"}'},
    ]
    (message,) = await bot_says(server, agent, graph, {"text": "Send ₦5,000 to Savings?", "buttons": buttons})
    body = interactive(message)
    assert body["type"] == "button"
    assert body["body"] == {"text": "Send ₦5,000 to Savings?"}
    replies = [button["reply"] for button in body["action"]["buttons"]]
    assert all(button["type"] == "reply" for button in body["action"]["buttons"])
    assert [reply["id"] for reply in replies] == ["/affirm", "/deny", '/inform{"amount":"5000"}']
    assert [reply["title"] for reply in replies] == ["Yes, send it", "No", "Change the amount p…"]
    assert all(len(reply["title"]) <= BUTTON_TITLE_LIMIT for reply in replies)


async def test_a_payload_over_256_characters_is_cut_and_logged(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, caplog: pytest.LogCaptureFixture
) -> None:
    payload = '/inform{"note":"' + "x" * 300 + '"}'
    (message,) = await bot_says(server, agent, graph, {"text": "Save?", "buttons": [{"title": "Save",
                                                                                     "payload": payload}]})
    assert interactive(message)["action"]["buttons"][0]["reply"]["id"] == payload[:256]
    assert "longer than WhatsApp's 256 characters" in caplog.text


async def test_quick_replies_are_sent_like_buttons(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    (message,) = await bot_says(server, agent, graph, {
        "text": "Which account?",
        "quick_replies": [{"title": "Checking", "payload": "/inform{\"account_type\":\"checking\"}"},
                          {"title": "Savings", "payload": "/inform{\"account_type\":\"savings\"}"}],
    })
    assert [button["reply"]["title"] for button in interactive(message)["action"]["buttons"]] == ["Checking", "Savings"]


@pytest.mark.parametrize("count", [4, 7, 10, 12])
async def test_more_than_three_buttons_become_a_list_of_at_most_ten(
    count: int, server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi, caplog: pytest.LogCaptureFixture
) -> None:
    banks = ["GTBank", "Access Bank", "Zenith Bank", "United Bank for Africa", "First Bank of Nigeria",
             "Fidelity", "Stanbic IBTC Bank Nigeria Limited", "Union Bank", "Wema", "Sterling", "Kuda", "Opay"]
    buttons = [{"title": bank, "payload": f'/inform{{"bank":"{bank}"}}'} for bank in banks[:count]]
    with caplog.at_level(logging.WARNING):
        (message,) = await bot_says(server, agent, graph, {"text": "Which bank?", "buttons": buttons})
    body = interactive(message)
    assert body["type"] == "list"
    assert body["body"] == {"text": "Which bank?"}
    assert 0 < len(body["action"]["button"]) <= 20
    (section,) = body["action"]["sections"]
    rows = section["rows"]
    assert len(rows) == min(count, 10)
    assert [row["id"] for row in rows] == [button["payload"] for button in buttons[:10]]
    assert all(len(row["title"]) <= LIST_ROW_TITLE_LIMIT for row in rows)
    long_rows = [row for row in rows if row["title"].endswith("…")]
    assert all(row["description"] in banks for row in long_rows)  # the full name is still shown
    dropped_warning = "only the first 10 are shown" in caplog.text
    assert dropped_warning == (count > 10)


async def test_buttons_under_a_long_text_come_after_it_as_a_text_message(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    terms = "Please read the terms. " * 60
    assert len(terms.strip()) > INTERACTIVE_BODY_LIMIT
    text_message, buttons_message = await bot_says(server, agent, graph, {
        "text": terms, "buttons": [{"title": "I agree", "payload": "/affirm"}]})
    assert text_message["text"]["body"] == terms.strip()
    assert interactive(buttons_message)["body"]["text"] == say("choice_prompt")


async def test_buttons_without_text_still_have_a_body(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    (message,) = await bot_says(server, agent, graph, {"buttons": [{"title": "Menu", "payload": "/help"}]})
    assert interactive(message)["body"]["text"] == say("choice_prompt")


async def test_image_after_its_text(server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi) -> None:
    text, image = await bot_says(server, agent, graph, {
        "text": "Your spending this month", "image": "https://bank.example/charts/nov.png"})
    assert text["text"]["body"] == "Your spending this month"
    assert image["type"] == "image" and image["image"] == {"link": "https://bank.example/charts/nov.png"}
    assert image["to"] == ADA


@pytest.mark.parametrize(
    ("attachment", "document"),
    [
        ("https://bank.example/statements/statement%20nov.pdf",
         {"link": "https://bank.example/statements/statement%20nov.pdf", "filename": "statement nov.pdf"}),
        ({"url": "https://bank.example/r/TX123", "filename": "receipt-TX123.pdf", "caption": "Your receipt"},
         {"link": "https://bank.example/r/TX123", "filename": "receipt-TX123.pdf", "caption": "Your receipt"}),
        ({"type": "file", "payload": {"url": "https://bank.example/r/TX9.pdf"}},
         {"link": "https://bank.example/r/TX9.pdf", "filename": "TX9.pdf"}),
    ],
    ids=["url", "dict", "facebook style"],
)
async def test_attachment_is_a_document_by_link(
    attachment: Any, document: dict[str, Any], server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    (message,) = await bot_says(server, agent, graph, {"attachment": attachment})
    assert message["type"] == "document"
    assert message["document"] == document


async def test_custom_json_is_passed_through_as_the_message(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    template = {
        "type": "template",
        "template": {
            "name": "transfer_receipt",
            "language": {"code": "en"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "₦5,000"}]}],
        },
    }
    (message,) = await bot_says(server, agent, graph, {"custom": template})
    assert message == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": ADA, **template}


async def test_custom_json_cannot_redirect_a_message_to_another_number(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    (message,) = await bot_says(server, agent, graph, {
        "custom": {"to": "2348000000000", "type": "text", "text": {"body": "hi"}}})
    assert message["to"] == ADA


async def test_rasa_response_with_everything_is_sent_in_rasas_order(
    server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi
) -> None:
    messages = await bot_says(server, agent, graph, {
        "text": "Here you go",
        "buttons": [{"title": "More", "payload": "/help"}],
        "custom": {"type": "location", "location": {"latitude": 6.43, "longitude": 3.42}},
        "image": "https://bank.example/i.png",
        "attachment": "https://bank.example/a.pdf",
    })
    assert [message["type"] for message in messages] == ["interactive", "location", "image", "document"]


async def test_empty_response_sends_nothing(server: WebhookServer, agent: RecordingAgent, graph: FakeGraphApi) -> None:
    assert await bot_says(server, agent, graph, {"text": "   ", "image": "", "attachment": {"caption": "x"}}) == []
